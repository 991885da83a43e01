// Property tests of detection as the mux runs it: chunks appended to the real PeekBuffer, detect() after each.

import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { detect } from '../lib/detect/detect.js';
import { PeekBuffer } from '../lib/detect/peek.js';
import { streamed, verdictKey } from './fuzz/targets/detect.js';

const RUNS = 10_000;
const seeds: Uint8Array[] = ['./fixtures/first-bytes/', './fixtures/clienthello/'].flatMap((d) => {
  const dir = new URL(d, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .map((f) => new Uint8Array(readFileSync(new URL(f, dir))));
});

/** A real capture of any protocol, cut, with one byte changed and random bytes appended. */
const mutated: fc.Arbitrary<Uint8Array> = fc
  .record({
    seed: fc.constantFrom(...seeds),
    cut: fc.nat(),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
    mutate: fc.boolean(),
    tail: fc.uint8Array({ maxLength: 16, size: 'max' }),
  })
  .map(({ seed, cut, at, value, mutate, tail }) => {
    const b = seed.slice(0, cut % (seed.length + 1));
    if (mutate && b.length > 0) b[at % b.length] = value;
    const out = new Uint8Array(b.length + tail.length);
    out.set(b);
    out.set(tail, b.length);
    return out;
  });

const anyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.constantFrom(...seeds), weight: 1 },
  { arbitrary: mutated, weight: 6 },
  { arbitrary: fc.uint8Array({ maxLength: 64, size: 'max' }), weight: 2 },
);

/** Chunk sizes as a socket might deliver them; the last size repeats until the bytes run out. */
const chunking = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 });

t.test('PeekBuffer hands back exactly the bytes appended, however they were chunked', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 8 }), (chunks) => {
      const peek = new PeekBuffer();
      let total = 0;
      for (const c of chunks) {
        peek.append(c.slice());
        total += c.length;
        if (peek.length !== total || peek.view().length !== total) return false;
      }
      const want = Buffer.concat(chunks);
      const got = peek.take();
      return Buffer.from(got).equals(want) && peek.length === 0 && peek.view().length === 0;
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('detect() fed in any chunks decides as it does on one buffer', async (t) => {
  fc.assert(
    fc.property(
      anyBytes,
      chunking,
      (buf, sizes) => verdictKey(streamed(buf, sizes)) === verdictKey(detect(buf)),
    ),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('detect() fed one byte at a time decides as it does on one buffer', async (t) => {
  fc.assert(
    fc.property(anyBytes, (buf) => verdictKey(streamed(buf, [1])) === verdictKey(detect(buf))),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('a need-more never turns into a different decision than a later, longer prefix gives', async (t) => {
  fc.assert(
    fc.property(anyBytes, fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), (buf, cuts) => {
      const ends = [...cuts.map((c) => c % (buf.length + 1)), buf.length].sort((a, b) => a - b);
      let decided: string | undefined;
      for (const end of ends) {
        const k = verdictKey(detect(buf.subarray(0, end)));
        if (k === 'need-more') continue;
        if (decided !== undefined && k !== decided) return false;
        decided = k;
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});
