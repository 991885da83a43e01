// Fuzz target: the QUIC Initial parser, on raw datagrams and on fuzzed plaintext sealed into real Initials.
import { readdirSync, readFileSync } from 'node:fs';
import { parseQuicInitials } from '../../../lib/detect/quic/initial.js';
import type { ProbeResult } from '../../../lib/detect/types.js';
import { buildHandshake, concat } from '../../helpers/hello-builder.js';
import { buildInitial, cryptoFrame, QUIC_V1, QUIC_V2 } from '../../helpers/quic-builder.js';
import { bytes, type FuzzTarget, fail } from '../target.js';

const DCID = Uint8Array.of(0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08);

/** Raw mode (first byte even): the rest is the datagrams, each after a 2-byte length. */
function rawDatagrams(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 1;
  while (p + 2 <= data.length && out.length < 4) {
    const len = (data[p]! << 8) | data[p + 1]!;
    out.push(data.subarray(p + 2, Math.min(data.length, p + 2 + len)));
    p += 2 + len;
  }
  if (out.length === 0) out.push(data.subarray(1));
  return out;
}

/**
 * Sealed mode (first byte odd): byte 1 picks the version and where the plaintext is cut; the two parts are
 * the frames of two Initials, protected as a client would. The fuzzer then reaches the frame parser and the
 * reassembly, which the AEAD tag keeps out of reach in raw mode.
 */
function sealedDatagrams(data: Uint8Array): Uint8Array[] {
  const version = (data[1] ?? 0) & 1 ? QUIC_V2 : QUIC_V1;
  const plain = data.subarray(2);
  const cut = Math.floor((((data[1] ?? 0) >> 1) * plain.length) / 127);
  const parts = [plain.subarray(0, cut), plain.subarray(cut)].filter((p) => p.length > 0);
  return parts.map((frames, pn) => buildInitial({ version, dcid: DCID, packetNumber: pn, frames }));
}

/** The same verdict: kinds agree and so do the routing keys; which malformation is named first may differ. */
const same = (a: ProbeResult, b: ProbeResult): boolean =>
  a.kind === b.kind && (a.kind !== 'match' || JSON.stringify(a) === JSON.stringify(b));

export const quic: FuzzTarget = {
  name: 'quic',
  about:
    'parseQuicInitials: never throws, well-formed verdict; sealed Initials decide the same in either order',
  maxLen: 4096,
  seeds: () => {
    const dir = new URL('../../fixtures/quic/', import.meta.url);
    const captured = readdirSync(dir)
      .filter((f) => f.endsWith('.bin'))
      .sort()
      .map((f) => new Uint8Array(readFileSync(new URL(f, dir))));
    const hs = buildHandshake({ sni: 'a.example', alpn: ['h3'], keyShareBytes: 1216, grease: true });
    return [
      ...captured.map((c) => concat(Uint8Array.of(0, c.length >> 8, c.length & 0xff), c)),
      concat(Uint8Array.of(1, 64), cryptoFrame(0, hs.subarray(0, 700)), cryptoFrame(700, hs.subarray(700))),
      concat(
        Uint8Array.of(1, 3),
        Uint8Array.of(0x02, 0, 0, 0, 0),
        cryptoFrame(0, hs),
        Uint8Array.of(1, 0, 0),
      ),
    ];
  },
  dictionary: [
    bytes('\x06\x00'), // CRYPTO at offset 0
    bytes('\x06\x44\x00'),
    bytes('\x02'), // ACK
    bytes('\x03'),
    bytes('\x1c'), // CONNECTION_CLOSE
    bytes('\x01\x00\x00'), // ClientHello header
    bytes('\xc0\x00\x00\x00\x01'), // v1 Initial long header
    bytes('\xd0\x6b\x33\x43\xcf'), // v2 Initial long header
    bytes('\x40'),
    bytes('\x80\x00'),
  ],
  check(data) {
    if (data.length === 0) return;
    const sealed = (data[0]! & 1) === 1;
    const ds = sealed ? sealedDatagrams(data) : rawDatagrams(data);
    if (ds.length === 0) return;
    const r = parseQuicInitials(ds);
    if (r.kind === 'match' && r.detection.protocol !== 'quic') fail('match of another protocol');
    if ((r.kind === 'no-match' || r.kind === 'invalid') && r.reason.length === 0)
      fail(`${r.kind} without reason`);
    if (
      r.kind === 'match' &&
      r.detection.sni !== undefined &&
      r.detection.sni !== r.detection.sni.toLowerCase()
    )
      fail('sni not lowercased');
    if (sealed && ds.length === 2) {
      const back = parseQuicInitials([ds[1]!, ds[0]!]);
      if (!same(r, back)) fail(`order changes the verdict: ${JSON.stringify(r)} vs ${JSON.stringify(back)}`);
    }
  },
};
