// The primary of `workers > 1`: relays nothing itself; owns the signals, the reload, the drain, the pid
// file and the admin listener, and speaks for its workers (lib/workers/group.ts).
import cluster from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { AdminServer, type StatusSource } from '../admin/server.js';
import { AdminSlot } from '../admin/slot.js';
import { loadConfig } from '../config/load.js';
import type { Config, Endpoint } from '../config/types.js';
import type { ConnectionSnapshot } from '../connection.js';
import type { Logger, LogOutput } from '../log.js';
import { claimPidFile, pidFilePath } from '../ops/pidfile.js';
import { Reloader } from '../ops/reload.js';
import type { RouteStatus, StatusReport } from '../status/report.js';
import { VERSION } from '../version.js';
import { WorkerGroup } from './group.js';
import { mergeConnections, mergeRoutes, mergeStatus, type WorkerReport } from './status.js';

export interface PrimaryOptions {
  config: Config;
  workers: number;
  log: Logger;
  output: LogOutput;
}

/** Starts the workers and serves until they have all drained; resolves with the exit code. */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const { config, log } = o;
  const startedAt = Date.now();
  // Node 20's net cannot set SO_REUSEPORT: there the js plane's workers share the sockets the primary
  // binds and accept from them in turn, rather than have the primary accept and pass each connection on.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  let failed: (reason: string) => void = () => {};
  const failure = new Promise<string>((resolve) => {
    failed = resolve;
  });
  let started: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    started = resolve;
  });
  const group = new WorkerGroup(config, o.workers, log, o.output, { onStarted: started, onFailed: failed });

  const pages = config.admin === undefined ? undefined : groupStatus(group, startedAt);
  const metrics = config.admin === undefined ? undefined : groupMetrics(group);
  const onAdminError = (err: Error): void => log.error({ err: err.message }, 'admin listener error');
  const makeAdmin = (e: Endpoint): AdminServer | undefined =>
    metrics && new AdminServer(e, metrics, onAdminError, pages);
  const admin = config.admin && makeAdmin(config.admin.listen);
  const adminSlot = new AdminSlot(admin, makeAdmin, log);
  const reloader = new Reloader({
    mux: group,
    log,
    parts: [adminSlot],
    load: (file) => {
      group.reached = false;
      return loadConfig(file);
    },
    metrics: {
      // A file the primary refused never reached the workers, which keep the reload counts.
      reloadFailed: (errors) => {
        if (!group.reached) group.reloadRefused([...errors]);
      },
    },
  });

  const first = await Promise.race([ready.then(() => undefined), failure]);
  if (first !== undefined) {
    log.fatal({ reason: first }, 'cannot start');
    await group.stop();
    return 1;
  }
  let adminAddress: { address: string; port: number } | undefined;
  const pidFile = pidFilePath(config);
  try {
    adminAddress = await admin?.listen();
    if (pidFile !== undefined) {
      claimPidFile(pidFile, (path, code) => log.warn({ pid_file: path, code }, 'pid file left in place'));
    }
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot start');
    await group.stop();
    return 1;
  }
  const stopped = new Promise<number>((resolve) => {
    let signals = 0;
    let code = 0;
    const drain = (why: Record<string, unknown>): void => {
      if (++signals > 1) {
        log.warn(why, 'second signal: closing every connection now');
        void group.stop();
        return;
      }
      reloader.stop();
      adminSlot.setDraining();
      log.info({ ...why, workers: group.serving().length }, 'draining');
      void group.stop().then(async () => {
        await adminSlot.current?.close();
        log.info('stopped');
        resolve(code);
      });
    };
    process.on('SIGHUP', () => void reloader.reload());
    process.on('SIGTERM', (signal) => drain({ signal }));
    process.on('SIGINT', (signal) => drain({ signal }));
    void failure.then((reason) => {
      log.error({ reason }, 'workers keep failing: draining the rest');
      if (signals > 0) return;
      code = 1;
      drain({ reason });
    });
  });
  log.info(
    {
      version: VERSION,
      data_plane: group.dataPlane(),
      workers: o.workers,
      worker_pids: group.pids(),
      listeners: [...group.addresses()].map(([text, a]) => ({
        config: text,
        address: a.address,
        port: a.port,
      })),
      udp_listeners: [],
      routes: config.routes.length,
      admin: adminAddress && { address: adminAddress.address, port: adminAddress.port },
      config: config.file,
      pid_file: pidFile,
    },
    'sni-mux started',
  );
  return stopped;
}

/** /metrics: every worker's registry, summed by prom-client's aggregator (gauges by their `aggregator`). */
function groupMetrics(group: WorkerGroup) {
  return {
    async exposition(): Promise<{ contentType: string; body: string }> {
      const answers = await group.query('metrics');
      const merged = AggregatorRegistry.aggregate(
        answers.map((a) => a.value as MetricObjectWithValues<MetricValue<string>>[]),
      );
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
  };
}

/** The status page and its JSON: the workers' reports merged (lib/workers/status.ts). */
function groupStatus(group: WorkerGroup, startedAt: number): StatusSource {
  return {
    allow: () => group.config.admin?.allow,
    status: async (limit) =>
      mergeStatus((await group.query('status', limit)) as WorkerReport<StatusReport>[], limit, {
        pid: process.pid,
        startedAt,
      }),
    connections: async (limit) =>
      mergeConnections(
        (await group.query('connections', limit)) as WorkerReport<ConnectionSnapshot[]>[],
        limit,
      ),
    routes: async () => mergeRoutes((await group.query('routes')) as WorkerReport<RouteStatus[]>[]),
  };
}
