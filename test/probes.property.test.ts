// Properties of every probe and of detect(), on random bytes and on mutations of real first bytes.

import fc from 'fast-check';
import t from 'tap';
import { detect, PROBES } from '../lib/detect/detect.js';
import { HTTP_METHODS } from '../lib/detect/probes/http.js';
import type { ProbeResult, Protocol } from '../lib/detect/types.js';
import { mutated, property } from './helpers/property.js';

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** HTTP/1.x requests built from plausible and implausible parts, for the header scanner. */
const httpish: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.constantFrom(...HTTP_METHODS, 'get', 'BREW'),
    fc.constantFrom('/', '/a?b=c', '*', 'example.com:443', '/\x01', '', 'http://h/'),
    fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.x'),
    fc.constantFrom('\r\n', '\n', '\r'),
    fc.array(
      fc.tuple(
        fc.constantFrom('Host', 'host', 'HOST', 'Accept', 'X-A', ' Host', 'Ho st', ''),
        fc.constantFrom(':', ' :', ': ', ':\t'),
        fc.oneof(
          fc.constantFrom('Example.COM.', '[::1]:80', 'a:1', 'a:b:c', '', ' x ', '\x00', 'h\x7f', 'x%41'),
          fc.string({ maxLength: 12 }),
        ),
        fc.constantFrom('\r\n', '\n', '\r'),
      ),
      { maxLength: 4 },
    ),
    fc.constantFrom('\r\n', '\n', ''),
  )
  .map(([m, target, version, eol, headers, end]) =>
    latin1(`${m} ${target} ${version}${eol}${headers.map((h) => h.join('')).join('')}${end}`),
  );

// size 'max': without it fast-check keeps arrays to a few dozen bytes, short of OpenVPN's and XMPP's limits.
const anyBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 64, size: 'max' }), weight: 2 },
  { arbitrary: mutated, weight: 5 },
  { arbitrary: httpish, weight: 2 },
  { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 1400, size: 'max' }), weight: 1 },
);

const KINDS = new Set(['match', 'need-more', 'no-match', 'invalid']);

/** A verdict is well formed for the probe of `protocol`. */
function wellFormed(r: ProbeResult, protocol: Protocol): boolean {
  if (!KINDS.has(r.kind)) return false;
  if (r.kind === 'match') return r.detection.protocol === protocol;
  if (r.kind === 'invalid') return r.protocol === protocol && typeof r.reason === 'string';
  if (r.kind === 'no-match') return typeof r.reason === 'string' && r.reason.length > 0;
  return true;
}

/** Two verdicts say the same thing (match/no-match/invalid are decisions; need-more is not). */
function sameDecision(a: ProbeResult, b: ProbeResult): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'match' && b.kind === 'match') {
    return a.detection.protocol === b.detection.protocol && a.detection.host === b.detection.host;
  }
  return true;
}

for (const { protocol, probe } of PROBES) {
  if (protocol === 'tls') continue; // test/clienthello.property.test.ts covers it
  t.test(`${protocol}: any bytes give a well-formed verdict and never throw`, async (t) => {
    property(
      t,
      'holds',
      fc.property(anyBytes, (buf) => wellFormed(probe(buf), protocol)),
    );
  });

  t.test(`${protocol}: a decision on a prefix is the decision on the whole`, async (t) => {
    property(
      t,
      'holds',
      fc.property(anyBytes, fc.nat(), (buf, k) => {
        const before = probe(buf.subarray(0, k % (buf.length + 1)));
        return before.kind === 'need-more' || sameDecision(before, probe(buf));
      }),
    );
  });
}

t.test('detect() is deterministic and does not depend on the buffer it is given', async (t) => {
  property(
    t,
    'holds',
    fc.property(anyBytes, (buf) => {
      const a = detect(buf);
      const copy = new Uint8Array(buf.length + 8).subarray(4, 4 + buf.length);
      copy.set(buf);
      const b = detect(copy);
      return (
        sameDecision(a, b) &&
        JSON.stringify(a) === JSON.stringify(b) &&
        JSON.stringify(detect(buf)) === JSON.stringify(a)
      );
    }),
  );
});

t.test('detect() returns the first match in table order, else invalid, need-more or no-match', async (t) => {
  property(
    t,
    'holds',
    fc.property(anyBytes, (buf) => {
      const results = PROBES.map((row) => row.probe(buf));
      const d = detect(buf);
      const first = results.find((r) => r.kind === 'match');
      if (first !== undefined) return sameDecision(d, first);
      const invalid = results.find((r) => r.kind === 'invalid');
      if (invalid !== undefined) return JSON.stringify(d) === JSON.stringify(invalid);
      if (results.some((r) => r.kind === 'need-more')) return d.kind === 'need-more';
      return d.kind === 'no-match' && d.reason === 'no probe matched';
    }),
  );
});

t.test('no two probes match the same random or mutated bytes: table order rarely decides', async (t) => {
  property(
    t,
    'holds',
    fc.property(anyBytes, (buf) => PROBES.filter((row) => row.probe(buf).kind === 'match').length <= 1),
  );
});
