// Measures parseClientHello on a ~300-byte captured hello and a ~2 KB post-quantum-sized one, in ns per parse.
// Run: node --import=@tapjs/typescript/import benchmarks/micro-clienthello.ts [--json]

import { readFileSync } from 'node:fs';
import { parseClientHello } from '../lib/detect/clienthello.js';
import { buildClientHello } from '../test/helpers/hello-builder.js';
import { nsPerCall, report } from './timing.js';

const small = new Uint8Array(
  readFileSync(new URL('../test/fixtures/clienthello/openssl-sni-alpn.bin', import.meta.url)),
);
const cases: [string, Uint8Array][] = [
  ['openssl 3.0 hello', small],
  // Sockets hand over Buffers, so the peeked bytes usually are one.
  ['same, as a Buffer', Buffer.from(small)],
  [
    'post-quantum, GREASE, padded',
    buildClientHello({
      sni: 'pq.example.com',
      alpn: ['h2', 'http/1.1'],
      grease: true,
      keyShareBytes: 1216,
      padTo: 2048,
    }),
  ],
  [
    'same, split over 3 records',
    buildClientHello({
      sni: 'pq.example.com',
      alpn: ['h2', 'http/1.1'],
      grease: true,
      keyShareBytes: 1216,
      padTo: 2048,
      recordSplit: [700, 700],
    }),
  ],
];

const results: Record<string, number> = {};
for (const [name, buf] of cases) {
  results[`parse: ${name} (${buf.length} B)`] = nsPerCall(() => {
    const r = parseClientHello(buf);
    return r.kind === 'match' ? r.hello.length : 0;
  }, 200_000);
}
report(results);
