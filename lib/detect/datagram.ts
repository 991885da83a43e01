// The UDP probe table and detectDatagrams(): which protocol a new flow's first datagrams are.

import { probeOpenvpnUdp } from './probes/openvpn-udp.js';
import { probeWireguard } from './probes/wireguard.js';
import { parseQuicInitials } from './quic/initial.js';
import type { ProbeResult, Protocol } from './types.js';

/**
 * A datagram probe is pure like a stream probe, but sees datagrams, not a byte stream: their boundaries
 * are part of the signature (a WireGuard initiation is exactly one 148-byte datagram), and QUIC spreads a
 * hello over several. `datagrams` are the flow's first datagrams in arrival order, never empty.
 */
export type DatagramProbe = (datagrams: readonly Uint8Array[]) => ProbeResult;

const first =
  (probe: (d: Uint8Array) => ProbeResult): DatagramProbe =>
  (datagrams) =>
    probe(datagrams[0]!);

/**
 * Every UDP probe, in the order detectDatagrams() asks them. The signatures are disjoint: QUIC long
 * headers start at 0x80 and up, a WireGuard initiation with 0x01, an OpenVPN hard reset with 0x08/0x38/0x50.
 */
export const DATAGRAM_PROBES: ReadonlyArray<{ readonly protocol: Protocol; readonly probe: DatagramProbe }> =
  Object.freeze([
    { protocol: 'quic', probe: parseQuicInitials },
    { protocol: 'wireguard', probe: first(probeWireguard) },
    { protocol: 'openvpn', probe: first(probeOpenvpnUdp) },
  ]);

const NO_MATCH: ProbeResult = Object.freeze({ kind: 'no-match', reason: 'no probe matched' });
const NEED_MORE: ProbeResult = Object.freeze({ kind: 'need-more' });

/** As detect() for streams: the first match wins, else the first invalid, else need-more if any probe wants more. */
export function detectDatagrams(datagrams: readonly Uint8Array[]): ProbeResult {
  if (datagrams.length === 0) return NEED_MORE;
  let invalid: ProbeResult | undefined;
  let needMore = false;
  for (let i = 0; i < DATAGRAM_PROBES.length; i++) {
    const r = DATAGRAM_PROBES[i]!.probe(datagrams);
    if (r.kind === 'match') return r;
    if (r.kind === 'invalid') invalid ??= r;
    else if (r.kind === 'need-more') needMore = true;
  }
  if (invalid !== undefined) return invalid;
  return needMore ? NEED_MORE : NO_MATCH;
}
