// Property tests of config parsing: never throws on any text, durations round-trip, address parsers are total,
// cidrContains agrees with a bit-by-bit reference, and a shadow warning is only given when it is true.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../lib/config/duration.js';
import { formatProblem, parseConfig } from '../lib/config/load.js';
import { covers } from '../lib/config/shadow.js';
import type { Cidr, ConfigResult, RouteConfig } from '../lib/config/types.js';
import type { Detection, Protocol } from '../lib/detect/types.js';
import { parseEndpoint } from '../lib/net/address.js';
import { cidrContains, ipBytes, parseCidr } from '../lib/net/ip.js';
import { routeMatches } from '../lib/route/router.js';

const RUNS = 10_000;
const example = readFileSync(new URL('../examples/mux.toml', import.meta.url), 'utf8');

/** Whatever the input, the result is well formed: a config, or errors that each say something and point inside the file. */
function wellFormed(r: ConfigResult, text: string): boolean {
  const lines = text.split('\n').length;
  const problems = r.kind === 'ok' ? r.warnings : r.errors;
  if (r.kind === 'error' && r.errors.length === 0) return false;
  if (r.kind === 'ok') {
    // What the rest of sni-mux relies on without checking again.
    const c = r.config;
    const names = new Set(c.routes.map((x) => x.name));
    if (c.listen.length === 0 || c.routes.length === 0 || names.size !== c.routes.length) return false;
    if (c.routes.some((x) => x.backends.length === 0) || c.routes.filter((x) => x.onTimeout).length > 1)
      return false;
    if (c.routes.some((x) => (x.sni || x.alpn || x.host) && x.protocol?.length !== 1)) return false;
  }
  return problems.every(
    (p) =>
      p.message.length > 0 &&
      p.file === 'mux.toml' &&
      (p.line === undefined || (p.line >= 1 && p.line <= lines)) &&
      (p.column === undefined || p.column >= 1) &&
      formatProblem(p).startsWith('mux.toml'),
  );
}

/** Fragments that steer random text towards the parser's and validator's corners. */
const token = fc.constantFrom(
  '\n',
  '[[route]]\n',
  '[route]\n',
  '[timeouts]\n',
  '[limits]\n',
  '[log]\n',
  '[admin]\n',
  '[accept_proxy]\n',
  ' = ',
  '"',
  "'",
  '"""',
  '[',
  ']',
  '{',
  '}',
  ',',
  '#',
  '.',
  '*.',
  'name',
  'sni',
  'host',
  'alpn',
  'protocol',
  'source',
  'backend',
  'backends',
  'listen',
  'on_timeout',
  'proxy_protocol',
  'detect',
  'max_peek_bytes',
  'true',
  '0',
  '65536',
  '1e400',
  '-1',
  '"5s"',
  '"1m30s"',
  '"x:1"',
  '"[::1]:443"',
  '"10.0.0.0/8"',
  '"::ffff:1.2.3.4/120"',
  '"*.bjk.is"',
  '"ssh"',
  '"v2"',
  '__proto__',
  'constructor',
  '1979-05-27',
  '\r\n',
  '\u0000',
  '\u{1F600}',
);

const mutation = fc.oneof(
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(token, fc.string({ maxLength: 8 })),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('duplicate-line' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap-lines' as const), a: fc.nat(), b: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(text: string, m: Mutation): string {
  switch (m.kind) {
    case 'insert': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'delete': {
      const at = m.at % (text.length + 1);
      return text.slice(0, at) + text.slice(at + m.length);
    }
    case 'duplicate-line': {
      const lines = text.split('\n');
      const i = m.at % lines.length;
      lines.splice(i, 0, lines[i]!);
      return lines.join('\n');
    }
    case 'swap-lines': {
      const lines = text.split('\n');
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
  }
}

t.test('parseConfig never throws on random text and always answers well formed', async () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.array(token, { maxLength: 60 }).map((a) => a.join('')),
      ),
      (text) => wellFormed(parseConfig(text, 'mux.toml'), text),
    ),
    { numRuns: RUNS },
  );
});

t.test('parseConfig never throws on mutations of the example', async (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (ms) => {
      const text = ms.reduce(mutate, example);
      const r = parseConfig(text, 'mux.toml');
      if (r.kind === 'ok') accepted++;
      return wellFormed(r, text);
    }),
    { numRuns: RUNS },
  );
  // Mutations that only touch comments or whitespace keep the file valid; some must, or the test is blind.
  t.ok(accepted > 0, `${accepted} mutated files were still valid`);
});

t.test('durations round-trip through formatDuration', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_DURATION_MS }), (ms) => {
      const r = parseDuration(formatDuration(ms));
      return r.kind === 'ok' && r.ms === ms;
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), (s) => {
      const r = parseDuration(s);
      return r.kind === 'error'
        ? r.message.length > 0
        : Number.isInteger(r.ms) && r.ms >= 0 && r.ms <= MAX_DURATION_MS;
    }),
    { numRuns: RUNS },
  );
});

const addressish = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc
    .array(
      fc.constantFrom(
        '[',
        ']',
        ':',
        '::',
        '.',
        '/',
        '%',
        '1',
        '0',
        'ff',
        '255',
        '256',
        'ffff',
        'a',
        'eth0',
        '65535',
        '99999',
      ),
      {
        maxLength: 16,
      },
    )
    .map((a) => a.join('')),
);

t.test('parseEndpoint and parseCidr never throw and only accept what they claim', async () => {
  fc.assert(
    fc.property(addressish, (s) => {
      const e = parseEndpoint(s);
      const c = parseCidr(s);
      const endpointOk =
        e.kind === 'error'
          ? e.message.length > 0
          : e.endpoint.port >= 1 && e.endpoint.port <= 65535 && e.endpoint.text === s;
      const cidrOk =
        c.kind === 'error'
          ? c.message.length > 0
          : c.cidr.bytes.length === (c.cidr.family === 4 ? 4 : 16) &&
            c.cidr.prefix <= c.cidr.bytes.length * 8;
      return endpointOk && cidrOk;
    }),
    { numRuns: RUNS },
  );
});

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

t.test('ipBytes reads every IPv4 and IPv6 text form, including the compressed one URL produces', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) => hex(ipBytes(b.join('.'))!) === hex(b)),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 0, max: 16 }),
      (b, from, len) => {
        // Zero a run so "::" compression happens often.
        b.fill(0, from, Math.min(16, from + len));
        const full = Array.from({ length: 8 }, (_, i) =>
          ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16),
        ).join(':');
        const compressed = new URL(`http://[${full}]/`).hostname.slice(1, -1);
        const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
        const want = hex(mapped ? b.subarray(12) : b);
        return hex(ipBytes(full)!) === want && hex(ipBytes(compressed)!) === want;
      },
    ),
    { numRuns: RUNS },
  );
});

/** The obvious definition: the first `prefix` bits are equal. */
function naiveContains(c: Cidr, ip: Uint8Array): boolean {
  if (ip.length !== c.bytes.length) return false;
  for (let bit = 0; bit < c.prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((ip[bit >> 3]! & mask) !== (c.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}

t.test('cidrContains agrees with a bit-by-bit reference', async () => {
  const family = fc.constantFrom(4, 16);
  const sample = family.chain((n) =>
    fc.tuple(
      fc.uint8Array({ minLength: n, maxLength: n }),
      fc.integer({ min: 0, max: n * 8 }),
      fc.oneof(
        fc.uint8Array({ minLength: n, maxLength: n }),
        fc.uint8Array({ minLength: 20 - n, maxLength: 20 - n }),
        // Near misses: the network itself with one bit flipped.
        fc.integer({ min: 0, max: n * 8 - 1 }).map((bit) => bit),
      ),
    ),
  );
  fc.assert(
    fc.property(sample, ([net, prefix, probe]) => {
      const bytes = net.slice();
      for (let bit = prefix; bit < bytes.length * 8; bit++)
        bytes[bit >> 3] = bytes[bit >> 3]! & ~(0x80 >> (bit & 7));
      const c: Cidr = { family: bytes.length === 4 ? 4 : 6, bytes, prefix, text: '' };
      let ip: Uint8Array;
      if (typeof probe === 'number') {
        ip = bytes.slice();
        ip[probe >> 3] = ip[probe >> 3]! ^ (0x80 >> (probe & 7));
      } else ip = probe;
      return cidrContains(c, ip) === naiveContains(c, ip) && cidrContains(c, bytes);
    }),
    { numRuns: RUNS },
  );
});

function cidr(text: string): Cidr {
  const r = parseCidr(text);
  if (r.kind !== 'ok') throw new Error(r.message);
  return r.cidr;
}

const NAMES = ['a.com', '*.a.com', 'b.a.com', '*.b.a.com', 'x.com'];
const ALPNS = ['h2', 'http/1.1'];
const CIDRS = ['10.0.0.0/8', '10.1.0.0/16', '10.1.2.3', '2001:db8::/32'].map(cidr);
const pick = <T>(pool: readonly T[]) => fc.subarray([...pool], { minLength: 1 });

/** Routes as the validator builds them: sni/alpn force protocol tls, host forces http, never both. */
const routeArb: fc.Arbitrary<RouteConfig> = fc
  .record(
    {
      kind: fc.constantFrom('tls', 'http', 'any'),
      protocol: pick<Protocol>(['tls', 'ssh', 'http']),
      sni: pick(NAMES),
      alpn: pick(ALPNS),
      host: pick(NAMES),
      source: pick(CIDRS),
    },
    { requiredKeys: ['kind'] },
  )
  .map((k) => {
    const r: RouteConfig = { name: 'r', index: 0, onTimeout: false, backends: [], balance: 'first' };
    if (k.source) r.source = k.source;
    if (k.kind === 'tls' && (k.sni || k.alpn)) {
      r.protocol = ['tls'];
      if (k.sni) r.sni = k.sni;
      if (k.alpn) r.alpn = k.alpn;
    } else if (k.kind === 'http' && k.host) {
      r.protocol = ['http'];
      r.host = k.host;
    } else if (k.protocol) r.protocol = k.protocol;
    return r;
  });

const CLIENT_NAMES = [undefined, 'a.com', 'b.a.com', 'c.b.a.com', 'x.com'];
const CLIENT_ALPN = [undefined, ['h2'], ['http/1.1'], ['h2', 'http/1.1'], ['spdy/3']];
const SOURCES = [
  undefined,
  ...['10.1.2.3', '10.2.0.1', '2001:db8::1', '192.168.0.1'].map((s) => ipBytes(s)!),
];
const DETECTIONS: (Detection | null)[] = [null];
for (const name of CLIENT_NAMES) {
  const sni = name !== undefined && { sni: name };
  for (const alpn of CLIENT_ALPN)
    DETECTIONS.push({ protocol: 'tls', ...sni, ...(alpn !== undefined && { alpn }) });
  DETECTIONS.push({ protocol: 'http', ...(name !== undefined && { host: name }) }, { protocol: 'ssh' });
}

t.test(
  'a shadow warning is only given when the earlier route really takes every connection of the later',
  async (t) => {
    let shadowed = 0;
    fc.assert(
      fc.property(routeArb, routeArb, (a, b) => {
        if (!covers(a, b)) return true;
        shadowed++;
        return DETECTIONS.every((d) => SOURCES.every((s) => !routeMatches(b, d, s) || routeMatches(a, d, s)));
      }),
      { numRuns: RUNS },
    );
    t.ok(shadowed > 100, `${shadowed} shadowing pairs checked`);
  },
);
