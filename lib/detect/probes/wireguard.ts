// The WireGuard probe: a tunnel starts with the initiator's handshake initiation, one datagram.

import type { ProbeResult } from '../types.js';

const MATCH: ProbeResult = Object.freeze({
  kind: 'match',
  detection: Object.freeze({ protocol: 'wireguard' }),
});
const NOT_INITIATION: ProbeResult = Object.freeze({
  kind: 'no-match',
  reason: 'not a WireGuard handshake initiation (type 1, three zero bytes, 148 bytes)',
});

/**
 * type(1) reserved(3) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16).
 * Data, response and cookie messages cannot start a flow: their peer learnt the endpoint from an initiation.
 */
const INITIATION_LENGTH = 148;

/** Matches a datagram that is a WireGuard handshake initiation; everything else is no-match. */
export function probeWireguard(d: Uint8Array): ProbeResult {
  if (d.length !== INITIATION_LENGTH) return NOT_INITIATION;
  return d[0] === 1 && d[1] === 0 && d[2] === 0 && d[3] === 0 ? MATCH : NOT_INITIATION;
}
