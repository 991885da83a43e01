// One client connection's way through the stages: detect → route → connect → relay, then one report.
import type net from 'node:net';
import type { Config, Endpoint, RouteConfig } from './config/types.js';
import { type ConnectFailure, connectBackend } from './connect/connector.js';
import { detect } from './detect/detect.js';
import { PeekBuffer } from './detect/peek.js';
import type { Detection, Protocol } from './detect/types.js';
import type { EndReason, RejectReason } from './reasons.js';
import { Relay, type RelayOwner } from './relay/relay.js';
import type { Router } from './route/router.js';

/** What a connection needs from the mux: the config and router in force when it was accepted. */
export interface ConnectionContext {
  readonly config: Config;
  readonly router: Router;
  readonly observer: ConnectionObserver;
}

/** Side concerns (logs, metrics, limits) hear about each stage here; the stages don't know them. */
export interface ConnectionObserver {
  /** A route was chosen; the backend connect starts. */
  onRouted(c: Connection): void;
  onConnectFailure(c: Connection, failure: ConnectFailure): void;
  onConnected(c: Connection): void;
  /** The connection is over, whichever way: c.reject or c.end says how. Called exactly once. */
  onClosed(c: Connection): void;
}

enum Stage {
  Detecting,
  Connecting,
  Relaying,
  Closed,
}

export class Connection implements RelayOwner {
  readonly id: number;
  readonly acceptedAt = performance.now();
  /** Client address as the routes see it (a trusted PROXY header may replace the peer's). */
  clientAddress: string;
  clientPort: number;
  /** Client address as bytes, for source CIDRs; undefined if unparsable. */
  source: Uint8Array | undefined;

  protocol: Protocol | undefined;
  sni: string | undefined;
  alpn: readonly string[] | undefined;
  host: string | undefined;
  route: RouteConfig | undefined;
  backend: Endpoint | undefined;
  detectMs: number | undefined;
  connectMs: number | undefined;
  /** Set when the connection was refused before relaying. */
  reject: RejectReason | undefined;
  /** Set when a relayed connection ended. */
  end: EndReason | undefined;
  code: string | undefined;
  relay: Relay | undefined;
  closedAt: number | undefined;

  private stage = Stage.Detecting;
  private readonly peek = new PeekBuffer();
  private clientEnded = false;
  private detectTimer: NodeJS.Timeout | undefined;
  private cancelConnect: (() => void) | undefined;

  constructor(
    id: number,
    readonly client: net.Socket,
    readonly listener: string,
    readonly ctx: ConnectionContext,
    source: Uint8Array | undefined,
  ) {
    this.id = id;
    this.clientAddress = client.remoteAddress ?? '';
    this.clientPort = client.remotePort ?? 0;
    this.source = source;
  }

  get bytesUp(): number {
    return this.relay?.bytesUp ?? 0;
  }

  get bytesDown(): number {
    return this.relay?.bytesDown ?? 0;
  }

  /** Starts detection on a freshly accepted socket. */
  start(): void {
    const c = this.client;
    c.setNoDelay(true);
    c.setKeepAlive(true, KEEPALIVE_MS);
    c.on('data', this.onDetectData);
    c.on('end', this.onDetectEnd);
    c.on('error', this.onEarlyError);
    c.on('close', this.onEarlyClose);
    this.detectTimer = setTimeout(this.onDetectTimeout, this.ctx.config.timeouts.detect);
  }

  /** Refuses the connection before it is relayed. */
  refuse(reason: RejectReason): void {
    if (this.stage === Stage.Closed) return;
    this.reject = reason;
    this.finish();
    this.client.destroy();
  }

  /** Mux shutdown: closes a relayed connection, refuses one still detecting or connecting. */
  abort(): void {
    if (this.stage === Stage.Relaying) this.relay!.abort('shutdown');
    else this.refuse('shutdown');
  }

  private readonly onDetectData = (chunk: Buffer): void => {
    this.peek.append(chunk);
    const result = detect(this.peek.view());
    switch (result.kind) {
      case 'match':
        this.detected(result.detection);
        return;
      case 'no-match':
        this.detected(null);
        return;
      case 'invalid':
        this.protocol = result.protocol;
        this.code = result.reason;
        this.refuse(result.protocol === 'tls' ? 'bad_hello' : 'malformed');
        return;
      case 'need-more':
        if (this.peek.length >= this.ctx.config.limits.maxPeekBytes) this.refuse('peek_limit');
        return;
    }
  };

  private readonly onDetectEnd = (): void => {
    this.clientEnded = true;
    if (this.stage !== Stage.Detecting) return;
    // FIN before a decision: what was sent is all there is. Undecided bytes go to a catch-all.
    if (this.peek.length === 0) this.refuse('client_closed');
    else this.detected(null);
  };

  private readonly onDetectTimeout = (): void => {
    this.detectTimer = undefined;
    if (this.stage !== Stage.Detecting) return;
    if (this.peek.length > 0) {
      this.refuse('detect_timeout');
      return;
    }
    const route = this.ctx.router.selectOnTimeout(this.source);
    if (route === undefined) this.refuse('no_data');
    else this.routeTo(route);
  };

  private readonly onEarlyError = (err: NodeJS.ErrnoException): void => {
    this.code = err.code;
    this.refuse('client_closed');
  };

  private readonly onEarlyClose = (): void => {
    this.refuse('client_closed');
  };

  private detected(d: Detection | null): void {
    if (d !== null) {
      this.protocol = d.protocol;
      this.sni = d.sni;
      this.alpn = d.alpn;
      this.host = d.host;
    }
    const route = this.ctx.router.select(d, this.source);
    if (route === undefined) this.refuse('no_route');
    else this.routeTo(route);
  }

  private routeTo(route: RouteConfig): void {
    this.detectMs = performance.now() - this.acceptedAt;
    clearTimeout(this.detectTimer);
    this.detectTimer = undefined;
    const c = this.client;
    c.pause();
    c.removeListener('data', this.onDetectData);
    // onDetectEnd stays until the relay starts: a paused socket with nothing buffered still emits 'end'.
    this.route = route;
    this.stage = Stage.Connecting;
    this.ctx.observer.onRouted(this);
    this.cancelConnect = connectBackend(route.backends, this.ctx.config.timeouts.connect, this);
  }

  onConnectFailure(failure: ConnectFailure): void {
    this.ctx.observer.onConnectFailure(this, failure);
  }

  onAllFailed(): void {
    this.cancelConnect = undefined;
    this.refuse('backend_unavailable');
  }

  onConnected(backend: net.Socket, endpoint: Endpoint, ms: number): void {
    this.cancelConnect = undefined;
    this.backend = endpoint;
    this.connectMs = ms;
    backend.setKeepAlive(true, KEEPALIVE_MS);
    const c = this.client;
    c.removeListener('end', this.onDetectEnd);
    c.removeListener('error', this.onEarlyError);
    c.removeListener('close', this.onEarlyClose);
    this.stage = Stage.Relaying;
    this.relay = new Relay(c, backend, this);
    this.ctx.observer.onConnected(this);
    this.relay.start(this.peek.take(), this.clientEnded, this.ctx.config.timeouts.idle);
  }

  onRelayEnd(relay: Relay): void {
    this.end = relay.reason;
    this.code = relay.code;
    this.finish();
  }

  private finish(): void {
    if (this.stage === Stage.Closed) return;
    this.stage = Stage.Closed;
    this.closedAt = performance.now();
    clearTimeout(this.detectTimer);
    this.cancelConnect?.();
    this.cancelConnect = undefined;
    this.ctx.observer.onClosed(this);
  }
}

/** Probe dead peers after a minute of silence, so a vanished client doesn't hold a backend. */
const KEEPALIVE_MS = 60_000;
