// workers = N: N processes serve one port, and still one config, one reload, one log, one /metrics.
import t from 'tap';
import { netHasReusePort } from '../lib/workers/reuseport.js';
import { route, table } from './helpers/config.js';
import { request, scrape } from './helpers/metrics.js';
import { expectedPlane, startMux } from './helpers/mux.js';
import { nthLog, rewriteAndReload } from './helpers/ops.js';
import { freePort } from './helpers/programs.js';
import { startRecorder } from './helpers/servers.js';
import { fromPrimary, listeningSockets, spread, startedLine, workersToml } from './helpers/workers.js';

t.test(
  'with workers = 2, connections are served by both processes and /metrics counts equal the log lines',
  async (t) => {
    const rec = await startRecorder(t, 'one');
    const admin = await freePort();
    const { text } = await workersToml(
      table('admin', { listen: `127.0.0.1:${admin}` }),
      route('any', rec.port),
    );
    const mux = await startMux(t, text);
    const started = startedLine(mux);
    const pids = started.worker_pids as number[];
    t.equal(started.workers, 2, 'the start line says how many workers');
    t.equal(new Set(pids).size, 2, 'two worker processes');
    t.notOk(pids.includes(mux.pid), 'the primary relays nothing itself');
    const plane = expectedPlane();
    t.equal(started.data_plane, plane, `the workers run the ${plane} data plane`);
    // SO_REUSEPORT: one listening socket per worker; Node 20's js plane shares the primary's one.
    const reuse = plane === 'native' || netHasReusePort();
    t.equal(
      listeningSockets(mux.port),
      reuse ? 2 : 1,
      reuse ? 'a listening socket per worker' : 'one shared socket',
    );

    const { replies, lines, seen } = await spread(mux, pids);
    t.same([...seen].sort(), [...pids].sort(), `both workers served connections (${lines.length} made)`);
    t.ok(
      replies.every((r) => r === 'one'),
      'every connection reached the backend',
    );
    t.ok(
      lines.every((l) => (l.worker === 1 || l.worker === 2) && pids.includes(l.pid as number)),
      'every connection line says which worker',
    );

    const samples = await scrape(admin);
    const total = (name: string): number =>
      samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);
    t.equal(total('snimux_connections_total'), lines.length, 'routed connections summed over workers');
    t.equal(
      total('snimux_accepted_connections_total'),
      lines.length,
      'accepted connections summed over workers',
    );
    t.equal(total('snimux_connections_active'), 0);
    t.equal(total('snimux_config_reloads_total'), 0);

    const status = JSON.parse((await request(admin, '/status')).body) as {
      pid: number;
      workers: { worker: number; pid: number }[];
      totals: { accepted: number };
    };
    t.equal(status.pid, mux.pid, 'the status report is the primary’s');
    t.same(status.workers.map((w) => w.pid).sort(), [...pids].sort(), 'and lists both workers');
    t.equal(status.totals.accepted, lines.length, 'with their totals summed');
  },
);

t.test('SIGHUP to the primary reloads every worker; a bad file is refused once', async (t) => {
  const before = await startRecorder(t, 'before');
  const after = await startRecorder(t, 'after');
  const { toml, text } = await workersToml(route('any', before.port));
  const mux = await startMux(t, text);
  const pids = startedLine(mux).worker_pids as number[];

  rewriteAndReload(mux, toml(route('any', after.port)));
  await mux.waitForLog(fromPrimary(mux, 'config reloaded'));
  // A worker's lines reach stdout through the primary's pipe: they may come after the primary's own.
  const workerReloaded = (n: number, worker: number) =>
    nthLog(mux, n, (l) => l.msg === 'config reloaded' && l.worker === worker);
  await Promise.all([workerReloaded(1, 1), workerReloaded(1, 2)]);
  t.pass('each worker switched');
  const { replies, seen } = await spread(mux, pids);
  t.same([...seen].sort(), [...pids].sort(), 'both workers served new connections');
  t.ok(
    replies.every((r) => r === 'after'),
    'all of them on the new route',
  );

  rewriteAndReload(mux, `${toml(route('any', before.port))}[[route]]\nname = 5\n`);
  const failed = await mux.waitForLog(fromPrimary(mux, 'reload failed: keeping the old config'));
  t.match(
    failed.errors,
    [/route\[2\]: needs a backend/, /route\[2\]\.name: expected a string/],
    'the primary says why',
  );
  // The next good reload is ordered after the bad one: every line about the bad one is in by then.
  rewriteAndReload(mux, toml(route('any', before.port)));
  await nthLog(mux, 2, fromPrimary(mux, 'config reloaded'));
  // Each worker's lines arrive in order: anything it said about the bad file is in before these.
  await Promise.all([workerReloaded(2, 1), workerReloaded(2, 2)]);
  t.equal(
    mux.logs.filter((l) => l.msg === 'reload failed: keeping the old config').length,
    1,
    'the bad file was refused once, by the primary; the workers never saw it',
  );
  const back = await spread(mux, pids);
  t.ok(
    back.replies.every((r) => r === 'before'),
    'the good reload after it applies',
  );
});
