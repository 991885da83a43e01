// The admin listener's status JSON of a real sni-mux: /connections, /routes, /status, hostile names, [admin] allow.
import t from 'tap';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { adminPort, raw, request } from './helpers/metrics.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { holdBytes, holdOpen, rewriteAndReload, runCli } from './helpers/ops.js';
import { startEcho } from './helpers/servers.js';

/** What GET /connections lists for one connection (the fields the tests look at). */
interface Live {
  id: number;
  client: string;
  client_port: number;
  listener: string;
  protocol?: string;
  sni?: string;
  alpn?: string[];
  route?: string;
  backend?: string;
  bytes_client_to_backend: number;
  bytes_backend_to_client: number;
  age_ms: number;
  idle_ms?: number;
  stage: string;
}

async function json<T>(port: number, path: string): Promise<T> {
  const r = await request(port, path);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

const HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';

t.test('/connections lists a held connection with its route, backend and bytes, then drops it', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('echo', echo.port)),
  );
  const admin = adminPort(mux);
  t.same(await json(admin, '/connections'), [], 'nothing live yet');

  const r = await holdOpen(mux.port);
  if (r.kind !== 'open') throw new Error('not relayed');
  const held = r.held;
  t.equal(await held.echo('abc'), 'abc');
  const reply = await request(admin, '/connections');
  t.match(reply.headers['content-type'], /^application\/json/);
  const list = JSON.parse(reply.body) as Live[];
  t.equal(list.length, 1);
  const c = list[0]!;
  // holdOpen's 7-byte hello, then "abc", echoed both ways.
  t.match(c, {
    client: '127.0.0.1',
    client_port: held.localPort,
    listener: '127.0.0.1:0',
    route: 'echo',
    backend: `127.0.0.1:${echo.port}`,
    bytes_client_to_backend: 10,
    bytes_backend_to_client: 10,
    stage: 'relaying',
    age_ms: Number,
    idle_ms: Number,
  });
  t.equal(c.protocol, undefined, 'no protocol recognised: the key is left out');

  held.socket.end();
  await held.closed;
  await connectionLine(mux, held.localPort);
  t.same(await json(admin, '/connections'), [], 'gone once closed');
});

t.test('limit caps /connections and /status; a bad limit is a 400; an object key is no page', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('echo', echo.port)),
  );
  const admin = adminPort(mux);
  const held = [];
  for (let i = 0; i < 3; i++) {
    const r = await holdOpen(mux.port);
    if (r.kind !== 'open') throw new Error('not relayed');
    held.push(r.held);
  }
  const all = await json<Live[]>(admin, '/connections');
  t.same(
    all.map((c) => c.client_port),
    held.map((h) => h.localPort),
    'default: all of them, oldest first',
  );
  t.equal((await json<Live[]>(admin, '/connections?limit=2')).length, 2);
  t.same(await json(admin, '/connections?limit=0'), []);
  t.equal((await json<Live[]>(admin, '/connections?limit=99999999')).length, 3, 'a huge limit is capped');
  const status = await json<{ totals: { live: number }; connections: Live[] }>(admin, '/status?limit=1');
  t.equal(status.totals.live, 3, '/status counts every live connection');
  t.equal(status.connections.length, 1, 'and lists up to limit');
  for (const bad of ['-1', 'ten', '1e3', '1.5']) {
    t.equal((await request(admin, `/connections?limit=${bad}`)).status, 400, `limit=${bad}`);
  }
  for (const target of ['__proto__', 'constructor', '/__proto__', '/constructor', '/toString']) {
    const answer = await raw(admin, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.match(answer, /^HTTP\/1\.1 4\d\d /, `${target}: not a page`);
  }
  t.equal((await request(admin, '/healthz')).status, 200, 'still serving');
  for (const h of held) h.socket.destroy();
});

t.test('/routes is the table `check` prints, as JSON, with each backend state', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      route('web', [echo.port, 'nothing.invalid:443'], {
        sni: ['example.org', '*.example.org'],
        balance: 'roundrobin',
      }),
      route('ssh', echo.port, { protocol: 'ssh', idle: '1h' }),
      route('rest', echo.port),
    ),
  );
  const routes = await json<
    { n: number; route: string; matches: string; backends: string; live: number; backend_state: unknown[] }[]
  >(adminPort(mux), '/routes');
  const check = await runCli(['check', '--config', mux.configFile]);
  t.equal(check.code, 0);
  const lines = check.stdout.split('\n');
  const header = lines.findIndex((l) => /^#\s+route\s+matches\s+backends$/.test(l));
  t.equal(routes.length, 3);
  routes.forEach((r, i) => {
    const printed = lines[header + 1 + i]!.split(/\s{2,}/);
    t.same(printed, [String(r.n), r.route, r.matches, r.backends], `row ${r.n} as check prints it`);
  });
  t.same(routes[0]!.backend_state, [
    { backend: `127.0.0.1:${echo.port}`, down: false, up: null },
    { backend: 'nothing.invalid:443', down: false, up: null },
  ]);
});

t.test(
  'names from strangers come back as plain JSON strings; a hostile SNI is refused and counted',
  async (t) => {
    const echo = await startEcho(t);
    const mux = await startMux(
      t,
      muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('any', echo.port)),
    );
    const admin = adminPort(mux);

    // RFC 6066 names are LDH: a "<script>" server_name is a malformed hello, refused before routing.
    const bad = await exchange(mux.port, buildClientHello({ sni: '<script>alert(1)</script>.example' }));
    t.equal(bad.reply.length, 0, 'nothing relayed');
    const refused = await connectionLine(mux, bad.localPort);
    t.equal(refused.reject, 'bad_hello');

    // ALPN names are any bytes (RFC 7301): they reach the status page as they came.
    const hello = buildClientHello({ sni: 'app.example.org', alpn: [HOSTILE, 'h2'] });
    const held = await holdBytes(mux.port, hello);
    const reply = await request(admin, '/connections');
    t.equal(reply.headers['x-content-type-options'], 'nosniff', 'never sniffed as HTML');
    const [c] = JSON.parse(reply.body) as Live[];
    t.equal(c!.sni, 'app.example.org');
    t.same(c!.alpn, [HOSTILE, 'h2'], 'the exact string, parsed back');
    t.equal(c!.protocol, 'tls');

    const page = await request(admin, '/');
    t.match(page.headers['content-type'], /^text\/html/);
    t.match(page.headers['content-security-policy'], /script-src 'sha256-/);
    t.notMatch(page.body, 'window.pwned', 'the page itself never carries client data');
    const status = await json<{
      rejections: { total: Record<string, number>; recent: Record<string, number> };
    }>(admin, '/status');
    t.equal(status.rejections.total.bad_hello, 1);
    t.equal(status.rejections.recent.bad_hello, 1, 'and in the last minutes');
    held.socket.destroy();
  },
);

t.test('/status: totals, the config file and the last reload with its errors', async (t) => {
  const echo = await startEcho(t);
  const toml = muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('echo', echo.port));
  const mux = await startMux(t, toml);
  const admin = adminPort(mux);
  type Status = {
    version: string;
    data_plane: string;
    config: { file: string; last_reload: { result: string; errors: string[] } | null };
    listeners: { listen: string; transport: string; port: number }[];
    totals: { accepted: number; routed: number; rejected: number; bytes_client_to_backend: number };
  };
  let s = await json<Status>(admin, '/status');
  const started = await mux.waitForLog((l) => l.msg === 'sni-mux started');
  t.equal(s.data_plane, started.data_plane, 'the plane the start line names');
  t.match(s.data_plane, /^(native|js)$/);
  t.match(s.version, /^\d+\.\d+\.\d+/);
  t.equal(s.config.file, mux.configFile);
  t.equal(s.config.last_reload, null);
  t.same(s.listeners, [{ listen: '127.0.0.1:0', transport: 'tcp', address: '127.0.0.1', port: mux.port }]);
  for (let i = 0; i < 3; i++) await exchange(mux.port, Buffer.from('hello'));
  for (let i = 0; i < 3; i++) await mux.waitForLog((l) => l.msg === 'connection closed' && l.conn === i + 1);
  s = await json<Status>(admin, '/status');
  t.match(s.totals, { accepted: 3, routed: 3, rejected: 0, bytes_client_to_backend: 15 });

  rewriteAndReload(mux, `${toml}bogus = 1\n`);
  await mux.waitForLog((l) => l.msg === 'reload failed: keeping the old config');
  s = await json<Status>(admin, '/status');
  t.equal(s.config.last_reload?.result, 'failure');
  t.match(s.config.last_reload?.errors[0], /bogus: unknown key/);
  rewriteAndReload(mux, toml);
  await mux.waitForLog((l) => l.msg === 'config reloaded');
  s = await json<Status>(admin, '/status');
  t.same(s.config.last_reload?.result, 'success');
  t.same(s.config.last_reload?.errors, []);
});

t.test(
  '[admin] allow refuses a peer outside the list, on every path; a reload changes the list',
  async (t) => {
    const echo = await startEcho(t);
    const config = (allow: string): string =>
      muxConfig(table('admin', { listen: '127.0.0.1:0', allow: [allow, '::1'] }), route('echo', echo.port));
    const mux = await startMux(t, config('127.0.0.1/32'));
    const admin = adminPort(mux);
    for (const path of ['/', '/status', '/connections', '/routes', '/metrics', '/healthz', '/nope']) {
      const other = await request(admin, path, 'GET', '127.0.0.2');
      t.equal(other.status, 403, `${path} from 127.0.0.2`);
      t.notMatch(other.body, /127\.0\.0\.1/, 'the answer does not tell the list');
    }
    t.equal((await request(admin, '/healthz', 'GET', '127.0.0.1')).status, 200, 'a listed peer is served');
    t.equal((await request(admin, '/status', 'GET', '127.0.0.1')).status, 200);

    rewriteAndReload(mux, config('127.0.0.2'));
    await mux.waitForLog((l) => l.msg === 'config reloaded');
    t.equal((await request(admin, '/healthz', 'GET', '127.0.0.2')).status, 200, 'now allowed');
    t.equal((await request(admin, '/healthz', 'GET', '127.0.0.1')).status, 403, 'now refused');
    const reloaded = mux.logs.find((l) => l.msg === 'config reloaded')!;
    t.ok((reloaded.changes as string[]).includes('admin.allow'), 'the reload line says what changed');
    const r = await exchange(mux.port, Buffer.from('data'));
    t.equal(r.reply.toString(), 'data', 'the data listener is not affected');
  },
);
