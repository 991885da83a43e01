// Chromium headless loads a page over HTTP/3 through sni-mux's listen_udp, routed by the SNI in its Initials.
//
// --origin-to-force-quic-on makes Chromium use QUIC at once (no Alt-Svc round over TCP), and
// --host-resolver-rules points the name at the mux. The only TCP route goes to a closed port, so the
// page can only have come over QUIC. Chromium's hellos are post-quantum (about 1.9 KB) and span two
// Initials with shuffled CRYPTO frames: the case test/quic.test.ts pins with a captured fixture.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CHROMIUM_QUIET } from '../helpers/browser.js';
import { startMux } from '../helpers/mux.js';
import { freePort, freeUdpPort, missing, program, run, startDaemon, tempDir } from '../helpers/programs.js';
import { certFiles } from '../helpers/servers.js';

const skip = missing('chromium', 'gtlsserver', 'openssl');

t.test('chromium loads a page over HTTP/3 through sni-mux', { skip }, async (t) => {
  const dir = tempDir(t, 'chromium-quic');
  const { keyFile, certFile } = certFiles('pq.example');
  // Chromium trusts this one key for the test (QUIC refuses certificate errors otherwise).
  const spkiDer = new X509Certificate(readFileSync(certFile)).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  const spki = createHash('sha256').update(spkiDer).digest('base64');
  mkdirSync(join(dir, 'htdocs'));
  writeFileSync(join(dir, 'htdocs', 'index.html'), '<html><body>over h3 through sni-mux</body></html>\n');
  const backend = await freeUdpPort();
  await startDaemon(
    t,
    program('gtlsserver'),
    ['-d', join(dir, 'htdocs'), '127.0.0.1', String(backend), keyFile, certFile],
    { cwd: dir, ready: /Using document root/ },
  );
  const closed = await freePort();
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
listen_udp = ["127.0.0.1:0"]
[timeouts]
udp_idle = "2s"
[[route]]
name = "pq-h3"
protocol = "quic"
sni = "pq.example"
backend = "127.0.0.1:${backend}"
[[route]]
name = "tcp-nowhere"
backend = "127.0.0.1:${closed}"
`,
  );
  const r = await run(
    program('chromium'),
    [
      ...CHROMIUM_QUIET,
      `--user-data-dir=${join(dir, 'profile')}`,
      '--origin-to-force-quic-on=pq.example:443',
      `--host-resolver-rules=MAP pq.example:443 127.0.0.1:${mux.udpPorts[0]}`,
      `--ignore-certificate-errors-spki-list=${spki}`,
      '--dump-dom',
      'https://pq.example/index.html',
    ],
    { cwd: dir, timeoutMs: 90_000 },
  );
  t.match(r.text, /over h3 through sni-mux/, 'the page arrived', { stderr: r.stderr.slice(-1000) });
  const line = await mux.waitForLog((l) => l.msg === 'udp flow closed' && l.route === 'pq-h3');
  t.match(line, { protocol: 'quic', sni: 'pq.example', alpn: ['h3'], end: 'idle_timeout' });
  t.ok((line.datagrams_backend_to_client as number) > 2, 'handshake and response relayed back');
  t.notOk(
    mux.logs.some((l) => l.route === 'tcp-nowhere'),
    'nothing went over TCP',
  );
});
