// Routes scoped to listeners (route key `listen`): a route takes only the listeners it names, as HAProxy
// frontends, nginx listen blocks and Traefik entryPoints do; `check` refuses an address that is not listened on.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { formatProblem, parseConfig } from '../lib/config/load.js';
import { Router } from '../lib/route/router.js';
import { exchange } from './helpers/clients.js';
import { route } from './helpers/config.js';
import { BIN, connectionLine, startMux } from './helpers/mux.js';
import { tempDir } from './helpers/programs.js';
import { startRecorder } from './helpers/servers.js';

const run = promisify(execFile);

const scoped = (listen: string) =>
  [
    'listen = ["127.0.0.1:8443", "127.0.0.1:8080"]',
    '[[route]]',
    'name = "ssh"',
    'protocol = "ssh"',
    `listen = ${listen}`,
    'backend = "127.0.0.1:22"',
    '',
  ].join('\n');

t.test('a route listen address must be a top-level listen address; check names the fix', async (t) => {
  const r = parseConfig(scoped('["127.0.0.1:80"]'), 'mux.toml');
  t.equal(r.kind, 'error');
  if (r.kind !== 'error') return;
  t.same(r.errors.map(formatProblem), [
    'mux.toml:5:11: route[1].listen[1]: "127.0.0.1:80" is not in the top-level listen ("127.0.0.1:8443", "127.0.0.1:8080"); a route can only take connections from those: add it there, or use one of them',
  ]);

  const dir = tempDir(t, 'check');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, scoped('"127.0.0.1:80"'));
  const out = await run(process.execPath, [BIN, 'check', '--config', file]).catch(
    (e: { stderr: string; code: number }) => e,
  );
  t.equal((out as { code?: number }).code, 1, 'check exits 1');
  t.match(out.stderr, /route\[1\]\.listen: "127\.0\.0\.1:80" is not in the top-level listen/);
});

t.test('a scoped route is only in the router of the listeners it names; check shows the scope', async (t) => {
  const r = parseConfig(
    [
      scoped('["127.0.0.1:8443"]'),
      '[[route]]',
      'name = "all"',
      'protocol = "ssh"',
      'backend = "127.0.0.1:9000"',
      '',
    ].join('\n'),
    'mux.toml',
  );
  if (r.kind !== 'ok') throw new Error(r.errors.map(formatProblem).join('\n'));
  t.same(r.config.routes[0]!.listen, ['127.0.0.1:8443']);
  t.same(
    new Router(r.config.routes, '127.0.0.1:8443').routes.map((x) => x.name),
    ['ssh', 'all'],
  );
  t.same(
    new Router(r.config.routes, '127.0.0.1:8080').routes.map((x) => x.name),
    ['all'],
  );
  t.same(
    new Router(r.config.routes).routes.map((x) => x.name),
    ['ssh', 'all'],
    'no listener: every route',
  );
  t.same(r.warnings, [], 'a scoped route does not shadow an unscoped one after it');
});

t.test('on real sockets, a route scoped to one of two listeners is refused on the other', async (t) => {
  const ssh = await startRecorder(t, 'ssh');
  const web = await startRecorder(t, 'web');
  const mux = await startMux(
    t,
    [
      'listen = ["127.0.0.1:0", "127.0.0.2:0"]',
      route('ssh', ssh.port, { protocol: 'ssh', listen: ['127.0.0.1:0'] }),
      route('web', web.port, { protocol: 'http' }),
    ].join('\n'),
  );
  const [first, second] = mux.ports as [number, number];
  const banner = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n');
  const get = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n');

  const a = await exchange(first, banner);
  t.match(a.reply.toString(), /^ssh 21 /, 'ssh routed on the listener it names');
  t.match(await connectionLine(mux, a.localPort), { route: 'ssh', listener: '127.0.0.1:0' });

  const b = await exchange(second, banner, { host: '127.0.0.2' });
  t.equal(b.reply.length, 0, 'nothing relayed on the other listener');
  t.match(await connectionLine(mux, b.localPort), {
    reject: 'no_route',
    protocol: 'ssh',
    listener: '127.0.0.2:0',
  });

  const c = await exchange(second, get, { host: '127.0.0.2' });
  t.match(c.reply.toString(), /^web /, 'an unscoped route still takes every listener');
  t.equal(ssh.received.length, 1, 'the ssh backend saw one connection only');
});
