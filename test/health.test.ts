// Active health checks: a stopped backend goes down after `fall` checks and is tried last, comes back after `rise`.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { connectionLine, type LogLine, type MuxProcess, startMux } from './helpers/mux.js';
import { rewriteAndReload, runCli } from './helpers/ops.js';
import { freePort, missing, program, startDaemon, tempDir } from './helpers/programs.js';
import { certFiles } from './helpers/servers.js';

const HEALTH = table('health', { interval: '100ms', timeout: '1s', rise: 2, fall: 2 });
const ADMIN = table('admin', { listen: '127.0.0.1:0' });

/** A backend that says its name and closes, on a port it can be stopped and started again on. */
async function named(t: Test, name: string, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('end', () => s.end(`${name}\n`));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      if (server.listening) server.close(() => resolve());
      else resolve();
    });
  t.teardown(close);
  return { port: (server.address() as net.AddressInfo).port, close };
}

const isState = (msg: string, backend: string) => (l: LogLine) => l.msg === msg && l.backend === backend;
const count = (mux: MuxProcess, pred: (l: LogLine) => boolean): number => mux.logs.filter(pred).length;

t.test(
  'connect check: a stopped backend goes down and last, comes back up; reload keeps its state',
  async (t) => {
    const a = await named(t, 'a');
    const b = await named(t, 'b');
    const A = `127.0.0.1:${a.port}`;
    const B = `127.0.0.1:${b.port}`;
    const toml = (extra = '') =>
      muxConfig(
        HEALTH,
        ADMIN,
        route('web', [a.port, b.port], { protocol: 'http', health_check: 'connect' }),
        extra,
      );
    const mux = await startMux(t, toml());
    const admin = adminPort(mux);
    let m = await scrape(admin);
    t.equal(value(m, 'snimux_backend_up', { route: 'web', backend: A }), 1, 'backends start up');
    t.equal(value(m, 'snimux_backend_up', { route: 'web', backend: B }), 1);

    await a.close();
    await mux.waitForLog(isState('backend down', A));
    m = await scrape(admin);
    t.equal(value(m, 'snimux_backend_up', { route: 'web', backend: A }), 0, 'down after fall failed checks');
    t.equal(value(m, 'snimux_backend_up', { route: 'web', backend: B }), 1);
    // The status page's /routes shows the same active state per backend.
    const routes = await fetch(`http://127.0.0.1:${admin}/routes`);
    const web = (
      (await routes.json()) as { route: string; backend_state: { backend: string; up: boolean | null }[] }[]
    ).find((r) => r.route === 'web');
    t.same(
      web?.backend_state.map((b) => [b.backend, b.up]),
      [
        [A, false],
        [B, true],
      ],
      '/routes: A down, B up',
    );
    const ex = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    t.equal(ex.reply.toString(), 'b\n', 'the client goes to the backend that is up');
    t.match(await connectionLine(mux, ex.localPort), { route: 'web', backend: B });
    t.equal(
      count(mux, (l) => l.msg === 'backend connect failed'),
      0,
      'no client paid a failed connect',
    );

    await named(t, 'a', a.port);
    await mux.waitForLog(isState('backend up', A));
    m = await scrape(admin);
    t.equal(
      value(m, 'snimux_backend_up', { route: 'web', backend: A }),
      1,
      'up again after rise passed checks',
    );
    t.equal(
      count(mux, isState('backend down', A)),
      1,
      'the change was logged once, not once per failed check',
    );
    const back = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    t.equal(back.reply.toString(), 'a\n', 'first again once up');
    t.end();
  },
);

t.test('a reload keeps the state of unchanged backends', async (t) => {
  const a = await named(t, 'a');
  const b = await named(t, 'b');
  const A = `127.0.0.1:${a.port}`;
  const web = route('web', [a.port, b.port], { protocol: 'http', health_check: 'connect' });
  const mux = await startMux(t, muxConfig(HEALTH, ADMIN, web));
  await a.close();
  await mux.waitForLog(isState('backend down', A));
  rewriteAndReload(mux, muxConfig(HEALTH, ADMIN, web, route('ssh', b.port, { protocol: 'ssh' })));
  await mux.waitForLog((l) => l.msg === 'config reloaded');
  const m = await scrape(adminPort(mux));
  t.equal(value(m, 'snimux_backend_up', { route: 'web', backend: A }), 0, 'still down: not reset to up');
  t.equal(
    value(m, 'snimux_backend_up', { route: 'ssh' }),
    undefined,
    'no series for a route without health_check',
  );
  t.equal(count(mux, isState('backend up', A)), 0);
});

const skipTls = missing('openssl');

t.test(
  'tls check: a ServerHello from a real openssl s_server is up; a TCP server that never answers is down',
  { skip: skipTls },
  async (t) => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(
      () =>
        new Promise<void>((resolve) => {
          for (const s of held) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const silentText = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const port = await freePort();
    const tlsText = `127.0.0.1:${port}`;
    const mux = await startMux(
      t,
      muxConfig(
        table('health', { interval: '100ms', timeout: '300ms', rise: 2, fall: 2 }),
        ADMIN,
        route('alpha', [silentText, tlsText], { sni: 'alpha.test', health_check: 'tls' }),
      ),
    );
    t.match(await mux.waitForLog(isState('backend down', silentText)), { check: 'tls', code: 'ETIMEDOUT' });
    t.match(await mux.waitForLog(isState('backend down', tlsText)), { code: 'ECONNREFUSED' });
    const { certFile, keyFile } = certFiles('alpha.test');
    const server = await startDaemon(
      t,
      program('openssl'),
      // -www: answers on its own and never reads stdin (which would end it at EOF).
      ['s_server', '-accept', tlsText, '-cert', certFile, '-key', keyFile, '-www'],
      { ready: /^ACCEPT$/m },
    );
    await mux.waitForLog(isState('backend up', tlsText));
    const m = await scrape(adminPort(mux));
    t.equal(value(m, 'snimux_backend_up', { route: 'alpha', backend: tlsText }), 1);
    t.equal(value(m, 'snimux_backend_up', { route: 'alpha', backend: silentText }), 0);
    t.equal(server.proc.exitCode, null, 's_server is unharmed by the checks');
  },
);

t.test('check refuses a health_check it cannot run, naming file, line and key', async (t) => {
  const dir = tempDir(t, 'snimux-health-');
  const file = join(dir, 'mux.toml');
  writeFileSync(
    file,
    muxConfig(
      table('health', { rise: 0, interval: 'often' }),
      route('ssh', 22, { protocol: 'ssh', health_check: 'tls' }),
      route('web', 80, { protocol: 'http', health_check: 'http' }),
      route('lxd', '{sni.1}.lxd:443', { sni: '*.bjk.is', health_check: 'connect' }),
    ),
  );
  const r = await runCli(['check', '--config', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`${file}:\\d+:\\d+: health\\.rise`));
  t.match(r.stderr, /health\.interval/);
  t.match(r.stderr, /route\[1\]\.health_check: "tls" sends a ClientHello for the route's first sni/);
  t.match(r.stderr, /route\[2\]\.health_check: expected "connect" or "tls"/);
  t.match(
    r.stderr,
    /route\[3\]\.health_check: checks configured backends, and this route only has templates/,
  );
});
