// The QUIC Initial parser: RFC 9001 / RFC 9369 test vectors, packets a middlebox must not route, malformed Initials.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { helloFromCrypto, parseQuicInitials } from '../lib/detect/quic/initial.js';
import { clientInitialKeys, QUIC_V1, QUIC_V2 } from '../lib/detect/quic/keys.js';
import { parseDatagram } from '../lib/detect/quic/packet.js';
import { buildHandshake, concat } from './helpers/hello-builder.js';
import { buildInitial, cryptoFrame } from './helpers/quic-builder.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/quic/${name}`, import.meta.url)));
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const RFC_DCID = hex('8394c8f03e515708');
/** RFC 9001 A.2: the CRYPTO frame of the example client Initial (before 917 bytes of PADDING). */
const RFC_CRYPTO = hex(`
  060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`);

t.test('client Initial keys are those of RFC 9001 A.1 and RFC 9369 A.1', async (t) => {
  const v1 = clientInitialKeys(QUIC_V1, RFC_DCID);
  t.equal(toHex(v1.key), '1f369613dd76d5467730efcbe3b1a22d');
  t.equal(toHex(v1.iv), 'fa044b2f42a3fd3b46fb255c');
  t.equal(toHex(v1.hp), '9f50449e04a0e810283a1e9933adedd2');
  const v2 = clientInitialKeys(QUIC_V2, RFC_DCID);
  t.equal(toHex(v2.key), '8b1a0bc121284290a29e0971b5cd045d');
  t.equal(toHex(v2.iv), '91f73e2351d8fa91660e909f');
  t.equal(toHex(v2.hp), '45b95e15235d6f45a6b19cbcb0294ba9');
});

for (const [name, version] of [
  ['rfc9001-a2-client-initial.bin', QUIC_V1],
  ['rfc9369-a2-client-initial.bin', QUIC_V2],
] as const) {
  t.test(`${name}: decrypts to the RFC's CRYPTO frame and routes example.com`, async (t) => {
    const packet = fixture(name);
    const d = parseDatagram(packet);
    t.equal(d.kind, 'initial');
    if (d.kind !== 'initial') return;
    t.equal(d.chunks.length, 1);
    t.equal(d.chunks[0]!.offset, 0);
    t.equal(toHex(cryptoFrame(0, d.chunks[0]!.data)), toHex(RFC_CRYPTO));
    t.same(parseQuicInitials([packet]), {
      kind: 'match',
      detection: { protocol: 'quic', sni: 'example.com', alpn: ['alpn'] },
    });
    // The test builder protects packets as the RFC does: same bytes, so its other packets are realistic.
    const built = buildInitial({ version, dcid: RFC_DCID, packetNumber: 2, frames: RFC_CRYPTO });
    t.equal(toHex(built), toHex(packet), 'the builder reproduces the RFC packet byte for byte');
  });
}

t.test('a flipped bit anywhere in the protected payload fails authentication', async (t) => {
  const packet = fixture('rfc9001-a2-client-initial.bin');
  for (const at of [22, 100, 600, 1199]) {
    const bad = packet.slice();
    bad[at]! ^= 0x01;
    const r = parseQuicInitials([bad]);
    t.equal(r.kind, 'invalid', `byte ${at}`);
  }
});

t.test('datagrams that cannot start a QUIC connection are no-match, as a middlebox sees them', async (t) => {
  const v1 = fixture('rfc9001-a2-client-initial.bin');
  const cases: Array<[string, Uint8Array]> = [
    ['short header', concat(Uint8Array.of(0x40), new Uint8Array(1199))],
    ['version negotiation', concat(Uint8Array.of(0xc0, 0, 0, 0, 0), v1.subarray(5))],
    ['unknown version', concat(Uint8Array.of(0xc0, 0xfa, 0xce, 0xb0, 0x0c), v1.subarray(5))],
    ['v1 Retry', concat(Uint8Array.of(0xf0), v1.subarray(1))],
    ['v1 Handshake', concat(Uint8Array.of(0xe0), v1.subarray(1))],
    ['zero bytes', new Uint8Array(1200)],
  ];
  for (const [name, d] of cases) t.equal(parseQuicInitials([d]).kind, 'no-match', name);
});

t.test('0-RTT before its Initial waits for the Initial', async (t) => {
  const v1 = fixture('rfc9001-a2-client-initial.bin');
  const zeroRtt = concat(Uint8Array.of(0xd0), v1.subarray(1, 200));
  t.equal(parseQuicInitials([zeroRtt]).kind, 'need-more');
  t.equal(parseQuicInitials([zeroRtt, v1]).kind, 'match');
});

t.test('an Initial coalesced with a following 0-RTT packet decides on the Initial', async (t) => {
  const initial = buildInitial({ dcid: RFC_DCID, frames: RFC_CRYPTO, datagramSize: 600 });
  // A 0-RTT long header whose length covers the rest of the datagram.
  const rest = 1200 - initial.length;
  const zeroRtt = concat(
    Uint8Array.of(0xd0, 0, 0, 0, 1, 8),
    RFC_DCID,
    Uint8Array.of(0, 0x40 | ((rest - 17) >> 8), (rest - 17) & 0xff),
    new Uint8Array(rest - 17),
  );
  const d = concat(initial, zeroRtt);
  t.equal(d.length, 1200);
  t.equal(parseQuicInitials([d]).kind, 'match');
});

t.test('Initials in datagrams under 1200 bytes are refused (RFC 9000 14.1)', async (t) => {
  const small = buildInitial({ dcid: RFC_DCID, frames: RFC_CRYPTO, datagramSize: 0 });
  t.same(parseQuicInitials([small]), {
    kind: 'invalid',
    protocol: 'quic',
    reason: 'client Initial in a datagram shorter than 1200 bytes',
  });
});

t.test('frames an Initial may not carry are invalid', async (t) => {
  const stream = buildInitial({ dcid: RFC_DCID, frames: concat(RFC_CRYPTO, Uint8Array.of(0x08, 0, 0)) });
  t.match(parseQuicInitials([stream]), { kind: 'invalid', reason: /frame type 0x8/ });
});

t.test('a ClientHello split over two Initials (post-quantum size) needs both, in either order', async (t) => {
  const hs = buildHandshake({ sni: 'pq.example', alpn: ['h3'], keyShareBytes: 1216, grease: true });
  t.ok(hs.length > 1200);
  const dcid = hex('0011223344556677');
  const a = buildInitial({ dcid, packetNumber: 0, frames: cryptoFrame(0, hs.subarray(0, 1000)) });
  const b = buildInitial({ dcid, packetNumber: 1, frames: cryptoFrame(1000, hs.subarray(1000)) });
  const want = { kind: 'match', detection: { protocol: 'quic', sni: 'pq.example', alpn: ['h3'] } };
  t.equal(parseQuicInitials([a]).kind, 'need-more');
  t.equal(parseQuicInitials([b]).kind, 'need-more');
  t.same(parseQuicInitials([a, b]), want);
  t.same(parseQuicInitials([b, a]), want);
});

t.test('crypto stream reassembly', async (t) => {
  const hs = buildHandshake({ sni: 'a.example' });
  const chunk = (o: number, e: number) => ({ offset: o, data: hs.subarray(o, e) });
  t.equal(helloFromCrypto([chunk(10, hs.length)]).kind, 'need-more', 'a gap at the start waits');
  t.equal(
    helloFromCrypto([chunk(0, 50), chunk(30, hs.length)]).kind,
    'match',
    'overlaps that agree are fine',
  );
  const liar = { offset: 5, data: hs.slice(5, 10).map((b) => b ^ 1) };
  t.match(helloFromCrypto([chunk(0, hs.length), liar]), { kind: 'invalid', reason: /disagree/ });
  t.match(helloFromCrypto([{ offset: 0, data: Uint8Array.of(2, 0, 0, 1, 0) }]), {
    kind: 'invalid',
    reason: /does not start with a ClientHello/,
  });
  t.match(helloFromCrypto([{ offset: 70000, data: Uint8Array.of(1) }]), {
    kind: 'invalid',
    reason: /64 KiB/,
  });
  t.match(helloFromCrypto([chunk(0, hs.length), { offset: hs.length, data: Uint8Array.of(1) }]), {
    kind: 'invalid',
    reason: /after the ClientHello/,
  });
});

t.test('Chromium: a post-quantum hello over two Initials, CRYPTO frames shuffled across both', async (t) => {
  const a = fixture('chromium-pq-initial-1.bin');
  const b = fixture('chromium-pq-initial-2.bin');
  t.equal(parseQuicInitials([a]).kind, 'need-more', 'the first datagram alone is not enough');
  t.equal(parseQuicInitials([b]).kind, 'need-more', 'nor the second');
  const want = { kind: 'match', detection: { protocol: 'quic', sni: 'pq.example', alpn: ['h3'] } };
  t.same(parseQuicInitials([a, b]), want);
  t.same(parseQuicInitials([b, a]), want);
  const d = parseDatagram(a);
  t.ok(d.kind === 'initial' && d.chunks.length > 4, 'many CRYPTO frames, out of order, in one packet');
});
