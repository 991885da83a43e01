// Backends named from the detection: "{sni.1}.lxd:PORT" expanded per connection, resolved, refused when hostile.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { RouteConfig } from '../lib/config/types.js';
import { expandBackends, expandHost, parseTemplate } from '../lib/connect/template.js';
import { isDnsName } from '../lib/net/hostname.js';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { runCli } from './helpers/ops.js';
import { tempDir } from './helpers/programs.js';

t.test('templates parse into literals and placeholders', async (t) => {
  const r = parseTemplate('{sni.1}.lxd');
  t.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  t.same(r.template.parts, [{ key: 'sni', label: 1 }, '.lxd']);
  t.same(r.template.keys, ['sni']);
  t.equal(parseTemplate('10.0.0.1').kind, 'none');
  t.match(parseTemplate('{name}.lxd'), { kind: 'error', message: /"\{name\}" is not a placeholder/ });
  t.match(parseTemplate('{sni.0}.lxd'), { kind: 'error' });
  t.match(parseTemplate('{sni.lxd'), { kind: 'error', message: /unmatched brace/ });
});

t.test('expansion takes labels from the left, counting from 1', async (t) => {
  const tpl = (text: string) => {
    const r = parseTemplate(text);
    if (r.kind !== 'ok') throw new Error(text);
    return r.template;
  };
  t.same(expandHost(tpl('{sni.1}.lxd'), 'blog.bjk.is', undefined), { kind: 'ok', name: 'blog.lxd' });
  t.same(expandHost(tpl('{sni.2}-{sni.1}'), 'blog.bjk.is', undefined), { kind: 'ok', name: 'bjk-blog' });
  t.same(expandHost(tpl('{host}'), undefined, 'wiki.example'), { kind: 'ok', name: 'wiki.example' });
  t.match(expandHost(tpl('{sni.4}.lxd'), 'blog.bjk.is', undefined), { kind: 'bad', reason: /no label 4/ });
  t.match(expandHost(tpl('{sni}'), undefined, undefined), { kind: 'bad' });
});

t.test('hostile names never expand to a backend', async (t) => {
  const r = parseTemplate('{host}');
  if (r.kind !== 'ok') throw new Error('parse');
  for (const name of [
    'a..b',
    'x_y',
    `${'a'.repeat(64)}.example`,
    'trailing.dot.',
    '10.0.0.5',
    '-a.b',
    'a!b',
    '[::1]',
    'a%2eb',
  ]) {
    t.equal(expandHost(r.template, undefined, name).kind, 'bad', name);
  }
  t.ok(isDnsName(`${'a'.repeat(63)}.example`));
  t.notOk(isDnsName(`${'a.'.repeat(127)}ab`), 'longer than 253');
});

t.test('expanded endpoints keep the configured text as their origin', async (t) => {
  const r = parseTemplate('{sni.1}.lxd');
  if (r.kind !== 'ok') throw new Error('parse');
  const fixed = { host: '127.0.0.1', port: 1, text: '127.0.0.1:1' };
  const routeConfig: RouteConfig = {
    name: 'r',
    index: 0,
    onTimeout: false,
    balance: 'first',
    backends: [{ host: '{sni.1}.lxd', port: 443, text: '{sni.1}.lxd:443', template: r.template }, fixed],
  };
  t.same(expandBackends(routeConfig, 'blog.bjk.is', undefined), [
    { host: 'blog.lxd', port: 443, text: 'blog.lxd:443', origin: '{sni.1}.lxd:443' },
    fixed,
  ]);
  t.match(expandBackends(routeConfig, 'x_y.bjk.is', undefined), /not a DNS name/);
});

t.test('check refuses placeholders on a route that does not match on that key', async (t) => {
  const dir = tempDir(t, 'snimux-template-');
  const file = join(dir, 'mux.toml');
  writeFileSync(
    file,
    muxConfig(
      route('ssh', '{sni.1}.lxd:22', { protocol: 'ssh' }),
      route('web', ['{host}:80', '127.0.0.1:8080'], { sni: '*.example.com' }),
      route('bad', '{nope}.lxd:443', { sni: '*.example.com' }),
    ),
  );
  const r = await runCli(['check', '--config', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, `${file}:5:`);
  t.match(
    r.stderr,
    /route\[1\]\.backend: "\{sni\.1\}\.lxd:22" uses \{sni\}, but this route does not match on sni/,
  );
  t.match(r.stderr, /route\[2\]\.backends\[1\]: "\{host\}:80" uses \{host\}/);
  t.match(r.stderr, /route\[3\]\.backend: "\{nope\}" is not a placeholder/);
  const ok = join(dir, 'ok.toml');
  writeFileSync(ok, muxConfig(route('lxd', '{sni.1}.lxd:443', { sni: '*.bjk.is' })));
  const good = await runCli(['check', '--config', ok]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, '{sni.1}.lxd:443');
});

/** The mux in a mount namespace whose /etc/hosts the test writes, and whose resolver reads only files. */
function canOwnHosts(): boolean {
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /etc/hosts /etc/hosts'], {
    stdio: 'ignore',
  });
  return r.status === 0;
}
const skip = canOwnHosts()
  ? false
  : 'needs unshare -m and mount --bind (root in a mount namespace) for a test-owned /etc/hosts';

/** A backend on a fixed address:port that says its name and closes. */
function namedServer(t: Test, name: string, host: string, port: number): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('end', () => s.end(`${name}\n`));
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

/** Two backends on one port of two loopback addresses. */
async function twoBackends(t: Test): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.2', () => resolve((probe.address() as net.AddressInfo).port)),
    );
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    try {
      await namedServer(t, 'blog', '127.0.0.2', port);
      await namedServer(t, 'wiki', '127.0.0.3', port);
      return port;
    } catch (err) {
      if (attempt === 5) throw err;
    }
  }
}

t.test('one templated route serves two containers by name, resolved per connection', { skip }, async (t) => {
  const port = await twoBackends(t);
  const dir = tempDir(t, 'snimux-hosts-');
  const hosts = join(dir, 'hosts');
  const nss = join(dir, 'nsswitch.conf');
  writeFileSync(hosts, '127.0.0.1 localhost\n127.0.0.2 blog.lxd\n127.0.0.3 wiki.lxd wiki.raw.test\n');
  // Files only: a name that is not there gets no answer, and nothing is asked of a DNS server.
  writeFileSync(nss, 'hosts: files\n');
  const wrapper = [
    'unshare',
    '-m',
    'sh',
    '-c',
    'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf && shift 2 && exec "$@"',
    'sh',
    hosts,
    nss,
  ];
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      route('lxd-tls', `{sni.1}.lxd:${port}`, { sni: '*.bjk.test' }),
      route('lxd-http', `{host.1}.lxd:${port}`, { host: '*.bjk.test' }),
      route('raw-http', `{host}:${port}`, { host: '*.raw.test' }),
    ),
    [],
    wrapper,
  );

  for (const name of ['blog', 'wiki']) {
    const ex = await exchange(mux.port, buildClientHello({ sni: `${name}.bjk.test` }));
    t.equal(ex.reply.toString(), `${name}\n`, `${name}.bjk.test reaches ${name}.lxd`);
    t.match(await connectionLine(mux, ex.localPort), { route: 'lxd-tls', backend: `${name}.lxd:${port}` });
  }
  const http = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: Wiki.bjk.test\r\n\r\n'));
  t.equal(http.reply.toString(), 'wiki\n', 'an HTTP Host is a name too');
  const whole = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: wiki.raw.test\r\n\r\n'));
  t.equal(whole.reply.toString(), 'wiki\n', '{host} is the whole name');

  const gone = await exchange(mux.port, buildClientHello({ sni: 'gone.bjk.test' }));
  t.equal(gone.reply.length, 0);
  t.match(await connectionLine(mux, gone.localPort), { reject: 'backend_unavailable', route: 'lxd-tls' });
  t.match(
    await mux.waitForLog((l) => l.msg === 'backend connect failed' && l.backend === `gone.lxd:${port}`),
    { code: 'ENOTFOUND' },
    'a name with no answer is a dead backend, logged with its expanded name',
  );

  const hostile = await exchange(mux.port, buildClientHello({ sni: 'x_y.bjk.test' }));
  t.equal(hostile.reply.length, 0);
  t.match(await connectionLine(mux, hostile.localPort), { reject: 'bad_backend', detail: /not a DNS name/ });
  // The HTTP Host allows more than a DNS name does (RFC 3986 reg-name): these reach the template.
  for (const host of ['a..b.raw.test', 'a!b.raw.test', 'a%2eb.raw.test', `${'a'.repeat(64)}.raw.test`]) {
    const ex = await exchange(mux.port, Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
    t.equal(ex.reply.length, 0, host);
    t.match(await connectionLine(mux, ex.localPort), { reject: 'bad_backend' }, host);
  }
  const trailing = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: blog.bjk.test.\r\n\r\n'));
  t.equal(trailing.reply.toString(), 'blog\n', 'one trailing dot of a Host is dropped before routing');

  const m = await scrape(adminPort(mux));
  t.equal(value(m, 'snimux_rejected_connections_total', { reason: 'bad_backend' }), 5);
  t.equal(
    value(m, 'snimux_backend_connect_failures_total', { route: 'lxd-tls', backend: `{sni.1}.lxd:${port}` }),
    1,
    'failures count under the configured template, not the client-chosen name',
  );
  t.notOk(
    m.some((s) => s.name.startsWith('snimux_backend') && /gone|blog|wiki/.test(s.labels.backend ?? '')),
    'no series named by a client',
  );
  t.equal(value(m, 'snimux_backend_down', { backend: `{sni.1}.lxd:${port}` }), undefined);
});
