// The admin listener of a real sni-mux process: health while serving and draining, 404/405, bad requests, off by default.
import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import t from 'tap';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, raw, request } from './helpers/metrics.js';
import { startMux } from './helpers/mux.js';
import { startEcho } from './helpers/servers.js';

const withAdmin = (backend: number, ...extra: string[]): string =>
  muxConfig(...extra, table('admin', { listen: '127.0.0.1:0' }), route('echo', backend));

t.test('/healthz, /metrics, HEAD, and 404/405 for anything else', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, withAdmin(echo.port));
  const started = mux.logs.find((l) => l.msg === 'sni-mux started')!;
  t.match(started.admin, { address: '127.0.0.1', port: Number }, 'the start line says where admin listens');
  const port = adminPort(mux);

  const health = await request(port, '/healthz');
  t.equal(health.status, 200);
  t.equal(health.body, 'ok\n');

  const metrics = await request(port, '/metrics?name[]=x');
  t.equal(metrics.status, 200, 'a query string is ignored');
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(metrics.body, /^# HELP /m);

  const head = await request(port, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '', 'HEAD has no body');

  const post = await request(port, '/metrics', 'POST');
  t.equal(post.status, 405);
  t.equal(post.headers.allow, 'GET, HEAD');
  t.equal((await request(port, '/healthz', 'DELETE')).status, 405);
  t.equal((await request(port, '/nope')).status, 404);
  t.equal((await request(port, '/metrics/')).status, 404);
  t.equal((await request(port, '/../etc/passwd')).status, 404);
});

t.test('malformed requests get a 400 and the process serves on', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, withAdmin(echo.port));
  const port = adminPort(mux);
  t.match(await raw(port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.match(await raw(port, `GET /metrics HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 4\d\d /);
  t.match(await raw(port, '\x16\x03\x01\x00\x05hello'), /^HTTP\/1\.1 400 /, 'a TLS hello on the admin port');
  t.equal(await raw(port, ''), '', 'connect and close at once');
  t.equal((await request(port, '/healthz')).status, 200, 'still serving');
  const r = await exchange(mux.port, Buffer.from('data'));
  t.equal(r.reply.toString(), 'data', 'and relaying');
  t.equal(mux.proc.exitCode, null);
});

t.test('/healthz answers 503 while draining', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, withAdmin(echo.port, table('timeouts', { drain: '30s' })));
  const port = adminPort(mux);
  // A relayed connection keeps the mux draining until it ends.
  const s = net.connect({ port: mux.port, host: '127.0.0.1' });
  s.write('hold');
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  mux.proc.kill('SIGTERM');
  await mux.waitForLog((l) => l.msg === 'draining');
  const health = await request(port, '/healthz');
  t.equal(health.status, 503);
  t.equal(health.body, 'draining\n');
  t.equal((await request(port, '/metrics')).status, 200, 'metrics still answer while draining');
  s.end();
  t.equal(await mux.exited, 0, 'exits once the last connection ends');
});

/** Listening TCP sockets a process holds (Linux): /proc/net/tcp{,6} rows in state 0A owned by its fds. */
async function listeningSockets(pid: number): Promise<number> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m !== null) inodes.add(m[1]!);
  }
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9] ?? '')) n++;
    }
  }
  return n;
}

t.test('without [admin] there is no admin listener', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(route('echo', echo.port)));
  const started = mux.logs.find((l) => l.msg === 'sni-mux started')!;
  t.equal(started.admin, undefined, 'no admin address in the start line');
  t.equal(await listeningSockets(mux.pid), 1, 'the one data listener is the only listening socket');

  const withIt = await startMux(t, withAdmin(echo.port));
  t.equal(await listeningSockets(withIt.pid), 2, 'with [admin]: data listener and admin listener');
});
