// End-to-end behaviour of a real sni-mux process: routing, detection timeouts, relay, half-close, failover.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { captureFirstBytes, exchange, tlsThrough } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { connectionLine, fdCount, fdsBackTo, startMux } from './helpers/mux.js';
import {
  closedPort,
  sha256,
  startEcho,
  startGreeter,
  startRecorder,
  startTlsBackend,
} from './helpers/servers.js';

t.test('TLS clients reach the backend their server name routes to', async (t) => {
  const blog = await startTlsBackend(t, 'blog.bjk.is');
  const sites = await startTlsBackend(t, 'sites.bjk.is');
  const apex = await startTlsBackend(t, 'bjk.is');
  const mux = await startMux(
    t,
    muxConfig(
      route('blog', blog.port, { sni: ['blog.bjk.is'] }),
      route('apex', apex.port, { sni: ['bjk.is'] }),
      route('sites', sites.port, { sni: ['*.bjk.is'] }),
    ),
  );
  const r1 = await tlsThrough(mux.port, 'blog.bjk.is');
  t.equal(r1.subjectCN, 'blog.bjk.is');
  const r2 = await tlsThrough(mux.port, 'BIO.bjk.is');
  t.equal(r2.subjectCN, 'sites.bjk.is', 'wildcard, case-insensitive');
  const r3 = await tlsThrough(mux.port, 'bjk.is');
  t.equal(r3.subjectCN, 'bjk.is', 'the wildcard does not take the apex');
  const r4 = await tlsThrough(mux.port, 'a.b.bjk.is');
  t.equal(r4.subjectCN, 'sites.bjk.is', 'wildcard takes deeper names');
  const line = await connectionLine(mux, r1.localPort);
  t.match(line, { route: 'blog', protocol: 'tls', sni: 'blog.bjk.is', end: 'client_closed' });
});

t.test('ALPN narrows a route; a hello without SNI matches only routes without sni', async (t) => {
  const h2 = await startTlsBackend(t, 'h2-only', ['h2']);
  const other = await startTlsBackend(t, 'other');
  const nosni = await startTlsBackend(t, 'no-sni');
  const mux = await startMux(
    t,
    muxConfig(
      route('h2', h2.port, { sni: ['app.example'], alpn: ['h2'] }),
      route('app', other.port, { sni: ['app.example'] }),
      route('tls-any', nosni.port, { protocol: 'tls' }),
    ),
  );
  t.equal((await tlsThrough(mux.port, 'app.example', ['h2'])).subjectCN, 'h2-only');
  t.equal((await tlsThrough(mux.port, 'app.example', ['http/1.1'])).subjectCN, 'other');
  t.equal((await tlsThrough(mux.port, 'app.example')).subjectCN, 'other', 'no ALPN offered');
  const bare = await tlsThrough(mux.port, undefined);
  t.equal(bare.subjectCN, 'no-sni');
  t.match(await connectionLine(mux, bare.localPort), { route: 'tls-any', sni: undefined });
});

t.test('a ClientHello sent one byte per write still routes, every byte delivered in order', async (t) => {
  const rec = await startRecorder(t, 'blog');
  const other = await startRecorder(t, 'other');
  const mux = await startMux(
    t,
    muxConfig(route('blog', rec.port, { sni: ['blog.bjk.is'] }), route('other', other.port)),
  );
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'blog.bjk.is', rejectUnauthorized: false }),
  );
  const tail = randomBytes(1000);
  const sent = Buffer.concat([hello, tail]);
  const ex = await exchange(mux.port, sent, { chunk: 1 });
  t.equal(ex.reply.toString(), `blog ${sent.length} ${sha256(sent)}`, 'the blog backend got every byte');
});

t.test('a client that sends nothing reaches the on_timeout route after timeouts.detect', async (t) => {
  const ssh = await startGreeter(t, 'SSH-2.0-test-server');
  const mux = await startMux(
    t,
    muxConfig(
      table('timeouts', { detect: '200ms' }),
      route('ssh', ssh.port, { protocol: 'ssh', on_timeout: true }),
    ),
  );
  const banner = await new Promise<string>((resolve, reject) => {
    const s = net.connect(mux.port, '127.0.0.1');
    s.setEncoding('utf8');
    s.on('error', reject);
    s.once('data', (d: string) => {
      resolve(d);
      s.destroy();
    });
  });
  t.equal(banner, 'SSH-2.0-test-server\n');
  const line = await mux.waitForLog((l) => l.route === 'ssh' && l.end !== undefined);
  t.equal(line.protocol, undefined, 'nothing was detected');
});

t.test('without an on_timeout route a silent client is closed after timeouts.detect', async (t) => {
  const rec = await startRecorder(t, 'any');
  const mux = await startMux(
    t,
    muxConfig(table('timeouts', { detect: '100ms' }), route('tls', rec.port, { protocol: 'tls' })),
  );
  const ex = await exchange(mux.port, Buffer.alloc(0), { end: false });
  t.equal(ex.reply.length, 0);
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_data' });
});

t.test('garbage with no catch-all is closed; the process keeps serving', async (t) => {
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(t, muxConfig(route('tls', rec.port, { protocol: 'tls' })));
  for (let i = 0; i < 20; i++) {
    const junk = randomBytes(64);
    junk[0] = 0xff; // never a TLS record or any probe's first byte
    const ex = await exchange(mux.port, junk);
    t.equal(ex.reply.length, 0, 'nothing answered');
  }
  const bad = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00]);
  const exBad = await exchange(mux.port, bad);
  t.match(await connectionLine(mux, exBad.localPort), { reject: 'bad_hello', protocol: 'tls' });
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'x.example', rejectUnauthorized: false }),
  );
  const ex = await exchange(mux.port, hello);
  t.equal(ex.reply.toString(), `tls ${hello.length} ${sha256(hello)}`, 'a real hello still routes');
  t.equal(mux.proc.exitCode, null, 'alive');
});

t.test('bytes that match no protocol go to the catch-all route', async (t) => {
  const tlsRec = await startRecorder(t, 'tls');
  const fallback = await startRecorder(t, 'fallback');
  const mux = await startMux(
    t,
    muxConfig(route('tls', tlsRec.port, { protocol: 'tls' }), route('fallback', fallback.port)),
  );
  const payload = Buffer.from('\xffhello, whoever you are\r\n', 'latin1');
  const ex = await exchange(mux.port, payload);
  t.equal(ex.reply.toString(), `fallback ${payload.length} ${sha256(payload)}`);
  t.match(await connectionLine(mux, ex.localPort), { route: 'fallback', protocol: undefined });
});

t.test('HTTP routes by Host header, SSH by banner', async (t) => {
  const blog = await startRecorder(t, 'blog-http');
  const other = await startRecorder(t, 'other-http');
  const ssh = await startRecorder(t, 'ssh');
  const mux = await startMux(
    t,
    muxConfig(
      route('blog', blog.port, { host: ['blog.bjk.is'] }),
      route('http', other.port, { protocol: 'http' }),
      route('ssh', ssh.port, { protocol: 'ssh' }),
    ),
  );
  const req = Buffer.from('GET / HTTP/1.1\r\nUser-Agent: t\r\nHost: Blog.BJK.is:8080\r\n\r\n');
  t.match((await exchange(mux.port, req)).reply.toString(), /^blog-http /);
  const req2 = Buffer.from('GET / HTTP/1.1\r\nHost: bio.bjk.is\r\n\r\n');
  t.match((await exchange(mux.port, req2)).reply.toString(), /^other-http /);
  const banner = Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
  t.match((await exchange(mux.port, banner, { chunk: 3 })).reply.toString(), /^ssh /);
});

t.test('half-close: the client shuts down writing and still gets the whole reply', async (t) => {
  const rec = await startRecorder(t, 'counter');
  const mux = await startMux(t, muxConfig(route('all', rec.port)));
  const body = Buffer.concat([Buffer.from('\xff', 'latin1'), randomBytes(3 * 1024 * 1024)]);
  const ex = await exchange(mux.port, body);
  t.equal(ex.reply.toString(), `counter ${body.length} ${sha256(body)}`);
  t.equal(ex.errored, undefined, 'closed with FIN, not a reset');
  t.match(await connectionLine(mux, ex.localPort), {
    end: 'client_closed',
    bytes_client_to_backend: body.length,
    bytes_backend_to_client: ex.reply.length,
  });
});

t.test('bulk data both ways arrives identical', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(route('echo', echo.port)));
  const body = Buffer.concat([Buffer.from([0xff]), randomBytes(16 * 1024 * 1024)]);
  const ex = await exchange(mux.port, body, { chunk: 65536 });
  t.equal(ex.reply.length, body.length);
  t.equal(sha256(ex.reply), sha256(body));
});

t.test('a backend that refuses is skipped for the next one; all down closes the client', async (t) => {
  const dead1 = await closedPort();
  const dead2 = await closedPort();
  const rec = await startRecorder(t, 'second');
  const mux = await startMux(
    t,
    muxConfig(route('up', [dead1, rec.port], { sni: ['up.example'] }), route('down', [dead1, dead2])),
  );
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'up.example', rejectUnauthorized: false }),
  );
  const ex = await exchange(mux.port, hello);
  t.match(ex.reply.toString(), /^second /, 'the second backend answered');
  await mux.waitForLog((l) => l.msg === 'backend connect failed' && l.code === 'ECONNREFUSED');
  const ex2 = await exchange(mux.port, Buffer.from('\xffanything', 'latin1'));
  t.equal(ex2.reply.length, 0);
  t.match(await connectionLine(mux, ex2.localPort), { route: 'down', reject: 'backend_unavailable' });
});

t.test('an IPv6 listener and an IPv6 backend', async (t) => {
  const rec = await startRecorder(t, 'v6', '::1');
  const mux = await startMux(
    t,
    `listen = ["[::1]:0"]
[[route]]
name = "v6"
backend = "[::1]:${rec.port}"
`,
  );
  const ex = await exchange(mux.port, Buffer.from('\xffsix', 'latin1'), { host: '::1' });
  t.match(ex.reply.toString(), /^v6 4 /);
  t.match(await connectionLine(mux, ex.localPort), { client: '::1', route: 'v6' });
});

t.test('file descriptors return to baseline after many connections of every outcome', async (t) => {
  const rec = await startRecorder(t, 'r');
  const dead = await closedPort();
  const mux = await startMux(
    t,
    muxConfig(
      table('timeouts', { detect: '100ms' }),
      route('ssh', dead, { protocol: 'ssh' }),
      route('tls', rec.port, { protocol: 'tls' }),
    ),
  );
  const baseline = await fdCount(mux.pid);
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'x.example', rejectUnauthorized: false }),
  );
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    done.push(exchange(mux.port, hello)); // relayed
    done.push(exchange(mux.port, Buffer.from('SSH-2.0-x\r\n'))); // backend down
    done.push(exchange(mux.port, Buffer.from([0xff, 1, 2]))); // no route
    done.push(exchange(mux.port, Buffer.alloc(0), { end: false })); // silent: detect timeout
  }
  await Promise.all(done);
  await mux.waitForLog(
    () => mux.logs.filter((l) => l.reject !== undefined || l.end !== undefined).length >= 200,
  );
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
  t.equal(mux.proc.exitCode, null, 'alive');
});

t.test('SIGTERM drains: exits 0 after the live connection finishes', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(route('echo', echo.port)));
  const s = net.connect(mux.port, '127.0.0.1');
  s.write('\xffping');
  await new Promise((resolve) => s.once('data', resolve));
  mux.proc.kill('SIGTERM');
  await mux.waitForLog((l) => l.msg === 'draining');
  s.write('still here');
  const echoed = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
  t.equal(echoed, 'still here', 'the live connection keeps flowing during the drain');
  s.end();
  t.equal(await mux.exited, 0);
});
