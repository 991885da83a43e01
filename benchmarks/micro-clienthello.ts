// Measures parseClientHello on a ~300-byte captured hello and a ~2 KB post-quantum-sized one, in ns per parse.
// Run: node --import=@tapjs/typescript/import benchmarks/micro-clienthello.ts   (or on the compiled output)

import { readFileSync } from 'node:fs';
import { parseClientHello } from '../lib/detect/clienthello.js';
import { buildClientHello } from '../test/helpers/hello-builder.js';

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

// A sink the optimiser cannot see through, so parses are not dead code.
let sink = 0;

function bench(buf: Uint8Array, iterations: number): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const r = parseClientHello(buf);
    if (r.kind === 'match') sink += r.hello.length;
  }
  return Number(process.hrtime.bigint() - start) / iterations;
}

for (const [name, buf] of cases) {
  bench(buf, 200_000); // warm up into optimised code
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) best = Math.min(best, bench(buf, 500_000));
  console.log(`${name} (${buf.length} B): ${best.toFixed(0)} ns/parse`);
}
if (sink === 42) console.log('');
