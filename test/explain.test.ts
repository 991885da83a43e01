// `sni-mux explain`: the route and backends a connection would get, and why, through the mux's own routing.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../lib/config/load.js';
import { type ExplainOptions, explainCommand } from '../lib/ops/explain-command.js';
import { exchange } from './helpers/clients.js';
import { muxConfig, route } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { runCli } from './helpers/ops.js';
import { tempDir } from './helpers/programs.js';
import { startRecorder } from './helpers/servers.js';

const EXAMPLE = new URL('../examples/mux.toml', import.meta.url).pathname;
const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

/**
 * explain in-process, through the function the CLI calls: a node process per case is slow on a busy
 * box. The last tests run the real command line for its flags and exit codes.
 */
async function explain(
  config: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const o: ExplainOptions = { config };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, v] = [args[i]!, args[i + 1]!];
    if (flag === '--alpn') o.alpn = [...(o.alpn ?? []), v];
    else if (flag === '--first-bytes') o.firstBytes = v;
    else o[flag.slice(2) as 'sni' | 'host' | 'protocol' | 'source' | 'listener'] = v;
  }
  let stdout = '';
  let stderr = '';
  const code = await explainCommand(o, {
    out: (s) => {
      stdout += s;
    },
    err: (s) => {
      stderr += s;
    },
  });
  return { code, stdout, stderr };
}
const cli = (config: string, ...args: string[]) => runCli(['explain', '--config', config, ...args]);

/** For each route of examples/mux.toml: a client that route takes, and what explain must say on the way. */
const CASES: { route: string; args: string[]; says?: RegExp[] }[] = [
  {
    route: 'blog',
    args: ['--sni', 'BLOG.bjk.is.'],
    says: [/decided by sni "blog\.bjk\.is" matches "blog\.bjk\.is"/],
  },
  {
    route: 'sites',
    args: ['--sni', 'www.bjk.is', '--alpn', 'h2'],
    says: [
      /route\[1\] "blog": sni "blog\.bjk\.is" ≠ "www\.bjk\.is"/,
      /127\.0\.0\.1:9444, 127\.0\.0\.1:9445 \(roundrobin/,
    ],
  },
  { route: 'vpn', args: ['--first-bytes', join(FIXTURES, 'first-bytes/openvpn-tcp-plain.bin')] },
  { route: 'ssh', args: ['--protocol', 'ssh'], says: [/route\[3\] "vpn": protocol openvpn ≠ ssh/] },
  {
    route: 'plain-http',
    args: ['--host', 'blog.bjk.is', '--source', '192.168.7.8'],
    says: [/source 127\.0\.0\.0\/8, 192\.168\.0\.0\/16, ::1 contains 192\.168\.7\.8/],
  },
  {
    route: 'fallback',
    args: ['--sni', 'www.bjk.is'],
    says: [
      /route\[2\] "sites": alpn "h2", "http\/1\.1": the client offered none/,
      /route\[5\] "plain-http": source .*: no --source given/,
      /a catch-all/,
    ],
  },
];

t.test('explain picks each route of examples/mux.toml and says why', async (t) => {
  const loaded = await loadConfig(EXAMPLE);
  if (loaded.kind !== 'ok') throw new Error('examples/mux.toml does not load');
  t.same(
    CASES.map((c) => c.route),
    loaded.config.routes.map((r) => r.name),
    'one case per example route, in file order',
  );
  for (const [i, c] of CASES.entries()) {
    const r = await explain(EXAMPLE, ...c.args);
    t.equal(r.code, 0, `${c.route}: exit 0 ${r.stderr}`);
    t.match(r.stdout, new RegExp(`^route: route\\[${i + 1}\\] "${c.route}"`, 'm'), c.route);
    for (const re of c.says ?? []) t.match(r.stdout, re, c.route);
    // Every earlier route is listed with why it did not match.
    for (const earlier of CASES.slice(0, i)) t.match(r.stdout, `"${earlier.route}": `);
  }
});

t.test('captured first bytes go through detect(): a real ClientHello, HTTP, a truncated hello', async (t) => {
  const hello = await explain(EXAMPLE, '--first-bytes', join(FIXTURES, 'clienthello/openssl-sni-alpn.bin'));
  t.equal(hello.code, 0);
  t.match(hello.stdout, /detected: tls sni=x\.example\.com alpn=h2,http\/1\.1/);
  const get = await explain(EXAMPLE, '--first-bytes', join(FIXTURES, 'first-bytes/http-curl-get.bin'));
  t.match(get.stdout, /detected: http host=127\.0\.0\.1/);

  const dir = tempDir(t, 'snimux-explain-');
  const cut = join(dir, 'cut.bin');
  writeFileSync(cut, readFileSync(join(FIXTURES, 'clienthello/curl.bin')).subarray(0, 20));
  const short = await explain(EXAMPLE, '--first-bytes', cut);
  t.match(short.stdout, /not enough to decide/);
  const bad = join(dir, 'bad.bin');
  // A server name with an empty label: malformed beyond doubt, never routed.
  writeFileSync(bad, buildClientHello({ sni: 'a..b' }));
  const refused = await explain(EXAMPLE, '--first-bytes', bad);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /refused as bad_hello/);
});

t.test('exit 1 when no route matches, 2 on a usage error', async (t) => {
  const dir = tempDir(t, 'snimux-explain-');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, muxConfig(route('only', 9443, { sni: 'only.test' })));
  const none = await explain(file, '--sni', 'nowhere.example');
  t.equal(none.code, 1);
  t.match(none.stdout, /route\[1\] "only": sni "only\.test" ≠ "nowhere\.example"/);
  t.match(
    none.stdout,
    /no route matches: the connection is refused as no_route \(a TLS client is first sent an unrecognized_name alert\)/,
  );
  t.equal((await explain(file)).code, 2, 'nothing said about the client');
  t.equal((await explain(file, '--sni', 'a.test', '--host', 'a.test')).code, 2);
  t.equal((await explain(file, '--protocol', 'https')).code, 2);
  t.equal((await explain(file, '--protocol', 'ssh', '--source', 'nope')).code, 2);
  // The command line itself: flags parsed, output and exit codes as above.
  const routed = await cli(file, '--sni', 'only.test', '--alpn', 'h2', '--source', '127.0.0.1');
  t.equal(routed.code, 0, routed.stderr);
  t.match(routed.stdout, /^route: route\[1\] "only"/m);
  t.equal((await cli(file, '--sni', 'nowhere.example')).code, 1);
  t.equal((await cli(file)).code, 2);
});

t.test('--listener skips the routes scoped to other listen addresses, as the running mux does', async (t) => {
  const dir = tempDir(t, 'snimux-explain-');
  const file = join(dir, 'mux.toml');
  writeFileSync(
    file,
    [
      'listen = ["127.0.0.1:8443", "127.0.0.1:8080"]',
      route('ssh', 9022, { protocol: 'ssh', listen: '127.0.0.1:8443' }),
      route('rest', 9080),
    ].join('\n'),
  );
  const on443 = await explain(file, '--protocol', 'ssh', '--listener', '127.0.0.1:8443');
  t.equal(on443.code, 0, on443.stderr);
  t.match(on443.stdout, /^listener: 127\.0\.0\.1:8443$/m);
  t.match(on443.stdout, /^route: route\[1\] "ssh"/m);
  const on80 = await explain(file, '--protocol', 'ssh', '--listener', '127.0.0.1:8080');
  t.equal(on80.code, 0, on80.stderr);
  t.match(on80.stdout, /route\[1\] "ssh": listen "127\.0\.0\.1:8443": accepted on 127\.0\.0\.1:8080/);
  t.match(on80.stdout, /^route: route\[2\] "rest"/m);
  // Without --listener every route is tried, listen or not.
  t.match((await explain(file, '--protocol', 'ssh')).stdout, /^route: route\[1\] "ssh"/m);
  const unknown = await explain(file, '--protocol', 'ssh', '--listener', '127.0.0.1:9999');
  t.equal(unknown.code, 2);
  t.match(
    unknown.stderr,
    /--listener "127\.0\.0\.1:9999" is not a listen address of .* \(127\.0\.0\.1:8443, 127\.0\.0\.1:8080\)/,
  );
  // The command line takes the flag too.
  const viaCli = await cli(file, '--protocol', 'ssh', '--listener', '127.0.0.1:8080');
  t.equal(viaCli.code, 0, viaCli.stderr);
  t.match(viaCli.stdout, /^route: route\[2\] "rest"/m);
});

t.test('templates are shown expanded, and a hostile name as bad_backend', async (t) => {
  const dir = tempDir(t, 'snimux-explain-');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, muxConfig(route('lxd', ['{sni.1}.lxd:443', '127.0.0.1:8443'], { sni: '*.bjk.is' })));
  const ok = await explain(file, '--sni', 'blog.bjk.is');
  t.equal(ok.code, 0);
  t.match(ok.stdout, 'backends, tried in order: blog.lxd:443 (from {sni.1}.lxd:443), 127.0.0.1:8443');
  const hostile = await explain(file, '--sni', 'x_y.bjk.is');
  t.equal(hostile.code, 1);
  t.match(hostile.stdout, /refused as bad_backend \("x_y\.lxd" is not a DNS name\)/);
});

t.test('explain names the route the running mux takes for the same bytes', async (t) => {
  const names = ['tls', 'vpn', 'web', 'rest'];
  const recorders = await Promise.all(names.map((n) => startRecorder(t, n)));
  const toml = muxConfig(
    route('tls', recorders[0]!.port, { sni: 'x.example.com', alpn: 'h2' }),
    route('vpn', recorders[1]!.port, { protocol: 'openvpn' }),
    route('web', recorders[2]!.port, { host: '127.0.0.1' }),
    route('rest', recorders[3]!.port),
  );
  const mux = await startMux(t, toml);
  const files = [
    'clienthello/openssl-sni-alpn.bin',
    'clienthello/curl-http1.1.bin',
    'first-bytes/openvpn-tcp-plain.bin',
    'first-bytes/http-curl-get.bin',
    'first-bytes/socks5-curl-userpass.bin',
  ];
  for (const f of files) {
    const bytes = readFileSync(join(FIXTURES, f));
    const ex = await exchange(mux.port, bytes);
    const line = await connectionLine(mux, ex.localPort);
    const r = await explain(mux.configFile, '--first-bytes', join(FIXTURES, f));
    t.match(r.stdout, new RegExp(`^route: route\\[\\d\\] "${line.route as string}"`, 'm'), f);
  }
});
