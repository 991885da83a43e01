// workers = N over a process's life: one drain for all, a start that fails once, a dead worker replaced.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { route, table } from './helpers/config.js';
import { request } from './helpers/metrics.js';
import { BIN, type LogLine, startMux } from './helpers/mux.js';
import { type Held, holdOpen } from './helpers/ops.js';
import { freePort, tempDir } from './helpers/programs.js';
import { startEcho, startRecorder } from './helpers/servers.js';
import { fromPrimary, MAX_CONNECTIONS, spread, startedLine, workersToml } from './helpers/workers.js';

t.test('SIGTERM to the primary drains both workers, and the process tree exits 0', async (t) => {
  const echo = await startEcho(t);
  const admin = await freePort();
  const { text } = await workersToml(
    table('admin', { listen: `127.0.0.1:${admin}` }),
    route('any', echo.port),
  );
  const mux = await startMux(t, text);
  const pids = startedLine(mux).worker_pids as number[];

  // Hold relayed connections until each worker holds one (the status page says which holds which).
  const held: Held[] = [];
  const holders = new Set<number>();
  for (let i = 0; i < MAX_CONNECTIONS && holders.size < 2; i++) {
    const h = await holdOpen(mux.port);
    if (h.kind !== 'open') throw new Error(`connection ${i} was refused`);
    held.push(h.held);
    const live = JSON.parse((await request(admin, '/connections')).body) as {
      worker: number;
      client_port: number;
    }[];
    const mine = live.find((c) => c.client_port === h.held.localPort);
    if (mine !== undefined) holders.add(mine.worker);
  }
  t.same([...holders].sort(), [1, 2], `each worker relays a held connection (${held.length} held)`);

  mux.proc.kill('SIGTERM');
  await mux.waitForLog(fromPrimary(mux, 'draining'));
  await mux.waitForLog((l) => l.msg === 'draining' && l.worker === 1);
  await mux.waitForLog((l) => l.msg === 'draining' && l.worker === 2);
  t.equal((await request(admin, '/healthz')).status, 503, '/healthz says draining');
  for (const h of held) t.equal(await h.echo('still here'), 'still here', 'a held connection still relays');
  for (const h of held) h.socket.end();
  t.equal(await mux.exited, 0, 'the primary exits 0 once both workers have drained');
  const stoppedWorkers = mux.logs.filter((l) => l.msg === 'stopped' && l.worker !== undefined);
  t.same(stoppedWorkers.map((l) => l.worker).sort(), [1, 2], 'both workers stopped');
  t.equal(mux.logs.at(-1)?.msg, 'stopped', 'the primary’s "stopped" is the last line');
  t.equal(mux.logs.at(-1)?.worker, undefined);
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`);
});

t.test('a worker that cannot bind fails the start: the primary says so once and exits 1', async (t) => {
  const port = await freePort();
  // A socket without SO_REUSEPORT on the port: no worker can bind beside it.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  t.teardown(() => squatter.close());
  const dir = tempDir(t, 'workers');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, `listen = ["127.0.0.1:${port}"]\nworkers = 2\n${route('any', 1)}`);
  const run = spawnSync(process.execPath, [BIN, '--config', file], { encoding: 'utf8', timeout: 60_000 });
  t.equal(run.status, 1, 'exit code 1');
  const lines = run.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
  const fatal = lines.filter((l) => l.msg === 'cannot start' && l.worker === undefined);
  t.equal(fatal.length, 1, 'the primary says "cannot start" once');
  t.match(
    lines.find((l) => l.msg === 'cannot start' && l.worker !== undefined),
    { err: /EADDRINUSE/ },
    'the worker says why',
  );
  t.notOk(lines.some((l) => l.msg === 'sni-mux started'));
});

t.test('a worker that dies is logged and replaced', async (t) => {
  const rec = await startRecorder(t, 'one');
  const { text } = await workersToml(route('any', rec.port));
  const mux = await startMux(t, text);
  const [first, second] = startedLine(mux).worker_pids as [number, number];

  process.kill(first, 'SIGKILL');
  const exited = await mux.waitForLog(fromPrimary(mux, 'worker exited'));
  t.match(exited, { worker: 1, worker_pid: first, signal: 'SIGKILL' });
  const restarted = await mux.waitForLog(
    (l) => l.msg === 'worker started' && l.worker === 1 && l.pid !== first,
  );
  const { seen, replies } = await spread(mux, [restarted.pid as number, second]);
  t.same(
    [...seen].sort(),
    [restarted.pid as number, second].sort(),
    'the new worker and the old one both serve',
  );
  t.ok(replies.every((r) => r === 'one'));
  t.equal(mux.proc.exitCode, null, 'the primary runs on');
  t.equal(await mux.stop(), 0);
});
