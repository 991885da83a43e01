// The mux: owns the listeners, the config in force and the live connections; wires the stages together.
import type net from 'node:net';
import type { Config } from './config/types.js';
import { Balancer } from './connect/balance.js';
import type { ConnectFailure } from './connect/connector.js';
import { Connection, type ConnectionContext, type ConnectionObserver } from './connection.js';
import { Listeners } from './listen/listener.js';
import { connectionFields, type Logger } from './log.js';
import { ipBytes } from './net/address.js';
import { Router } from './route/router.js';

/** Optional side observers (metrics); called after the mux's own bookkeeping. */
export type MuxObserver = ConnectionObserver & {
  onAccepted?(c: Connection): void;
};

export interface MuxOptions {
  logger: Logger;
  observer?: MuxObserver;
}

export class Mux implements ConnectionObserver {
  /** Connections accepted and not yet closed, in any stage. */
  readonly live = new Set<Connection>();
  private ctx: ConnectionContext;
  private readonly listeners: Listeners;
  private readonly perSource = new Map<string, number>();
  private readonly log: Logger;
  private readonly observer: MuxObserver | undefined;
  private nextId = 1;
  private stopping = false;
  // performance.now() starts near 0 with the process: a first refusal in its first second must be logged.
  private lastLimitLog = Number.NEGATIVE_INFINITY;
  private suppressedLimitLogs = 0;
  /** Called when the last live connection closes (drain, abort). */
  private readonly emptyWaiters = new Set<() => void>();

  constructor(config: Config, options: MuxOptions) {
    this.log = options.logger;
    this.observer = options.observer;
    this.ctx = this.context(config);
    this.listeners = new Listeners(this.accept);
  }

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
  }

  /**
   * Switches to a new, already validated config: new connections use it at once, live ones keep theirs,
   * unchanged listeners stay open. If a new address cannot be bound, nothing changes and this throws.
   */
  async reload(config: Config): Promise<void> {
    await this.listeners.update(config.listen);
    // A stop that came while binding closed the old set only: close what this call opened too.
    if (this.stopping) this.listeners.closeAll();
    this.ctx = this.context(config, this.ctx.balancer);
  }

  /** What connections accepted under this config share: the config, its router and balancer. */
  private context(config: Config, previous?: Balancer): ConnectionContext {
    const balancer = new Balancer(config.routes, config.timeouts.backendDown, previous);
    return { config, router: new Router(config.routes), balancer, observer: this };
  }

  /**
   * Stops accepting and lets the connections already accepted finish, for up to timeouts.drain; then
   * closes the rest. Those still detecting or connecting go on to be relayed: their client got a
   * connection, and refusing it now would drop it as surely as a restart.
   */
  async stop(drainMs = this.ctx.config.timeouts.drain): Promise<void> {
    this.stopping = true;
    this.listeners.closeAll();
    if (await this.untilEmpty(drainMs)) return;
    this.log.warn(
      { live: this.live.size, drain_ms: drainMs },
      'drain timeout: closing the remaining connections',
    );
    await this.abortAll();
  }

  /** Closes every connection now (second signal, or the drain deadline) and waits for their reports. */
  async abortAll(): Promise<void> {
    this.stopping = true;
    this.listeners.closeAll();
    for (const c of this.live) c.abort();
    // Destroyed sockets report 'close' a turn of the loop later: wait, so their log lines are written.
    await this.untilEmpty(ABORT_WAIT_MS);
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

  private readonly accept = (socket: net.Socket, listener: string): void => {
    const source = ipBytes(socket.remoteAddress ?? '');
    const c = new Connection(this.nextId++, socket, listener, this.ctx, source);
    this.live.add(c);
    const key = countedKey(c);
    if (key !== undefined) this.perSource.set(key, (this.perSource.get(key) ?? 0) + 1);
    this.observer?.onAccepted?.(c);
    const limits = this.ctx.config.limits;
    if (this.stopping) c.refuse('shutdown');
    else if (this.live.size > limits.maxConnections) c.refuse('limit');
    else if (key !== undefined && this.perSource.get(key)! > limits.maxConnectionsPerSource)
      c.refuse('limit');
    else c.start();
  };

  onRouted(c: Connection): void {
    this.observer?.onRouted(c);
  }

  onConnectFailure(c: Connection, f: ConnectFailure): void {
    this.log.warn(
      { conn: c.id, route: c.route?.name, backend: f.backend.text, code: f.code, ms: Math.round(f.ms) },
      'backend connect failed',
    );
    this.observer?.onConnectFailure(c, f);
  }

  onConnected(c: Connection): void {
    this.observer?.onConnected(c);
  }

  /** A trusted proxy named the client: it counts against max_connections_per_source from now on. */
  onProxyHeader(c: Connection): void {
    const key = countedKey(c);
    const n = key === undefined ? 0 : (this.perSource.get(key) ?? 0) + 1;
    if (key !== undefined) this.perSource.set(key, n);
    this.observer?.onProxyHeader?.(c);
    if (n > this.ctx.config.limits.maxConnectionsPerSource) c.refuse('limit');
  }

  onClosed(c: Connection): void {
    this.live.delete(c);
    const key = countedKey(c);
    if (key !== undefined) {
      const n = this.perSource.get(key)! - 1;
      if (n === 0) this.perSource.delete(key);
      else this.perSource.set(key, n);
    }
    this.logClosed(c);
    this.observer?.onClosed(c);
    if (this.live.size === 0) for (const w of this.emptyWaiters) w();
  }

  private logClosed(c: Connection): void {
    if (c.reject === 'limit') {
      // A flood must not become a log flood: one line a second, with the count it stands for.
      const now = performance.now();
      if (now - this.lastLimitLog < 1000) {
        this.suppressedLimitLogs++;
        return;
      }
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
    if (c.reject !== undefined) this.log.info(connectionFields(c), `connection refused: ${c.reject}`);
    else this.log.info(connectionFields(c), 'connection closed');
  }
}

/** How long an abort waits for destroyed sockets to report closing: they do within a turn of the loop. */
const ABORT_WAIT_MS = 1000;

/**
 * The key a connection counts under for max_connections_per_source: the peer's address; for a trusted
 * PROXY peer (a load balancer carrying many clients), the client its header names, once read.
 */
function countedKey(c: Connection): string | undefined {
  if (c.trustedPeer && c.proxyHeader?.command !== 'proxy') return undefined;
  return sourceKey(c.source);
}

/** Limits count per IPv4 address and per IPv6 /64 (one home or VPS usually holds a whole /64). */
function sourceKey(ip: Uint8Array | undefined): string | undefined {
  if (ip === undefined) return undefined;
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
  return Buffer.from(ip.buffer, ip.byteOffset, 8).toString('hex');
}
