// workers = N, the pure parts: the config key and the merged status reports (test/workers.test.ts runs the processes).
import t from 'tap';
import { formatProblem, parseConfig } from '../lib/config/load.js';
import type { ConnectionSnapshot } from '../lib/connection.js';
import type { StatusReport } from '../lib/status/report.js';
import { workerCount } from '../lib/workers/count.js';
import { netHasReusePort } from '../lib/workers/reuseport.js';
import { mergeConnections, mergeRoutes, mergeStatus } from '../lib/workers/status.js';

t.test(
  'config: workers is a count from 1 to 256 or "auto"; port 0 and listen_udp are refused with more',
  async (t) => {
    const parse = (text: string) => parseConfig(text, 'mux.toml');
    const head = 'listen = ["127.0.0.1:8443"]\n';
    const tail = '[[route]]\nname = "web"\nbackend = "127.0.0.1:9443"\n';
    const okWith = (line: string) => {
      const r = parse(`${head}${line}\n${tail}`);
      if (r.kind !== 'ok') throw new Error(r.errors.map(formatProblem).join('\n'));
      return r.config;
    };
    const errorsOf = (text: string): string[] => {
      const r = parse(text);
      return r.kind === 'error' ? r.errors.map(formatProblem) : [];
    };
    t.equal(okWith('').workers, 1, 'default 1');
    t.equal(okWith('workers = 4').workers, 4);
    t.equal(okWith('workers = "auto"').workers, 'auto');
    t.ok(workerCount({ workers: 'auto' }) >= 1, '"auto" counts the cores');
    t.equal(workerCount({ workers: 3 }), 3);
    t.match(errorsOf(`${head}workers = 0\n${tail}`), [
      /^mux\.toml:2:\d+: workers: 0 is out of range; write a number from 1 to 256/,
    ]);
    t.match(errorsOf(`${head}workers = "many"\n${tail}`), [
      /mux\.toml:2:\d+: workers: expected a whole number from 1 to 256 or "auto"/,
    ]);
    t.match(errorsOf(`${head}workers = "2"\n${tail}`), [/workers: .*write 2 without quotes/]);
    t.match(errorsOf(`listen = ["127.0.0.1:0"]\nworkers = 2\n${tail}`), [
      /mux\.toml:1:\d+: listen: .*each of the workers would pick on its own/,
    ]);
    t.match(errorsOf(`${head}listen_udp = ["127.0.0.1:8443"]\nworkers = "auto"\n${tail}`), [
      /listen_udp: is not supported with workers > 1/,
    ]);
    t.match(errorsOf(`${head}worker_processes = 2\n${tail}`), [/did you mean `workers`/]);
    t.equal(netHasReusePort('20.19.0'), false);
    t.equal(netHasReusePort('22.11.0'), false);
    t.equal(netHasReusePort('22.12.0'), true);
    t.equal(netHasReusePort('24.0.0'), true);
  },
);

t.test(
  'status: routes merged across workers sum live and say down when any worker has it down',
  async (t) => {
    const row = (live: number, down: boolean, up: boolean | null) => ({
      n: 1,
      route: 'web',
      matches: '',
      backends: 'b:1',
      live,
      backend_state: [{ backend: 'b:1', down, up }],
    });
    const merged = mergeRoutes([
      { worker: 1, pid: 10, value: [row(2, false, true)] },
      { worker: 2, pid: 11, value: [row(3, true, false)] },
    ]);
    t.same(merged, [{ ...row(5, true, false) }]);
  },
);

t.test(
  'status: the merged report sums totals and lists every worker’s connections, tagged, up to the limit',
  async (t) => {
    const conn = (id: number) =>
      ({ id, client: '127.0.0.1', client_port: 1000 + id }) as unknown as ConnectionSnapshot;
    t.same(
      mergeConnections(
        [
          { worker: 1, pid: 10, value: [conn(1), conn(2)] },
          { worker: 2, pid: 11, value: [conn(1)] },
        ],
        2,
      ).map((c) => [c.worker, c.id]),
      [
        [1, 1],
        [1, 2],
      ],
      'at most limit, in worker order',
    );
    const report = (pid: number, accepted: number) =>
      ({
        pid,
        data_plane: 'js',
        routes: [],
        totals: { live: 1, accepted },
        rates: { window_s: 10, connections: accepted },
        rejections: { window_s: 60, recent: { no_route: 1 }, total: { no_route: 2 } },
        connections: [conn(pid)],
      }) as unknown as StatusReport;
    const merged = mergeStatus(
      [
        { worker: 1, pid: 10, value: report(10, 3) },
        { worker: 2, pid: 11, value: report(11, 4) },
      ],
      10,
      { pid: 9, startedAt: Date.now() },
    );
    t.match(merged, {
      pid: 9,
      workers: [
        { worker: 1, pid: 10 },
        { worker: 2, pid: 11 },
      ],
      totals: { live: 2, accepted: 7 },
      rates: { window_s: 10, connections: 7 },
      rejections: { recent: { no_route: 2 }, total: { no_route: 4 } },
    });
    t.equal(merged?.connections.length, 2);
    t.equal(mergeStatus([], 10, { pid: 9, startedAt: 0 }), null, 'no worker serving: nothing to say');
  },
);
