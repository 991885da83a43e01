// The probe table and detect(): which protocol a connection's first bytes are, asking each probe in turn.

import { probeAdb } from './probes/adb.js';
import { probeHttp } from './probes/http.js';
import { probeMqtt } from './probes/mqtt.js';
import { probeOpenvpn } from './probes/openvpn.js';
import { probePostgres } from './probes/postgres.js';
import { probeRdp } from './probes/rdp.js';
import { probeSocks5 } from './probes/socks5.js';
import { probeSsh } from './probes/ssh.js';
import { probeTinc } from './probes/tinc.js';
import { probeTls } from './probes/tls.js';
import { probeXmpp } from './probes/xmpp.js';
import { NEED_MORE, noMatch, type Probe, type ProbeResult, type Protocol } from './types.js';

/**
 * Every built-in probe, in the order detect() asks them. Adding a protocol is one probe and one row.
 * Order only matters when two probes match the same bytes; the signatures are disjoint except where
 * noted, and a stronger signature goes before a weaker one it overlaps (docs/protocols.md).
 */
export const PROBES: ReadonlyArray<{ readonly protocol: Protocol; readonly probe: Probe }> = Object.freeze([
  { protocol: 'tls', probe: probeTls }, // 0x16: the bulk of the traffic, asked first
  { protocol: 'ssh', probe: probeSsh }, // "SSH-"
  { protocol: 'http', probe: probeHttp }, // method names; "CONNECT" and ADB's "CNXN" part at byte 1
  { protocol: 'xmpp', probe: probeXmpp }, // "<"
  { protocol: 'tinc', probe: probeTinc }, // "0 "
  { protocol: 'mqtt', probe: probeMqtt }, // 0x10
  { protocol: 'postgres', probe: probePostgres }, // 00 00, lengths <= 10000
  { protocol: 'rdp', probe: probeRdp }, // 03 00
  { protocol: 'adb', probe: probeAdb }, // "CNXN", or 20 zero bytes and ff ff ff ff
  // Length-prefixed: 00-04, then 0x08/0x38/0x50 at byte 2. Before SOCKS: a SOCKS4 request to a port in
  // 0x5000-0x50ff can look like the start of a 1025-1278 byte tls-crypt-v2 reset.
  { protocol: 'openvpn', probe: probeOpenvpn },
  { protocol: 'socks5', probe: probeSocks5 }, // 0x05 or 0x04: the weakest signature, asked last
]);

const NO_MATCH = noMatch('no probe matched');

/**
 * Runs every probe over everything the client sent so far. The first match in table order wins, even
 * over an earlier probe that wants more bytes (as sslh does). Without a match: the first invalid if a
 * probe found its protocol malformed, else need-more if any probe could still match, else no-match.
 */
export function detect(buf: Uint8Array): ProbeResult {
  let invalid: ProbeResult | undefined;
  let needMore = false;
  for (let i = 0; i < PROBES.length; i++) {
    const r = PROBES[i]!.probe(buf);
    if (r.kind === 'match') return r;
    if (r.kind === 'invalid') invalid ??= r;
    else if (r.kind === 'need-more') needMore = true;
  }
  if (invalid !== undefined) return invalid;
  return needMore ? NEED_MORE : NO_MATCH;
}
