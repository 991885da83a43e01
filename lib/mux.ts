// The mux: owns the listeners, the config in force and the live connections; wires the stages together.
import type net from 'node:net';
import type { Config } from './config/types.js';
import type { ConnectFailure } from './connect/attempts.js';
import { Balancer } from './connect/balance.js';
import { Connection, type ConnectionContext, type ConnectionObserver } from './connection.js';
import { choosePlane } from './dataplane/select.js';
import type { ClientSide, DataPlane } from './dataplane/types.js';
import { ConnectionDebug } from './debug.js';
import { HealthChecker } from './health/checker.js';
import { countedKey, SourceCounts } from './listen/limits.js';
import { Listeners } from './listen/listener.js';
import { connectionFields, type Logger } from './log.js';
import { ipBytes } from './net/ip.js';
import { Router } from './route/router.js';
import type { FlowObserver } from './udp/flows.js';
import { UdpFlows } from './udp/flows.js';

/** Optional side observers (metrics); called after the mux's own bookkeeping. */
export type MuxObserver = ConnectionObserver & {
  onAccepted?(c: Connection): void;
  /** UDP flows' observer. */
  readonly udp?: FlowObserver;
};

export interface MuxOptions {
  logger: Logger;
  observer?: MuxObserver | undefined;
}

export class Mux implements ConnectionObserver {
  /** Connections accepted and not yet closed, in any stage, waiting ones included. */
  readonly live = new Set<Connection>();
  /**
   * Accepted past max_connections: not read until a slot frees, first come first served, as HAProxy
   * leaves clients in the listen backlog at maxconn (Node cannot stop accepting without closing the
   * listening socket, which would reset the backlog). Bounded by WAIT_QUEUE.
   */
  private readonly waiting: Connection[] = [];
  /** Active health checks of the routes with health_check; state kept across reloads. */
  readonly health: HealthChecker;
  private ctx: ConnectionContext;
  /** The same context with each listener's own router (routes scoped by their `listen` key). */
  private byListener: ReadonlyMap<string, ConnectionContext>;
  private readonly listeners: Listeners;
  /** The data plane chosen at start (config data_plane); a reload keeps it. */
  readonly plane: DataPlane;
  private readonly perSource = new SourceCounts();
  private readonly log: Logger;
  private readonly observer: MuxObserver | undefined;
  private nextId = 1;
  private stopping = false;
  // performance.now() starts near 0 with the process: a first refusal in its first second must be logged.
  private lastLimitLog = Number.NEGATIVE_INFINITY;
  private suppressedLimitLogs = 0;
  /** Writes the folded count a second after the last line, so the end of a flood is not lost. */
  private limitLogTimer: NodeJS.Timeout | undefined;
  /** Failed backend connects of connections still connecting: one line each when their attempts end. */
  private readonly connectFailures = new Map<Connection, ConnectFailure[]>();
  /** Called when the last live connection closes (drain, abort). */
  private readonly emptyWaiters = new Set<() => void>();

  constructor(config: Config, options: MuxOptions) {
    this.log = options.logger;
    this.observer = options.observer;
    this.health = new HealthChecker(this.log);
    this.ctx = this.context(config);
    this.byListener = this.listenerContexts(this.ctx);
    const choice = choosePlane(config.dataPlane);
    if (choice.warning !== undefined) this.log.warn(choice.warning);
    this.plane = choice.plane;
    this.listeners = new Listeners(this.plane, this.accept);
    this.udp = new UdpFlows(config, this.log, options.observer?.udp);
  }

  /** UDP flows on listen_udp: their own table, sockets and timers (lib/udp). */
  readonly udp: UdpFlows;

  get config(): Config {
    return this.ctx.config;
  }

  /** Whether a backend (by address text) is now tried last because its last connect failed. */
  backendDown(text: string): boolean {
    return this.ctx.balancer.isDown(text, performance.now());
  }

  /** Bound addresses by config text (useful when the config asked for port 0). */
  addresses(): Map<string, net.AddressInfo> {
    return this.listeners.addresses();
  }

  async start(): Promise<void> {
    await this.listeners.update(this.ctx.config.listen);
    this.health.update(this.ctx.config.routes, this.ctx.config.health);
    await this.udp.update(this.ctx.config);
  }

  /**
   * Switches to a new, already validated config: new connections use it at once, live ones keep theirs,
   * unchanged listeners stay open. If a new address cannot be bound, nothing changes and this throws.
   */
  async reload(config: Config): Promise<void> {
    await this.listeners.update(config.listen);
    await this.udp.update(config);
    // A stop that came while binding closed the old set only: close what this call opened too.
    if (this.stopping) this.listeners.closeAll();
    this.ctx = this.context(config, this.ctx.balancer);
    this.byListener = this.listenerContexts(this.ctx);
    this.health.update(config.routes, config.health);
  }

  /** What connections accepted under this config share: the config, its router and balancer. */
  private context(config: Config, previous?: Balancer): ConnectionContext {
    const balancer = new Balancer(config.routes, config.timeouts.backendDown, previous);
    // UDP routes are lib/udp's: a TCP connection never takes one.
    const tcp = config.routes.filter((r) => r.transport !== 'udp');
    // Decided once per config (from the config: a reload sets the logger's level after this): at info,
    // connections never build a debug line's fields.
    const level = config.log.level;
    const debug =
      level === 'debug' || level === 'trace'
        ? new ConnectionDebug(this.log, tcp, level === 'trace')
        : undefined;
    balancer.health = this.health;
    return { config, router: new Router(tcp), balancer, observer: this, debug };
  }

  private listenerContexts(ctx: ConnectionContext): Map<string, ConnectionContext> {
    const out = new Map<string, ConnectionContext>();
    for (const e of ctx.config.listen)
      out.set(e.text, { ...ctx, router: new Router(ctx.router.routes, e.text) });
    return out;
  }

  /**
   * Stops accepting and lets the connections already accepted finish, for up to timeouts.drain; then
   * closes the rest. Those still detecting or connecting go on to be relayed: their client got a
   * connection, and refusing it now would drop it as surely as a restart.
   */
  async stop(drainMs = this.ctx.config.timeouts.drain): Promise<void> {
    this.stopping = true;
    this.listeners.closeAll();
    this.health.stop();
    // Those waiting for a slot were never served: like a listen backlog when the listener closes.
    for (const c of [...this.waiting]) c.refuse('shutdown');
    // UDP flows drain alongside: no new ones, live ones idle out or close at the deadline.
    const udp = this.udp.stop(drainMs);
    if (await this.untilEmpty(drainMs)) {
      this.flushLimitLog();
      return udp;
    }
    this.log.warn(
      { live: this.live.size, drain_ms: drainMs },
      'drain timeout: closing the remaining connections',
    );
    await this.abortAll();
    await udp;
  }

  /** Closes every connection now (second signal, or the drain deadline) and waits for their reports. */
  async abortAll(): Promise<void> {
    this.stopping = true;
    this.listeners.closeAll();
    this.health.stop();
    this.udp.closeAll();
    for (const c of this.live) c.abort();
    // Destroyed sockets report 'close' a turn of the loop later: wait, so their log lines are written.
    await this.untilEmpty(ABORT_WAIT_MS);
    this.flushLimitLog();
  }

  /** True once no connection is left; false if `ms` passed first. */
  private untilEmpty(ms: number): Promise<boolean> {
    if (this.live.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (empty: boolean): void => {
        clearTimeout(timer);
        this.emptyWaiters.delete(onEmpty);
        resolve(empty);
      };
      const onEmpty = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      this.emptyWaiters.add(onEmpty);
    });
  }

  private readonly accept = (client: ClientSide, listener: string): void => {
    const source = ipBytes(client.remoteAddress);
    const ctx = this.byListener.get(listener) ?? this.ctx;
    const c = new Connection(this.nextId++, client, listener, ctx, source);
    this.live.add(c);
    const key = countedKey(c);
    const fromSource = key === undefined ? 0 : this.perSource.add(key);
    this.observer?.onAccepted?.(c);
    const limits = this.ctx.config.limits;
    if (this.stopping) c.refuse('shutdown');
    else if (fromSource > limits.maxConnectionsPerSource) c.refuse('limit');
    else if (this.live.size - this.waiting.length > limits.maxConnections) {
      if (this.waiting.length < WAIT_QUEUE) this.wait(c);
      else c.refuse('limit');
    } else c.start();
  };

  onRouted(c: Connection): void {
    this.observer?.onRouted(c);
  }

  onConnectFailure(c: Connection, f: ConnectFailure): void {
    const list = this.connectFailures.get(c);
    if (list === undefined) this.connectFailures.set(c, [f]);
    else list.push(f);
    this.observer?.onConnectFailure(c, f);
  }

  onConnected(c: Connection): void {
    if (this.connectFailures.size > 0) this.logConnectFailures(c);
    this.observer?.onConnected(c);
  }

  /**
   * One line per connection for its failed attempts, written when they end (a backend answered, or none
   * did): with 20 backends down, a line per attempt was 21 lines per connection.
   */
  private logConnectFailures(c: Connection): void {
    const list = this.connectFailures.get(c);
    if (list === undefined) return;
    this.connectFailures.delete(c);
    const first = list[0]!;
    this.log.warn(
      {
        conn: c.id,
        route: c.route?.name,
        backend: first.backend.text,
        code: first.code,
        ms: Math.round(first.ms),
        failures:
          list.length === 1
            ? undefined
            : list.map((f) => ({ backend: f.backend.text, code: f.code, ms: Math.round(f.ms) })),
      },
      'backend connect failed',
    );
  }

  /** A trusted proxy named the client: it counts against max_connections_per_source from now on. */
  onProxyHeader(c: Connection): void {
    const key = countedKey(c);
    const n = key === undefined ? 0 : this.perSource.add(key);
    this.observer?.onProxyHeader?.(c);
    if (n > this.ctx.config.limits.maxConnectionsPerSource) c.refuse('limit');
  }

  onClosed(c: Connection): void {
    this.live.delete(c);
    if (this.waiting.length > 0) this.startWaiting(c);
    if (this.connectFailures.size > 0) this.logConnectFailures(c);
    const key = countedKey(c);
    if (key !== undefined) this.perSource.remove(key);
    this.logClosed(c);
    this.observer?.onClosed(c);
    if (this.live.size === 0) for (const w of this.emptyWaiters) w();
  }

  /** Holds a connection for a slot. A client that goes away meanwhile is refused as client_closed. */
  private wait(c: Connection): void {
    c.client.hold(c);
    this.waiting.push(c);
  }

  /** A slot freed (or `closed` was a waiting one): starts the connections waiting for a slot, in order. */
  private startWaiting(closed: Connection): void {
    const i = this.waiting.indexOf(closed);
    if (i !== -1) this.waiting.splice(i, 1);
    const max = this.ctx.config.limits.maxConnections;
    while (this.waiting.length > 0 && this.live.size - this.waiting.length < max && !this.stopping) {
      const c = this.waiting.shift()!;
      c.start();
    }
  }

  private logClosed(c: Connection): void {
    if (c.reject === 'limit') {
      // A flood must not become a log flood: one line a second, with the count it stands for.
      const now = performance.now();
      if (now - this.lastLimitLog < 1000) {
        this.suppressedLimitLogs++;
        this.limitLogTimer ??= setTimeout(this.flushLimitLog, this.lastLimitLog + 1000 - now).unref();
        return;
      }
      clearTimeout(this.limitLogTimer);
      this.limitLogTimer = undefined;
      this.lastLimitLog = now;
      this.log.warn(
        { ...connectionFields(c), suppressed: this.suppressedLimitLogs },
        'connection refused: limit reached',
      );
      this.suppressedLimitLogs = 0;
      return;
    }
    // Below info the line is dropped anyway: skip building its fields for every connection.
    if (!this.log.isLevelEnabled('info')) return;
    if (c.reject === 'no_route') {
      // Say what was seen, recognised or not: the first thing to know about a client nothing routed.
      const fields = connectionFields(c);
      fields.protocol ??= 'unknown';
      this.log.info(fields, 'connection refused: no_route');
    } else if (c.reject !== undefined) this.log.info(connectionFields(c), `connection refused: ${c.reject}`);
    else this.log.info(connectionFields(c), 'connection closed');
  }

  /** Writes the count of limit refusals folded since the last line, if any. */
  private readonly flushLimitLog = (): void => {
    clearTimeout(this.limitLogTimer);
    this.limitLogTimer = undefined;
    if (this.suppressedLimitLogs === 0) return;
    this.lastLimitLog = performance.now();
    // No connection fields: this line stands for refusals already counted, none of its own.
    this.log.warn({ suppressed: this.suppressedLimitLogs }, 'connection refused: limit reached');
    this.suppressedLimitLogs = 0;
  };
}

/** Waiting connections by socket, for the listeners below (shared, not closures per connection). */
/** Connections accepted past max_connections and held unread for a slot: as many as the listen backlog. */
const WAIT_QUEUE = 511;

/** How long an abort waits for destroyed sockets to report closing: they do within a turn of the loop. */
const ABORT_WAIT_MS = 1000;
