// The OpenVPN-over-UDP probe: the same first packet as over TCP, without the 2-byte length prefix.

import type { ProbeResult } from '../types.js';
import { probeOpenvpn } from './openvpn.js';

/** Matches a datagram that is a client's first hard reset (V1/V2/V3, any tls wrapping). */
export function probeOpenvpnUdp(d: Uint8Array): ProbeResult {
  // A datagram is a whole packet: give it the TCP framing and the TCP probe's verdict, signature and all.
  // One copy per new flow, not per datagram.
  const framed = new Uint8Array(2 + d.length);
  framed[0] = (d.length >> 8) & 0xff;
  framed[1] = d.length & 0xff;
  framed.set(d, 2);
  const r = probeOpenvpn(framed);
  // A datagram can't grow: what the TCP probe would wait for can never come.
  return r.kind === 'need-more' ? NEED_MORE_IS_NO_MATCH : r;
}

const NEED_MORE_IS_NO_MATCH: ProbeResult = Object.freeze({
  kind: 'no-match',
  reason: 'datagram too short for an OpenVPN hard reset',
});
