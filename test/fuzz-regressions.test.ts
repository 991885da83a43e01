// Replays what the long fuzz runs found: every saved finding and the whole corpus still pass each target's checks.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import t from 'tap';
import { MAX_SCAN, normalizeHost, probeHttp } from '../lib/detect/probes/http.js';
import { starts } from './fuzz/target.js';
import { TARGETS } from './fuzz/targets/index.js';

const fuzzDir = new URL('./fuzz/', import.meta.url);

function inputs(sub: string, target: string): { name: string; data: Uint8Array }[] {
  const dir = new URL(`${sub}/${target}/`, fuzzDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, data: new Uint8Array(readFileSync(new URL(name, dir))) }));
}

for (const target of TARGETS) {
  t.test(`${target.name}: every saved finding now passes the checks`, async (t) => {
    const found = inputs('crashes', target.name);
    for (const { name, data } of found) t.doesNotThrow(() => target.check(data), name);
    if (found.length === 0) t.pass('no findings saved');
  });

  t.test(`${target.name}: the corpus, the seeds and the generated inputs pass the checks`, async (t) => {
    const corpus = [
      ...inputs('corpus', target.name),
      ...starts(target).map((data, i) => ({ name: `seed ${i}`, data })),
    ];
    const failed: string[] = [];
    for (const { name, data } of corpus) {
      try {
        target.check(data);
      } catch (err) {
        failed.push(`${name}: ${(err as Error).message}`);
      }
    }
    t.same(failed, [], `${corpus.length} inputs`);
  });
}

t.test('a Host with two trailing dots keeps one: it can match no configured name', async (t) => {
  // Found by the http target (crashes/http/5f5ccd1a232b50e5): only one trailing dot is dropped.
  t.equal(normalizeHost('P..'), 'p.');
  const r = probeHttp(Buffer.from('GET / HTTP/1.1\r\nHost: Example.COM..\r\n\r\n'));
  t.match(r, { kind: 'match', detection: { protocol: 'http', host: 'example.com.' } });
});

t.test('an HTTP request line is decided within MAX_SCAN bytes, so each rescan is bounded', async (t) => {
  // Found by timing detect() on trickled inputs: the target scan ran to the end of the peek buffer.
  const line = Buffer.concat([Buffer.from('GET /'), Buffer.alloc(4 * MAX_SCAN, 'a')]);
  t.match(probeHttp(line.subarray(0, MAX_SCAN - 1)), { kind: 'need-more' });
  t.match(probeHttp(line.subarray(0, MAX_SCAN)), { kind: 'invalid', protocol: 'http' });
  t.match(probeHttp(line), { kind: 'invalid', protocol: 'http' });
  const fits = Buffer.concat([
    Buffer.from('GET /'),
    Buffer.alloc(MAX_SCAN - 64, 'a'),
    Buffer.from(' HTTP/1.1\r\n\r\n'),
  ]);
  t.match(probeHttp(fits), { kind: 'match' }, 'a long target that ends in time still matches');
});
