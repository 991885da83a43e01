// A worker's end of the channel to its primary: the config it runs, reloads, drains and status queries.
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import type { StatusSource } from '../admin/server.js';
import type { Config, ConfigResult } from '../config/types.js';
import type { Reloader, ReloadMetrics } from '../ops/reload.js';
import { type FromWorker, isOurs, type ListenerInfo, type StatusQuery, type ToWorker } from './messages.js';

/** What a serving worker answers the primary from. */
export interface WorkerParts {
  reloader: Pick<Reloader, 'reload'>;
  /** Undefined without [admin]: nothing collects them. */
  pages?: StatusSource | undefined;
  reloadMetrics?: ReloadMetrics | undefined;
  registry?: Pick<Registry, 'getMetricsAsJSON'> | undefined;
}

/** The environment variable that gives a worker its number, 1 to N (kept across restarts). */
export const WORKER_ENV = 'SNI_MUX_WORKER';

/**
 * Emits 'SIGTERM' when the primary says stop (or goes away), as the process would on a signal, so the
 * drain code is the same in both. Signals sent to the worker itself are ignored: a Ctrl-C reaches the
 * whole process group, and the primary, which got it too, decides.
 */
export class WorkerLink extends EventEmitter {
  readonly index = Number(process.env[WORKER_ENV] ?? '0');
  private next: Config;
  private parts: WorkerParts | undefined;

  private constructor(first: Config) {
    super();
    this.next = first;
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, ignore);
    process.on('message', (m: unknown) => {
      if (isOurs<ToWorker>(m)) void this.onMessage(m);
    });
    // The primary is gone (killed): drain rather than relay on without anyone to stop us.
    process.once('disconnect', () => this.emit('SIGTERM', 'SIGTERM'));
  }

  /** Asks the primary for the config and resolves with the link once it came. */
  static connect(): Promise<WorkerLink> {
    return new Promise((resolve) => {
      const first = (m: unknown): void => {
        if (!isOurs<ToWorker>(m) || m.sniMux !== 'config') return;
        process.off('message', first);
        resolve(new WorkerLink(m.config));
      };
      process.on('message', first);
      send({ sniMux: 'ready' });
    });
  }

  get config(): Config {
    return this.next;
  }

  /** The Reloader's loader: the config the primary validated and sent, never the file again. */
  readonly load = (_file: string): Promise<ConfigResult> =>
    Promise.resolve({ kind: 'ok', config: this.next, warnings: [] });

  /** Starts answering reloads and status queries; tells the primary this worker is serving. */
  serve(parts: WorkerParts, dataPlane: string, listeners: ListenerInfo[]): void {
    this.parts = parts;
    send({ sniMux: 'started', dataPlane, listeners });
  }

  private async onMessage(m: ToWorker): Promise<void> {
    if (m.sniMux === 'stop') {
      this.emit('SIGTERM', 'SIGTERM');
    } else if (m.sniMux === 'config') {
      this.next = m.config;
      const result = await this.parts?.reloader.reload();
      const errors =
        result === undefined
          ? ['not started yet']
          : result.kind === 'failed'
            ? result.errors
            : result.kind === 'ignored'
              ? [result.reason]
              : [];
      send({ sniMux: 'config', id: m.id, errors });
    } else if (m.sniMux === 'reload-failed') {
      this.parts?.reloadMetrics?.reloadFailed?.(m.errors);
    } else {
      send({ sniMux: 'status', id: m.id, value: await this.answer(m.query, m.limit) });
    }
  }

  private answer(query: StatusQuery, limit: number): unknown {
    const { pages, registry } = this.parts ?? {};
    if (query === 'metrics') return registry?.getMetricsAsJSON() ?? [];
    if (pages === undefined) return null;
    if (query === 'status') return pages.status(limit);
    return query === 'connections' ? pages.connections(limit) : pages.routes();
  }
}

function send(m: FromWorker): void {
  // The channel is gone when the primary died: the 'disconnect' handler drains.
  if (cluster.worker?.isConnected() !== false) process.send?.(m);
}

function ignore(): void {}
