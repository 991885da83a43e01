// Measures detect() (every probe in table order) on real first bytes of several protocols, in ns per call.
// Run: node --import=@tapjs/typescript/import benchmarks/micro-detect.ts [--json]

import { readFileSync } from 'node:fs';
import { detect } from '../lib/detect/detect.js';
import { buildClientHello } from '../test/helpers/hello-builder.js';
import { nsPerCall, report } from './timing.js';

const fixture = (path: string): Buffer => readFileSync(new URL(`../test/fixtures/${path}`, import.meta.url));

const cases: [string, Uint8Array][] = [
  ['detect: TLS hello, 337 B', fixture('clienthello/openssl-sni-alpn.bin')],
  [
    'detect: TLS hello, post-quantum 2 KB',
    Buffer.from(
      buildClientHello({
        sni: 'pq.example.com',
        alpn: ['h2', 'http/1.1'],
        grease: true,
        keyShareBytes: 1216,
        padTo: 2048,
      }),
    ),
  ],
  ['detect: SSH banner', fixture('first-bytes/ssh-openssh.bin')],
  ['detect: HTTP GET', fixture('first-bytes/http-curl-get.bin')],
  ['detect: OpenVPN (asked late in the table)', fixture('first-bytes/openvpn-tcp-tls-crypt.bin')],
  ['detect: unknown bytes (every probe says no)', Buffer.from('\x7fELF unknown protocol bytes')],
];

const results: Record<string, number> = {};
for (const [name, buf] of cases) {
  results[name] = nsPerCall(() => (detect(buf).kind === 'match' ? 1 : 0), 200_000);
}
report(results);
