// The router picks the first route in file order whose every key holds; the name index agrees with a linear scan.
import fc from 'fast-check';
import t from 'tap';
import type { RouteConfig } from '../lib/config/types.js';
import type { Detection } from '../lib/detect/types.js';
import { nameMatches } from '../lib/net/hostname.js';
import { parseCidr } from '../lib/net/ip.js';
import { Router, routeMatches } from '../lib/route/router.js';

const backend = [{ host: '127.0.0.1', port: 1, text: '127.0.0.1:1' }];

function route(name: string, keys: Partial<RouteConfig>, index: number): RouteConfig {
  return { name, index, onTimeout: false, backends: backend, balance: 'first', ...keys };
}

function cidr(text: string) {
  const r = parseCidr(text);
  if (r.kind !== 'ok') throw new Error(text);
  return r.cidr;
}

const tls = (sni?: string, alpn?: string[]): Detection => ({
  protocol: 'tls',
  ...(sni !== undefined && { sni }),
  ...(alpn !== undefined && { alpn }),
});
const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([a, b, c, d]);

t.test('wildcards match any deeper name but not the apex', async (t) => {
  t.ok(nameMatches('*.bjk.is', 'blog.bjk.is'));
  t.ok(nameMatches('*.bjk.is', 'a.b.bjk.is'));
  t.notOk(nameMatches('*.bjk.is', 'bjk.is'));
  t.notOk(nameMatches('*.bjk.is', 'xbjk.is'));
  t.ok(nameMatches('bjk.is', 'bjk.is'));
  t.notOk(nameMatches('bjk.is', 'blog.bjk.is'));
});

t.test('first match in file order wins across exact, wildcard and unnamed routes', async (t) => {
  const routes = [
    route('wild', { sni: ['*.bjk.is'], protocol: ['tls'] }, 0),
    route('exact', { sni: ['blog.bjk.is'], protocol: ['tls'] }, 1),
    route('tls', { protocol: ['tls'] }, 2),
    route('all', {}, 3),
  ];
  const r = new Router(routes);
  t.equal(r.select(tls('blog.bjk.is'), undefined)?.name, 'wild', 'earlier wildcard beats later exact');
  t.equal(r.select(tls('bjk.is'), undefined)?.name, 'tls');
  t.equal(r.select(tls(undefined), undefined)?.name, 'tls');
  t.equal(r.select({ protocol: 'ssh' }, undefined)?.name, 'all');
  t.equal(r.select(null, undefined)?.name, 'all', 'unknown bytes reach the catch-all');
});

t.test('alpn, host and source keys must all hold', async (t) => {
  const routes = [
    route('h2-lan', { sni: ['app.x'], alpn: ['h2'], source: [cidr('192.168.0.0/16')] }, 0),
    route('h2', { sni: ['app.x'], alpn: ['h2'] }, 1),
    route('web', { host: ['app.x'] }, 2),
    route('v6', { source: [cidr('2001:db8::/32')] }, 3),
  ];
  const r = new Router(routes);
  t.equal(r.select(tls('app.x', ['h2']), v4(192, 168, 1, 2))?.name, 'h2-lan');
  t.equal(r.select(tls('app.x', ['http/1.1', 'h2']), v4(10, 0, 0, 1))?.name, 'h2');
  t.equal(r.select(tls('app.x', ['http/1.1']), v4(10, 0, 0, 1)), undefined, 'no route offers http/1.1');
  t.equal(r.select({ protocol: 'http', host: 'app.x' }, v4(10, 0, 0, 1))?.name, 'web');
  t.equal(r.select({ protocol: 'http', host: 'other.x' }, v4(10, 0, 0, 1)), undefined);
  const six = new Uint8Array(16);
  six.set([0x20, 0x01, 0x0d, 0xb8]);
  t.equal(r.select(null, six)?.name, 'v6');
  t.equal(r.select(null, v4(10, 0, 0, 1)), undefined);
});

t.test('on_timeout route honours its source key', async (t) => {
  const r = new Router([
    route('ssh', { protocol: ['ssh'], onTimeout: true, source: [cidr('10.0.0.0/8')] }, 0),
  ]);
  t.equal(r.selectOnTimeout(v4(10, 1, 2, 3))?.name, 'ssh');
  t.equal(r.selectOnTimeout(v4(11, 1, 2, 3)), undefined);
});

// Names from a small alphabet so that exact, wildcard and apex collisions are common.
const label = fc.constantFrom('a', 'b', 'bjk', 'is', 'x');
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const pattern = fc.tuple(fc.boolean(), name).map(([wild, n]) => (wild ? `*.${n}` : n));
const routeKeys = fc.record(
  {
    sni: fc.array(pattern, { minLength: 1, maxLength: 3 }),
    alpn: fc.array(fc.constantFrom('h2', 'http/1.1'), { minLength: 1, maxLength: 2 }),
    protocol: fc.constant(['tls' as const]),
  },
  { requiredKeys: [] },
);

t.test('the indexed router agrees with a linear scan (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.array(routeKeys, { minLength: 1, maxLength: 30 }),
      fc.option(name, { nil: undefined }),
      fc.option(fc.array(fc.constantFrom('h2', 'http/1.1', 'x'), { maxLength: 2 }), { nil: undefined }),
      (keys, sni, alpn) => {
        const routes = keys.map((k, i) => route(`r${i}`, k, i));
        const d = tls(sni, alpn);
        const expected = routes.find((r) => routeMatches(r, d, undefined));
        return new Router(routes).select(d, undefined) === expected;
      },
    ),
    { numRuns: 10_000 },
  );
  t.pass('10,000 random route tables');
});

t.test('10,000 SNI routes: every name finds its own route', async (t) => {
  const routes: RouteConfig[] = [];
  for (let i = 0; i < 10_000; i++) {
    routes.push(route(`r${i}`, { sni: [i % 2 ? `*.s${i}.example` : `h${i}.example`], protocol: ['tls'] }, i));
  }
  const r = new Router(routes);
  let ok = 0;
  for (let i = 0; i < 10_000; i++) {
    const n = i % 2 ? `www.s${i}.example` : `h${i}.example`;
    if (r.select(tls(n), undefined) === routes[i]) ok++;
  }
  t.equal(ok, 10_000);
});
