// Property tests of detection as the mux runs it: chunks appended to the real PeekBuffer, detect() after each.

import fc from 'fast-check';
import t from 'tap';
import { detect } from '../lib/detect/detect.js';
import { PeekBuffer } from '../lib/detect/peek.js';
import { streamed, verdictKey } from './fuzz/targets/detect.js';
import { mutated, property, seeds } from './helpers/property.js';

const anyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.constantFrom(...seeds), weight: 1 },
  { arbitrary: mutated, weight: 6 },
  { arbitrary: fc.uint8Array({ maxLength: 64, size: 'max' }), weight: 2 },
);

/** Chunk sizes as a socket might deliver them; the last size repeats until the bytes run out. */
const chunking = fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 });

t.test('PeekBuffer hands back exactly the bytes appended, however they were chunked', async (t) => {
  property(
    t,
    'holds',
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
  );
});

t.test('detect() fed in any chunks decides as it does on one buffer', async (t) => {
  property(
    t,
    'holds',
    fc.property(
      anyBytes,
      chunking,
      (buf, sizes) => verdictKey(streamed(buf, sizes)) === verdictKey(detect(buf)),
    ),
  );
});

t.test('detect() fed one byte at a time decides as it does on one buffer', async (t) => {
  property(
    t,
    'holds',
    fc.property(anyBytes, (buf) => verdictKey(streamed(buf, [1])) === verdictKey(detect(buf))),
  );
});

t.test('a need-more never turns into a different decision than a later, longer prefix gives', async (t) => {
  property(
    t,
    'holds',
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
  );
});
