// /metrics of a real sni-mux process: counters and byte totals per route and direction, bounded label sets.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { REJECT_REASONS } from '../lib/reasons.js';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { adminPort, scrape, seriesKeys, value } from './helpers/metrics.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { closedPort, startBlackhole, startEcho, startRecorder } from './helpers/servers.js';

t.test('connections and bytes are counted per route, protocol and direction', async (t) => {
  const ssh = await startRecorder(t, 'ssh');
  const web = await startRecorder(t, 'web');
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      route('ssh', ssh.port, { protocol: 'ssh' }),
      route('web', web.port, { protocol: 'http' }),
    ),
  );
  const admin = adminPort(mux);
  const before = await scrape(admin);
  t.equal(
    value(before, 'snimux_connections_total', { route: 'ssh', protocol: 'ssh' }),
    0,
    'routes start at 0',
  );
  t.equal(value(before, 'snimux_bytes_total', { route: 'web', direction: 'backend_to_client' }), 0);

  const sent = { ssh: 0, web: 0 };
  const received = { ssh: 0, web: 0 };
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const hello = Buffer.concat([Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), randomBytes(1000 * (i + 1))]);
    const r = await exchange(mux.port, hello);
    sent.ssh += hello.length;
    received.ssh += r.reply.length;
    ports.push(r.localPort);
  }
  for (let i = 0; i < 2; i++) {
    const req = Buffer.from(`GET /${'x'.repeat(i * 500)} HTTP/1.1\r\nHost: web.example\r\n\r\n`);
    const r = await exchange(mux.port, req);
    t.match(r.reply.toString(), /^web /);
    sent.web += req.length;
    received.web += r.reply.length;
    ports.push(r.localPort);
  }
  for (const p of ports) await connectionLine(mux, p);

  const m = await scrape(admin);
  t.equal(value(m, 'snimux_connections_total', { route: 'ssh', protocol: 'ssh' }), 3);
  t.equal(value(m, 'snimux_connections_total', { route: 'web', protocol: 'http' }), 2);
  t.equal(value(m, 'snimux_bytes_total', { route: 'ssh', direction: 'client_to_backend' }), sent.ssh);
  t.equal(value(m, 'snimux_bytes_total', { route: 'ssh', direction: 'backend_to_client' }), received.ssh);
  t.equal(value(m, 'snimux_bytes_total', { route: 'web', direction: 'client_to_backend' }), sent.web);
  t.equal(value(m, 'snimux_bytes_total', { route: 'web', direction: 'backend_to_client' }), received.web);
  t.equal(value(m, 'snimux_connections_active', { route: 'ssh' }), 0);
  t.equal(value(m, 'snimux_connections_active', { route: 'web' }), 0);
  t.equal(value(m, 'snimux_detect_duration_seconds_count', { protocol: 'ssh' }), 3);
  t.equal(value(m, 'snimux_detect_duration_seconds_count', { protocol: 'http' }), 2);
  t.equal(value(m, 'snimux_backend_connect_duration_seconds_count', { route: 'ssh' }), 3);
  t.equal(value(m, 'snimux_connection_duration_seconds_count', { route: 'web' }), 2);
  t.equal(value(m, 'snimux_build_info', {}), 1);
  t.ok(value(m, 'process_resident_memory_bytes'), 'default process metrics are included');
  t.ok(value(m, 'nodejs_eventloop_lag_seconds') !== undefined, 'default Node.js metrics are included');
});

t.test("a long connection's bytes show while it is open, and the counter never goes back", async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('echo', echo.port)),
  );
  const admin = adminPort(mux);
  const s = net.connect({ port: mux.port, host: '127.0.0.1' });
  const chunks: Buffer[] = [];
  let got = 0;
  let waiting: { n: number; resolve: () => void } | undefined;
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    got += c.length;
    if (waiting !== undefined && got >= waiting.n) waiting.resolve();
  });
  const echoed = (n: number): Promise<void> =>
    got >= n ? Promise.resolve() : new Promise((resolve) => (waiting = { n, resolve }));

  s.write(randomBytes(20_000));
  await echoed(20_000);
  const open = await scrape(admin);
  t.equal(value(open, 'snimux_connections_active', { route: 'echo' }), 1);
  t.equal(value(open, 'snimux_bytes_total', { route: 'echo', direction: 'client_to_backend' }), 20_000);
  t.equal(value(open, 'snimux_bytes_total', { route: 'echo', direction: 'backend_to_client' }), 20_000);

  s.write(randomBytes(5_000));
  await echoed(25_000);
  const later = await scrape(admin);
  t.equal(value(later, 'snimux_bytes_total', { route: 'echo', direction: 'client_to_backend' }), 25_000);

  const port = s.localPort!;
  s.end();
  await connectionLine(mux, port);
  const closed = await scrape(admin);
  t.equal(value(closed, 'snimux_connections_active', { route: 'echo' }), 0);
  t.equal(value(closed, 'snimux_bytes_total', { route: 'echo', direction: 'client_to_backend' }), 25_000);
  t.equal(value(closed, 'snimux_bytes_total', { route: 'echo', direction: 'backend_to_client' }), 25_000);
  t.equal(value(closed, 'snimux_connection_duration_seconds_count', { route: 'echo' }), 1);
});

t.test(
  'refusals are counted by reason, every reason from 0; failed connects by route and backend',
  async (t) => {
    const dead = await closedPort();
    const mux = await startMux(
      t,
      muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('ssh', dead, { protocol: 'ssh' })),
    );
    const admin = adminPort(mux);
    const before = await scrape(admin);
    for (const reason of REJECT_REASONS) {
      t.equal(value(before, 'snimux_rejected_connections_total', { reason }), 0, `${reason} starts at 0`);
    }
    t.equal(
      value(before, 'snimux_backend_connect_failures_total', { route: 'ssh', backend: `127.0.0.1:${dead}` }),
      0,
    );

    const a = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const b = await exchange(mux.port, Buffer.from('SSH-2.0-x\r\n'));
    const c = await exchange(mux.port, buildClientHello({ sni: 'x.example', padTo: 600 }).subarray(0, 300));
    for (const r of [a, b, c]) await connectionLine(mux, r.localPort);

    const m = await scrape(admin);
    t.equal(
      value(m, 'snimux_rejected_connections_total', { reason: 'no_route' }),
      2,
      'http, and a cut-short hello',
    );
    t.equal(value(m, 'snimux_rejected_connections_total', { reason: 'backend_unavailable' }), 1);
    t.equal(
      value(m, 'snimux_backend_connect_failures_total', { route: 'ssh', backend: `127.0.0.1:${dead}` }),
      1,
    );
    t.equal(
      value(m, 'snimux_connections_total', { route: 'ssh', protocol: 'ssh' }),
      0,
      'routed but never relayed: counted as rejected only',
    );
    t.equal(value(m, 'snimux_accepted_connections_total'), 3, 'accepted = relayed 0 + rejected 3');
    t.equal(value(m, 'snimux_connections_active', { route: 'ssh' }), 0);
    t.equal(
      value(m, 'snimux_bytes_total', { route: 'ssh', direction: 'client_to_backend' }),
      0,
      'nothing relayed',
    );
  },
);

t.test('snimux_backend_down shows the backend whose connect failed, while it is tried last', async (t) => {
  const dead = await closedPort();
  const live = await startRecorder(t, 'live');
  const mux = await startMux(
    t,
    muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('web', [dead, live.port])),
  );
  const admin = adminPort(mux);
  const down = (m: Awaited<ReturnType<typeof scrape>>, port: number): number | undefined =>
    value(m, 'snimux_backend_down', { backend: `127.0.0.1:${port}` });
  const before = await scrape(admin);
  t.equal(down(before, dead), 0, 'every configured backend has a series from the start');
  t.equal(down(before, live.port), 0);
  const r = await exchange(mux.port, Buffer.from('\xffhello', 'latin1'));
  t.match(r.reply.toString(), /^live /);
  await connectionLine(mux, r.localPort);
  const after = await scrape(admin);
  t.equal(down(after, dead), 1, 'the refused backend is down');
  t.equal(down(after, live.port), 0, 'the one that answered is not');
});

t.test('server names and ALPN sent by strangers never become label values', async (t) => {
  const known = await startRecorder(t, 'known');
  const rest = await startRecorder(t, 'rest');
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      route('known', known.port, { sni: ['known.example'] }),
      route('other-tls', rest.port, { protocol: 'tls' }),
    ),
  );
  const admin = adminPort(mux);
  const before = seriesKeys(await scrape(admin));

  const N = 1000;
  const names: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const name = `${randomBytes(6).toString('hex')}.stranger${i}.example`;
      names.push(name);
      const r = await exchange(mux.port, buildClientHello({ sni: name, alpn: [`x-${i}`] }));
      if (!r.reply.toString().startsWith('rest ')) t.fail(`connection ${i} reached ${r.reply.toString()}`);
    }
  };
  await Promise.all(Array.from({ length: 25 }, worker));

  const samples = await scrape(admin);
  t.equal(value(samples, 'snimux_connections_total', { route: 'other-tls', protocol: 'tls' }), N);
  t.same(seriesKeys(samples), before, `the same ${before.length} series after ${N} random names`);
  const text = JSON.stringify(samples);
  t.notOk(
    names.some((n) => text.includes(n)),
    'no random name in the exposition',
  );
});

t.test('a reload counts its result and gives new routes their zero series', async (t) => {
  const echo = await startEcho(t);
  const admin0 = table('admin', { listen: '127.0.0.1:0' });
  const mux = await startMux(t, muxConfig(admin0, route('echo', echo.port)));
  const admin = adminPort(mux);
  const { writeFileSync } = await import('node:fs');
  const start = value(await scrape(admin), 'snimux_config_last_reload_success_timestamp_seconds');
  t.ok(start !== undefined && start > 0, 'the start counts as the last successful load');

  writeFileSync(
    mux.configFile,
    muxConfig(admin0, route('echo', echo.port), route('added', echo.port, { protocol: 'ssh' })),
  );
  mux.proc.kill('SIGHUP');
  await mux.waitForLog((l) => l.msg === 'config reloaded');
  let m = await scrape(admin);
  t.equal(value(m, 'snimux_config_reloads_total', { result: 'success' }), 1);
  t.equal(value(m, 'snimux_connections_total', { route: 'added', protocol: 'ssh' }), 0);
  t.ok(value(m, 'snimux_config_last_reload_success_timestamp_seconds')! >= start!);

  writeFileSync(mux.configFile, 'listen = [');
  mux.proc.kill('SIGHUP');
  await mux.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload failed'));
  m = await scrape(admin);
  t.equal(value(m, 'snimux_config_reloads_total', { result: 'failure' }), 1);
  t.equal(value(m, 'snimux_config_reloads_total', { result: 'success' }), 1);
});

t.test('docs/metrics.md describes every sni-mux metric exposed, and no other', async (t) => {
  const echo = await startEcho(t);
  // health_check, so snimux_backend_up has a series too; a UDP route, so the UDP flow series exist (at 0).
  // so the UDP flow series exist (at 0) to be compared.
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      route('e', echo.port, { health_check: 'connect' }),
      route('h3', 1, { protocol: 'quic' }),
    ),
  );
  const exposed = new Set(
    (await scrape(adminPort(mux)))
      .map((s) => s.name.replace(/_(bucket|sum|count)$/, ''))
      .filter((n) => n.startsWith('snimux_')),
  );
  const docs = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');
  const documented = new Set([...docs.matchAll(/^\| `(snimux_[a-z_]+)` \|/gm)].map((m) => m[1]!));
  t.same([...exposed].sort(), [...documented].sort());
});

t.test(
  'clients that reset while the backend connect is in progress are rejected, not also routed',
  async (t) => {
    const hole = await startBlackhole(t);
    const rec = await startRecorder(t, 'rec');
    const mux = await startMux(
      t,
      muxConfig(
        table('admin', { listen: '127.0.0.1:0' }),
        table('timeouts', { connect: '10s' }),
        route('hanging', hole, { protocol: 'ssh' }),
        route('other', rec.port),
      ),
    );
    const admin = adminPort(mux);
    const N = 10;
    for (let i = 0; i < N; i++) {
      const s = net.connect(mux.port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
      s.write(`SSH-2.0-client${i}\r\n`);
      // Routed once the banner is read: the connect to the blackhole is in progress when the reset comes.
      // Nothing is logged at routing: watch the gauge (at most 10 s).
      for (let k = 0; k < 500; k++) {
        if (value(await scrape(admin), 'snimux_connections_active', { route: 'hanging' }) === 1) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      s.resetAndDestroy();
      await mux.waitForLog(
        () => mux.logs.filter((l) => l.route === 'hanging' && l.reject !== undefined).length > i,
      );
    }
    const body = Buffer.from('\xffrelayed', 'latin1');
    await connectionLine(mux, (await exchange(mux.port, body)).localPort);
    const m = await scrape(admin);
    t.equal(value(m, 'snimux_rejected_connections_total', { reason: 'client_closed' }), N, 'rejected');
    t.equal(value(m, 'snimux_connections_total', { route: 'hanging', protocol: 'ssh' }), 0, 'not routed');
    t.equal(value(m, 'snimux_connections_total', { route: 'other', protocol: 'unknown' }), 1);
    const rejected = m
      .filter((x) => x.name === 'snimux_rejected_connections_total')
      .reduce((a, x) => a + x.value, 0);
    const relayed = m.filter((x) => x.name === 'snimux_connections_total').reduce((a, x) => a + x.value, 0);
    t.equal(
      value(m, 'snimux_accepted_connections_total'),
      relayed + rejected,
      'accepted = routed + rejected',
    );
    t.equal(value(m, 'snimux_connections_active', { route: 'hanging' }), 0, 'none left active');
  },
);
