// Measures Router.select for 1, 100 and 10,000 SNI routes, exact and wildcard: lookups must not grow with the count.
// Run: node --import=@tapjs/typescript/import benchmarks/micro-route.ts [--json]

import type { RouteConfig } from '../lib/config/types.js';
import type { Detection } from '../lib/detect/types.js';
import { Router } from '../lib/route/router.js';
import { nsPerCall, report } from './timing.js';

function routes(count: number, wildcard: boolean): RouteConfig[] {
  const out: RouteConfig[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      name: `r${i}`,
      index: i,
      sni: [wildcard ? `*.site${i}.example.com` : `site${i}.example.com`],
      onTimeout: false,
      balance: 'first',
      backends: [{ host: '127.0.0.1', port: 1000 + (i % 60000), text: `127.0.0.1:${1000 + (i % 60000)}` }],
    });
  }
  // A catch-all at the end, as most configs have: it is checked for every connection.
  out.push({
    name: 'rest',
    index: count,
    onTimeout: false,
    balance: 'first',
    backends: [{ host: '127.0.0.1', port: 9, text: '127.0.0.1:9' }],
  });
  return out;
}

const results: Record<string, number> = {};
for (const wildcard of [false, true]) {
  for (const count of [1, 100, 10_000]) {
    const router = new Router(routes(count, wildcard));
    // The last named route: a linear scan would pay for every route before it.
    const last = count - 1;
    const hit: Detection = {
      protocol: 'tls',
      sni: wildcard ? `www.site${last}.example.com` : `site${last}.example.com`,
    };
    const miss: Detection = { protocol: 'tls', sni: 'nowhere.example.org' };
    const kind = wildcard ? 'wildcard' : 'exact';
    results[`route: ${count} ${kind} routes, hit the last`] = nsPerCall(
      () => router.select(hit, undefined)!.index,
      200_000,
    );
    results[`route: ${count} ${kind} routes, miss`] = nsPerCall(
      () => router.select(miss, undefined)!.index,
      200_000,
    );
  }
}
report(results);
