// Property tests of normalizeHost, the Host header normaliser that host routing trusts.

import fc from 'fast-check';
import t from 'tap';
import { normalizeHost } from '../lib/detect/probes/http.js';

const RUNS = 10_000;

const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
const port = fc.integer({ min: 0, max: 65535 }).map(String);
const blanks = fc.stringMatching(/^[ \t]{0,3}$/);
const ipv6 = fc.ipV6();
/** Any string made of the characters a Host value is built from, and a few it must not contain. */
const hostish = fc
  .array(fc.constantFrom(..."aZ09.-_~%:[]@/ \t\x00\x7f\xe9!$&'()*+,;=", 'ff', '::', '%4', '%41'), {
    maxLength: 24,
  })
  .map((parts) => parts.join(''));

t.test('never throws; a host it returns is lowercase, without port or blanks', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 40 }), hostish), (value) => {
      const h = normalizeHost(value);
      if (h === undefined || h === '') return true;
      if (h !== h.toLowerCase() || /[\s]/.test(h)) return false;
      // A port is dropped: a colon is left only inside an IPv6 literal's brackets.
      return h.startsWith('[') ? h.endsWith(']') : !h.includes(':');
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('a name with any case, a trailing dot, blanks and a port gives the bare lowercase name', async (t) => {
  fc.assert(
    fc.property(name, fc.boolean(), fc.option(port), blanks, blanks, (n, dot, p, before, after) => {
      const value = `${before}${n}${dot ? '.' : ''}${p === null ? '' : `:${p}`}${after}`;
      return normalizeHost(value) === n.toLowerCase();
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('an IPv6 literal keeps its brackets and loses its port', async (t) => {
  fc.assert(
    fc.property(ipv6, fc.option(port), (ip, p) => {
      const value = `[${ip.toUpperCase()}]${p === null ? '' : `:${p}`}`;
      return normalizeHost(value) === `[${ip.toLowerCase()}]`;
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});

t.test('normalising again changes nothing but one more trailing dot', async (t) => {
  fc.assert(
    fc.property(fc.oneof(hostish, name), (value) => {
      const h = normalizeHost(value);
      if (h === undefined || h === '') return true;
      const again = normalizeHost(h);
      // "example.." keeps one dot and "..", one: names with empty labels, which no route can match.
      return again === h || (h.endsWith('.') && (again === h.slice(0, -1) || h === '.'));
    }),
    { numRuns: RUNS },
  );
  t.pass(`${RUNS} runs`);
});
