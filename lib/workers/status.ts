// The status reports of several workers merged into one, in the shape one process gives. Pure.
import type { ConnectionSnapshot } from '../connection.js';
import type { RouteStatus, StatusReport } from '../status/report.js';

/** One worker's answer, with who gave it. */
export interface WorkerReport<T> {
  worker: number;
  pid: number;
  value: T;
}

/** Live connections of every worker, each tagged with its worker, at most `limit` in all. */
export function mergeConnections(
  reports: readonly WorkerReport<readonly ConnectionSnapshot[]>[],
  limit: number,
): (ConnectionSnapshot & { worker: number })[] {
  const out: (ConnectionSnapshot & { worker: number })[] = [];
  for (const r of reports) {
    for (const c of r.value) {
      if (out.length >= limit) return out;
      out.push({ ...c, worker: r.worker });
    }
  }
  return out;
}

/**
 * Routes: live counts summed; a backend is down when any worker has it down (each keeps its own
 * backend_down), and up by health check only when every worker that checks it says up.
 */
export function mergeRoutes(reports: readonly WorkerReport<readonly RouteStatus[]>[]): RouteStatus[] {
  const [first, ...rest] = reports;
  if (first === undefined) return [];
  return first.value.map((route, i) => {
    const same = rest.map((r) => r.value[i]).filter((x): x is RouteStatus => x?.route === route.route);
    return {
      ...route,
      live: same.reduce((n, r) => n + r.live, route.live),
      backend_state: route.backend_state.map((b, j) => {
        const all = [b, ...same.map((r) => r.backend_state[j]!)];
        const checked = all.map((x) => x.up).filter((up): up is boolean => up !== null);
        return {
          backend: b.backend,
          down: all.some((x) => x.down),
          up: checked.length === 0 ? null : checked.every((up) => up),
        };
      }),
    };
  });
}

type Counts = Readonly<Record<string, number>>;

function sum(records: readonly Counts[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/**
 * The whole status report: totals, rates and rejections summed, routes and connections merged as
 * above, the primary's pid and start, and which workers answered.
 */
export function mergeStatus(
  reports: readonly WorkerReport<StatusReport>[],
  limit: number,
  primary: { pid: number; startedAt: number },
) {
  const [first] = reports;
  if (first === undefined) return null;
  const all = reports.map((r) => r.value);
  const rates = sum(all.map((s) => s.rates));
  rates.window_s = Math.min(...all.map((s) => s.rates.window_s));
  return {
    ...first.value,
    pid: primary.pid,
    started_at: new Date(primary.startedAt).toISOString(),
    uptime_s: Math.round((Date.now() - primary.startedAt) / 1000),
    workers: reports.map((r) => ({ worker: r.worker, pid: r.pid, data_plane: r.value.data_plane })),
    routes: mergeRoutes(reports.map((r) => ({ ...r, value: r.value.routes }))),
    totals: sum(all.map((s) => s.totals)),
    rates,
    rejections: {
      window_s: first.value.rejections.window_s,
      recent: sum(all.map((s) => s.rejections.recent)),
      total: sum(all.map((s) => s.rejections.total)),
    },
    connections: mergeConnections(
      reports.map((r) => ({ ...r, value: r.value.connections })),
      limit,
    ),
  };
}
