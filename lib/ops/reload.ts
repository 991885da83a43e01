// Reload orchestration: re-read and validate the config, switch to it whole or not at all, say what changed.
import { formatProblem, loadConfig } from '../config/load.js';
import { configValue, keyName, keysOf, rows, spec } from '../config/schema.js';
import type { Config, ConfigResult, RouteConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Mux } from '../mux.js';
import { fdLimitWarning } from './fdlimit.js';

/** The metrics side of a reload (lib/metrics.ts); optional, as metrics are. */
export interface ReloadMetrics {
  reloadSucceeded?(config?: Config): void;
  /** errors: what the log line says, one message each. */
  reloadFailed?(errors: readonly string[]): void;
}

/** A change to something besides the mux, prepared before the mux switches and undone if it cannot. */
export interface PreparedChange {
  commit(): void | Promise<void>;
  rollback(): void | Promise<void>;
}

/** Something besides the mux that a reload may change, such as the admin endpoint. */
export interface ReloadPart {
  readonly name: string;
  /** Does what can fail (binding a new address) without giving up the old; undefined: nothing to do. */
  prepare(next: Config, prev: Config): Promise<PreparedChange | undefined>;
}

export type ReloadResult =
  | { kind: 'reloaded'; config: Config; changes: string[] }
  | { kind: 'failed'; errors: string[] }
  | { kind: 'ignored'; reason: string };

export interface ReloaderOptions {
  mux: Pick<Mux, 'config' | 'reload' | 'addresses'>;
  log: Logger;
  metrics?: ReloadMetrics | undefined;
  parts?: readonly ReloadPart[];
  /** Reads and validates the file; loadConfig unless a test says otherwise. */
  load?: (file: string) => Promise<ConfigResult>;
}

/** Keys the running process cannot change: they were used once, at start. */
const RESTART_ONLY: readonly [string, (c: Config) => unknown][] = [...rows()]
  .filter((row) => row.spec.restart === true)
  .map((row) => [row.name, (c) => configValue(c, row.table, row.key)]);

/**
 * Runs reloads one at a time. Signals that arrive while one is waiting to start join it: the file is
 * read once, after the last of them, which is what the sender of each wanted.
 */
export class Reloader {
  private last: Promise<unknown> = Promise.resolve();
  private waiting: Promise<ReloadResult> | undefined;
  private stopped = false;

  constructor(private readonly o: ReloaderOptions) {}

  reload(): Promise<ReloadResult> {
    if (this.waiting !== undefined) return this.waiting;
    const next = this.last.then(() => {
      this.waiting = undefined;
      return this.run();
    });
    this.waiting = next;
    this.last = next;
    return next;
  }

  /** Shutting down: reloads from now on are ignored (a reload must not reopen closed listeners). */
  stop(): void {
    this.stopped = true;
  }

  private async run(): Promise<ReloadResult> {
    const { mux, log } = this.o;
    if (this.stopped) return this.ignored('shutting down');
    const prev = mux.config;
    const started = performance.now();
    const loaded = await (this.o.load ?? loadConfig)(prev.file);
    if (loaded.kind === 'error') return this.failed(loaded.errors.map(formatProblem), prev);
    const next = loaded.config;
    for (const w of loaded.warnings) log.warn({ warning: formatProblem(w) }, 'config warning');
    if (this.stopped) return this.ignored('shutting down');

    const prepared: PreparedChange[] = [];
    const rollback = async (): Promise<void> => {
      for (const p of prepared.reverse()) await p.rollback();
    };
    for (const part of this.o.parts ?? []) {
      try {
        const p = await part.prepare(next, prev);
        if (p !== undefined) prepared.push(p);
      } catch (err) {
        await rollback();
        return this.failed([`${part.name}: ${(err as Error).message}`], prev);
      }
    }
    try {
      await mux.reload(next);
    } catch (err) {
      await rollback();
      return this.failed([withPortHint((err as Error).message)], prev);
    }
    for (const p of prepared) await p.commit();

    // The level can change in place; the format and the identity were fixed at start.
    log.level = next.log.level;
    const changes = describeChanges(prev, next);
    for (const [key, get] of RESTART_ONLY) {
      if (get(prev) !== get(next)) {
        log.warn({ key }, `${key} changed: it takes effect when sni-mux is restarted, not on reload`);
      }
    }
    const fd =
      next.limits.maxConnections > prev.limits.maxConnections ? fdLimitWarning(next.limits) : undefined;
    if (fd !== undefined) log.warn({ limit: fd.limit, needed: fd.needed }, fd.message);
    log.info(
      {
        config: next.file,
        routes: next.routes.length,
        listeners: [...mux.addresses()].map(([text, a]) => ({
          config: text,
          address: a.address,
          port: a.port,
        })),
        changes,
        ms: Math.round((performance.now() - started) * 1000) / 1000,
      },
      'config reloaded',
    );
    this.o.metrics?.reloadSucceeded?.(next);
    return { kind: 'reloaded', config: next, changes };
  }

  private failed(errors: string[], prev: Config): ReloadResult {
    const uid = process.geteuid?.();
    this.o.log.error(
      { config: prev.file, errors, ...(uid !== undefined && uid !== 0 ? { uid } : {}) },
      'reload failed: keeping the old config',
    );
    this.o.metrics?.reloadFailed?.(errors);
    return { kind: 'failed', errors };
  }

  private ignored(reason: string): ReloadResult {
    this.o.log.info({ reason }, 'reload ignored');
    return { kind: 'ignored', reason };
  }
}

/** Adds the likely cause when an unprivileged process fails to bind a new port below 1024. */
function withPortHint(message: string): string {
  if (!message.includes('EACCES') || process.geteuid?.() === 0) return message;
  return (
    `${message} (ports below 1024 need root or CAP_NET_BIND_SERVICE, and sni-mux runs unprivileged now: ` +
    'restart it to bind a new low port, or give it the capability, see docs/operations.md)'
  );
}

/** What a reload changes, one short phrase each, for the log. Pure. */
export function describeChanges(prev: Config, next: Config): string[] {
  const out: string[] = [];
  const oldListen = new Set(prev.listen.map((e) => e.text));
  const newListen = new Set(next.listen.map((e) => e.text));
  for (const t of newListen) if (!oldListen.has(t)) out.push(`listen + ${t}`);
  for (const t of oldListen) if (!newListen.has(t)) out.push(`listen - ${t}`);

  const oldRoutes = new Map(prev.routes.map((r) => [r.name, routeKey(r)]));
  const newRoutes = new Map(next.routes.map((r) => [r.name, routeKey(r)]));
  for (const [name, key] of newRoutes) {
    const before = oldRoutes.get(name);
    if (before === undefined) out.push(`route + ${name}`);
    else if (before !== key) out.push(`route ~ ${name}`);
  }
  for (const name of oldRoutes.keys()) if (!newRoutes.has(name)) out.push(`route - ${name}`);
  const order = (rs: readonly RouteConfig[]): string =>
    rs
      .map((r) => r.name)
      .filter((n) => oldRoutes.has(n) && newRoutes.has(n))
      .join('\n');
  if (order(prev.routes) !== order(next.routes)) out.push('route order');

  for (const table of ['timeouts', 'limits'] as const) {
    for (const key of keysOf(table)) {
      const [a, b] = [configValue(prev, table, key), configValue(next, table, key)];
      const unit = spec(table, key).type === 'duration' ? 'ms' : '';
      if (a !== b) out.push(`${keyName(table, key)} ${a}${unit} → ${b}${unit}`);
    }
  }
  if (prev.log.level !== next.log.level) {
    out.push(`${keyName('log', 'level')} ${prev.log.level} → ${next.log.level}`);
  }
  if (prev.admin?.listen.text !== next.admin?.listen.text) {
    const [a, b] = [prev.admin?.listen.text ?? 'off', next.admin?.listen.text ?? 'off'];
    out.push(`${keyName('admin', 'listen')} ${a} → ${b}`);
  }
  const cidrs = (list: readonly { text: string }[] | undefined): string =>
    list?.map((x) => x.text).join(',') ?? '';
  if (cidrs(prev.acceptProxy?.from) !== cidrs(next.acceptProxy?.from))
    out.push(keyName('accept_proxy', 'from'));
  if (cidrs(prev.admin?.allow) !== cidrs(next.admin?.allow)) out.push(keyName('admin', 'allow'));
  return out;
}

/** The route fields that decide what a route takes and what it does with it (backend and backends share one). */
const ROUTE_MEANING = [
  ...new Set(
    keysOf('route').flatMap((key) =>
      spec('route', key).route === undefined ? [] : [spec('route', key).field],
    ),
  ),
];

/** What a route does, as text: equal texts mean the same routing, whatever the file position. */
function routeKey(r: RouteConfig): string {
  const fields = r as unknown as Readonly<Record<string, unknown>>;
  // Addresses and networks compare as the user wrote them.
  const text = (v: unknown): unknown =>
    Array.isArray(v) ? v.map((x: { text?: unknown }) => x?.text ?? x) : v;
  return JSON.stringify(ROUTE_MEANING.map((field) => text(fields[field])));
}
