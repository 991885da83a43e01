// Properties of the QUIC Initial parser: every split of a hello into CRYPTO frames and Initial packets,
// in every arrival order, decides the same; hostile datagrams never throw.

import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { parseQuicInitials } from '../lib/detect/quic/initial.js';
import { buildHandshake, concat } from './helpers/hello-builder.js';
import { buildInitial, cryptoFrame, QUIC_V1, QUIC_V2 } from './helpers/quic-builder.js';

const RUNS = 10_000;

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const flight = fc.record({
  labels: fc.array(label, { minLength: 1, maxLength: 3 }),
  alpn: fc.subarray(['h3', 'h3-29', 'hq-interop', 'doq']),
  // Post-quantum key shares push the hello past one packet, as Chromium's do.
  pq: fc.boolean(),
  version: fc.constantFrom(QUIC_V1, QUIC_V2),
  dcid: fc.uint8Array({ minLength: 8, maxLength: 20 }),
  /** Cut points of the crypto stream, as fractions: each piece becomes one CRYPTO frame. */
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
  /** Frames per packet, in turn (the last packet takes the rest). */
  perPacket: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 6 }),
  /** A frame sent again in its own packet, as a retransmission would. */
  resend: fc.option(fc.nat()),
  order: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  pnLength: fc.integer({ min: 1, max: 4 }),
});

t.test(`every split and arrival order of the Initials decides as the whole (${RUNS} flights)`, async (t) => {
  let pq = 0;
  let multi = 0;
  fc.assert(
    fc.property(flight, (f) => {
      const sni = f.labels.join('.');
      const hs = buildHandshake({
        sni,
        alpn: f.alpn,
        ...(f.pq ? { keyShareBytes: 1216 } : {}),
        grease: true,
      });
      const cuts = [...new Set(f.cuts.map((c) => Math.floor(c * hs.length)))]
        .filter((c) => c > 0)
        .sort((a, b) => a - b);
      const bounds = [0, ...cuts, hs.length];
      const frames: Uint8Array[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        frames.push(cryptoFrame(bounds[i]!, hs.subarray(bounds[i]!, bounds[i + 1]!)));
      }
      // Group frames into packets; a frame too big for one packet's room still fits: packets grow past 1200.
      const packets: Uint8Array[] = [];
      let next = 0;
      for (let p = 0; next < frames.length; p++) {
        const take = p < f.perPacket.length - 1 ? f.perPacket[p]! : frames.length - next;
        packets.push(concat(...frames.slice(next, next + take)));
        next += take;
      }
      if (f.resend !== null) packets.push(frames[f.resend % frames.length]!);
      const datagrams = packets.map((frames, pn) =>
        buildInitial({ version: f.version, dcid: f.dcid, packetNumber: pn, pnLength: f.pnLength, frames }),
      );
      if (datagrams.length > 1) multi++;
      if (f.pq) pq++;
      // Arrival order: a permutation driven by the generated numbers.
      const pending = datagrams.slice();
      const arrived: Uint8Array[] = [];
      for (let i = 0; pending.length > 0; i++)
        arrived.push(pending.splice(f.order[i % 8]! % pending.length, 1)[0]!);
      const want = { kind: 'match', detection: { protocol: 'quic', sni, alpn: f.alpn } };
      // Prefixes in arrival order: need-more until the first that holds the whole hello, then that verdict.
      let decided = false;
      for (let n = 1; n <= arrived.length; n++) {
        const r = parseQuicInitials(arrived.slice(0, n));
        if (r.kind === 'need-more') {
          if (decided) return false;
          continue;
        }
        if (JSON.stringify(r) !== JSON.stringify(want)) return false;
        decided = true;
      }
      return decided;
    }),
    { numRuns: RUNS },
  );
  t.ok(pq > RUNS / 4, `${pq} flights carried a post-quantum hello`);
  t.ok(multi > RUNS / 2, `${multi} flights spanned several Initials`);
});

const seeds = ['rfc9001-a2-client-initial.bin', 'rfc9369-a2-client-initial.bin'].map(
  (f) => new Uint8Array(readFileSync(new URL(`./fixtures/quic/${f}`, import.meta.url))),
);

t.test(`hostile datagrams get a well-formed verdict and never throw (${RUNS} inputs)`, async (t) => {
  const mutated = fc
    .record({
      seed: fc.constantFrom(...seeds),
      at: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
      cut: fc.nat(),
    })
    .map(({ seed, at, cut }) => {
      const b = seed.slice(0, 1 + (cut % seed.length));
      for (const [i, v] of at) b[i % b.length] = v;
      return b;
    });
  const anyDatagram = fc.oneof(mutated, fc.uint8Array({ maxLength: 1500 }));
  fc.assert(
    fc.property(fc.array(anyDatagram, { minLength: 1, maxLength: 3 }), (ds) => {
      const r = parseQuicInitials(ds);
      switch (r.kind) {
        case 'match':
          return r.detection.protocol === 'quic';
        case 'need-more':
          return true;
        case 'no-match':
          return r.reason.length > 0;
        case 'invalid':
          return r.protocol === 'quic' && r.reason.length > 0;
      }
    }),
    { numRuns: RUNS },
  );
  t.pass('no input threw');
});
