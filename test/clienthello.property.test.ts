// Property tests of the ClientHello parser: round-trips, truncation, mutation, determinism and prefix monotonicity.

import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { type HelloResult, parseClientHello } from '../lib/detect/clienthello.js';
import { buildClientHello, type HelloOptions } from './helpers/hello-builder.js';
import { property, RUNS } from './helpers/property.js';

const KINDS = ['match', 'need-more', 'no-match', 'invalid'];

/** A label as clients send it: LDH and underscore, any case, 1..63 bytes, no leading or trailing hyphen needed. */
const label = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/);
const hostName = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 5 }), fc.boolean())
  .map(([labels, dot]) => labels.join('.') + (dot ? '.' : ''));
/** ALPN names are arbitrary non-empty byte strings; latin1 keeps them one char per byte. */
const alpnName = fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => String.fromCharCode(...b));

const helloOptions: fc.Arbitrary<HelloOptions> = fc.record(
  {
    sni: hostName,
    alpn: fc.array(alpnName, { minLength: 1, maxLength: 6 }),
    grease: fc.boolean(),
    keyShareBytes: fc.constantFrom(32, 1216, 1568),
    padTo: fc.integer({ min: 0, max: 3000 }),
    recordSplit: fc.array(fc.integer({ min: 1, max: 600 }), { maxLength: 4 }),
    fill: fc.integer({ min: 0, max: 255 }),
  },
  { requiredKeys: [] },
);

const fixtureDir = new URL('./fixtures/clienthello/', import.meta.url);
const fixtures = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.bin'))
  .map((f) => new Uint8Array(readFileSync(new URL(f, fixtureDir))));

/** Valid hellos to corrupt: the real captures and some built ones, including multi-record and post-quantum. */
const pool = [
  ...fixtures,
  buildClientHello({ sni: 'a.example', alpn: ['h2', 'http/1.1'] }),
  buildClientHello({ sni: 'pq.example', alpn: ['h2'], grease: true, keyShareBytes: 1216, padTo: 2048 }),
  buildClientHello({ sni: 'split.example', alpn: ['h2'], recordSplit: [1, 3, 40, 100] }),
  buildClientHello({ alpn: ['http/1.1'], recordSplit: [200] }),
];
const validHello = fc.constantFrom(...pool);

/** Never throws and always yields one of the four kinds, with a reason where one is due. */
function wellFormed(buf: Uint8Array): HelloResult {
  const r = parseClientHello(buf);
  if (!KINDS.includes(r.kind)) throw new Error(`unexpected kind ${r.kind}`);
  if ((r.kind === 'invalid' || r.kind === 'no-match') && r.reason.length === 0)
    throw new Error('empty reason');
  return r;
}

/** Mutations that corrupt a valid hello: overwrite a byte, flip bits in a byte, or clobber a 16-bit field. */
const mutated = fc
  .tuple(
    validHello,
    fc.nat(),
    fc.integer({ min: 0, max: 255 }),
    fc.constantFrom('set', 'xor', 'u16-max', 'u16-zero'),
  )
  .map(([hello, pos, value, how]) => {
    const buf = hello.slice();
    const i = pos % buf.length;
    if (how === 'set') buf[i] = value;
    else if (how === 'xor') buf[i] = buf[i]! ^ (value | 1);
    else if (how === 'u16-max') buf.set([0xff, 0xff].slice(0, buf.length - i), i);
    else buf.set([0, 0].slice(0, buf.length - i), i);
    return buf;
  });

t.test('built hellos round-trip their SNI and ALPN', async (t) => {
  property(
    t,
    'holds',
    fc.property(helloOptions, (o) => {
      const buf = buildClientHello(o);
      const r = parseClientHello(buf);
      if (r.kind !== 'match') return false;
      const wantSni = o.sni === undefined ? undefined : o.sni.replace(/\.$/, '').toLowerCase();
      return (
        r.hello.sni === wantSni &&
        JSON.stringify(r.hello.alpn) === JSON.stringify(o.alpn ?? []) &&
        r.hello.length === buf.length
      );
    }),
  );
});

t.test('every truncation of a valid hello is need-more', async (t) => {
  fc.assert(
    fc.property(helloOptions, fc.nat(), (o, cut) => {
      const buf = buildClientHello(o);
      return parseClientHello(buf.subarray(0, cut % buf.length)).kind === 'need-more';
    }),
    { numRuns: RUNS },
  );
  property(
    t,
    'holds',
    fc.property(
      validHello,
      fc.nat(),
      (buf, cut) => parseClientHello(buf.subarray(0, cut % buf.length)).kind === 'need-more',
    ),
  );
});

t.test('a mutated hello never throws and gets one of the four verdicts', async (t) => {
  property(
    t,
    'holds',
    fc.property(mutated, (buf) => {
      wellFormed(buf);
    }),
  );
});

t.test('random bytes never throw', async (t) => {
  const tlsLike = fc
    .tuple(fc.uint8Array({ maxLength: 1200 }), fc.integer({ min: 0, max: 4 }))
    .map(([b, minor]) => {
      const buf = new Uint8Array(b.length + 9);
      buf.set([
        22,
        3,
        minor,
        (b.length + 4) >> 8,
        (b.length + 4) & 0xff,
        1,
        0,
        b.length >> 8,
        b.length & 0xff,
      ]);
      buf.set(b, 9);
      return buf;
    });
  property(
    t,
    'holds',
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), tlsLike), (buf) => {
      wellFormed(buf);
    }),
  );
});

t.test('the verdict for the same bytes is deterministic', async (t) => {
  property(
    t,
    'holds',
    fc.property(fc.oneof(mutated, validHello, fc.uint8Array({ maxLength: 600 })), (buf) => {
      const a = parseClientHello(buf);
      const b = parseClientHello(buf.slice());
      return JSON.stringify(a) === JSON.stringify(b);
    }),
  );
});

t.test('a decided prefix stays decided: the full bytes give the same kind', async (t) => {
  property(
    t,
    'holds',
    fc.property(
      fc.oneof(mutated, validHello),
      fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
      (buf, cuts) => {
        const full = parseClientHello(buf).kind;
        for (const c of cuts) {
          const k = parseClientHello(buf.subarray(0, c % (buf.length + 1))).kind;
          if (k !== 'need-more' && k !== full) return false;
        }
        return true;
      },
    ),
  );
});
