// The order a route's backends are tried in: rotation, failed backends moved last, and what a reload keeps.
import fc from 'fast-check';
import t from 'tap';
import type { Balance, Endpoint, RouteConfig } from '../lib/config/types.js';
import { Balancer } from '../lib/connect/balance.js';
import { property } from './helpers/property.js';

const ep = (port: number): Endpoint => ({ host: '10.0.0.1', port, text: `10.0.0.1:${port}` });
const A = ep(1);
const B = ep(2);
const C = ep(3);

function route(index: number, balance: Balance, backends: Endpoint[]): RouteConfig {
  return { name: `r${index}`, index, onTimeout: false, backends, balance };
}

const ports = (list: readonly Endpoint[]): number[] => list.map((e) => e.port);

t.test('"first" keeps the written order, and returns the route\'s own list while all are up', async (t) => {
  const r = route(0, 'first', [A, B, C]);
  const b = new Balancer([r], 10_000);
  for (let i = 0; i < 3; i++) t.equal(b.order(r, i), r.backends, 'the same array: nothing allocated');
  const single = route(1, 'roundrobin', [A]);
  t.equal(new Balancer([r, single], 10_000).order(single, 0), single.backends, 'one backend: no rotation');
});

t.test('"roundrobin" starts each connection one further down the list, per route', async (t) => {
  const r0 = route(0, 'roundrobin', [A, B, C]);
  const r1 = route(1, 'roundrobin', [B, C]);
  const b = new Balancer([r0, r1], 10_000);
  t.same(
    [0, 1, 2, 3].map(() => ports(b.order(r0, 0))),
    [
      [1, 2, 3],
      [2, 3, 1],
      [3, 1, 2],
      [1, 2, 3],
    ],
  );
  t.same(ports(b.order(r1, 0)), [2, 3], "another route's rotation is its own");
  t.same(ports(b.order(r1, 0)), [3, 2]);
});

t.test(
  'a backend whose connect failed goes last until backend_down has passed, or it connects',
  async (t) => {
    const first = route(0, 'first', [A, B, C]);
    const rr = route(1, 'roundrobin', [A, B, C]);
    const b = new Balancer([first, rr], 10_000);
    b.failed(A, 1000);
    t.same(ports(b.order(first, 1001)), [2, 3, 1], 'still tried, after the others');
    t.same(ports(b.order(rr, 1001)), [2, 3, 1], "shared by every route that lists it; A's turn passes to B");
    t.same(ports(b.order(rr, 1001)), [3, 2, 1]);
    t.same(ports(b.order(rr, 1001)), [2, 3, 1], 'B and C take turns while A is down');
    b.failed(B, 2000);
    t.same(ports(b.order(first, 2001)), [3, 1, 2], 'two down: both last, in list order');
    t.same(ports(b.order(first, 11_000)), [1, 3, 2], 'A back at the front once 10 s have passed');
    b.connected(B);
    t.equal(b.order(first, 11_000), first.backends, 'B connected: all up again');
  },
);

t.test('backend_down = 0 remembers nothing', async (t) => {
  const r = route(0, 'first', [A, B]);
  const b = new Balancer([r], 0);
  b.failed(A, 0);
  t.equal(b.order(r, 1), r.backends);
});

t.test('a reload keeps what is known of down backends, and both configs share it', async (t) => {
  const r = route(0, 'first', [A, B]);
  const old = new Balancer([r], 10_000);
  old.failed(A, 0);
  const reloaded = route(0, 'first', [ep(1), ep(2)]);
  const next = new Balancer([reloaded], 10_000, old);
  t.same(ports(next.order(reloaded, 1)), [2, 1], 'matched by address text, not by object');
  old.failed(B, 5);
  t.same(ports(next.order(reloaded, 6)), [1, 2], 'a connection on the old config marks B for the new one');
});

type Op = { kind: 'order' } | { kind: 'fail'; backend: number } | { kind: 'connect'; backend: number };

t.test(
  'any mix of connects, failures and time: every backend is tried once, up ones first (property)',
  async (t) => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant({ kind: 'order' as const }),
      fc.record({ kind: fc.constant('fail' as const), backend: fc.nat(5) }),
      fc.record({ kind: fc.constant('connect' as const), backend: fc.nat(5) }),
    );
    property(
      t,
      'each order is a permutation with the down backends last',
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom<Balance>('first', 'roundrobin'),
        fc.array(fc.tuple(op, fc.integer({ min: 0, max: 4000 })), { maxLength: 40 }),
        (n, balance, ops) => {
          const backends = Array.from({ length: n }, (_, i) => ep(i + 1));
          const r = route(0, balance, backends);
          const b = new Balancer([r], 10_000);
          let now = 0;
          for (const [o, dt] of ops) {
            now += dt;
            const e = backends[('backend' in o ? o.backend : 0) % n]!;
            if (o.kind === 'fail') b.failed(e, now);
            else if (o.kind === 'connect') b.connected(e);
            else {
              const order = b.order(r, now);
              if ([...ports(order)].sort((x, y) => x - y).join() !== ports(backends).join()) return false;
              const firstDown = order.findIndex((x) => b.isDown(x.text, now));
              if (firstDown >= 0 && order.slice(firstDown).some((x) => !b.isDown(x.text, now))) return false;
            }
          }
          return true;
        },
      ),
    );
  },
);

t.test('roundrobin with every backend up: n connections start at each backend once (property)', async (t) => {
  property(
    t,
    'holds',
    fc.property(fc.integer({ min: 2, max: 8 }), fc.nat(20), (n, warmup) => {
      const r = route(
        0,
        'roundrobin',
        Array.from({ length: n }, (_, i) => ep(i + 1)),
      );
      const b = new Balancer([r], 10_000);
      for (let i = 0; i < warmup; i++) b.order(r, 0);
      const firsts = Array.from({ length: n }, () => b.order(r, 0)[0]!.port);
      return new Set(firsts).size === n;
    }),
  );
});
