// One client connection's way through the stages: detect → route → connect → relay, then one report.
import type net from 'node:net';
import type { Config, Endpoint, RouteConfig } from './config/types.js';
import type { Balancer } from './connect/balance.js';
import { type ConnectFailure, connectBackend } from './connect/connector.js';
import { detect } from './detect/detect.js';
import { PeekBuffer } from './detect/peek.js';
import type { Detection, Protocol } from './detect/types.js';
import { inboundStep, isTrustedPeer } from './proxy/inbound.js';
import { unmapV4 } from './proxy/ip.js';
import { outboundHeader } from './proxy/outbound.js';
import type { ProxyHeader } from './proxy/parse.js';
import type { EndReason, RejectReason } from './reasons.js';
import { Relay, type RelayOwner } from './relay/relay.js';
import type { Router } from './route/router.js';

/** What a connection needs from the mux: the config and router in force when it was accepted. */
export interface ConnectionContext {
  readonly config: Config;
  readonly router: Router;
  readonly balancer: Balancer;
  readonly observer: ConnectionObserver;
}

/** Side concerns (logs, metrics, limits) hear about each stage here; the stages don't know them. */
export interface ConnectionObserver {
  /** A route was chosen; the backend connect starts. */
  onRouted(c: Connection): void;
  onConnectFailure(c: Connection, failure: ConnectFailure): void;
  onConnected(c: Connection): void;
  /** A trusted peer's PROXY header was read: c.proxyHeader is set, c.clientAddress and c.source may have changed. */
  onProxyHeader?(c: Connection): void;
  /** The connection is over, whichever way: c.reject or c.end says how. Called exactly once. */
  onClosed(c: Connection): void;
}

enum Stage {
  Detecting,
  Connecting,
  Relaying,
  Closed,
}

/** Where the PROXY protocol check stands: a trusted peer's header awaited, a forged one looked for, or done. */
enum Inbound {
  Expect,
  Forbid,
  Done,
}

/** The accepted socket points back to its connection, for the shared listeners. */
const CONNECTION = Symbol('sni-mux.connection');
type ClientSocket = net.Socket & { [CONNECTION]?: Connection };

export class Connection implements RelayOwner {
  readonly id: number;
  readonly acceptedAt = performance.now();
  /** Client address as the routes see it (a trusted PROXY header may replace the peer's). */
  clientAddress: string;
  clientPort: number;
  /** Client address as bytes, for source CIDRs; undefined if unparsable. */
  source: Uint8Array | undefined;
  /** The peer is in accept_proxy.from: it must start with a PROXY header, which names the client. */
  readonly trustedPeer: boolean;
  /** The header a trusted peer sent, once read. */
  proxyHeader: ProxyHeader | undefined;
  /** The trusted peer's own address and port, kept when its PROXY header replaced them as the client's. */
  proxyPeer: string | undefined;
  proxyPeerPort: number | undefined;

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
  private inbound: Inbound;
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
    this.trustedPeer = isTrustedPeer(ctx.config.acceptProxy?.from, source);
    this.inbound = this.trustedPeer ? Inbound.Expect : Inbound.Forbid;
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
    (c as ClientSocket)[CONNECTION] = this;
    c.on('data', onData);
    c.on('end', onEnd);
    c.on('error', onError);
    c.on('close', onClose);
    this.detectTimer = setTimeout(onTimer, this.ctx.config.timeouts.detect, this);
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

  /** Called by the socket listeners below the class, as are the next four. */
  onDetectData(chunk: Buffer): void {
    this.peek.append(chunk);
    if (this.inbound !== Inbound.Done && !this.readProxyHeader()) return;
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
  }

  onDetectEnd(): void {
    this.clientEnded = true;
    if (this.stage !== Stage.Detecting) return;
    // FIN before a decision: what was sent is all there is. Undecided bytes go to a catch-all.
    if (this.peek.length === 0) this.refuse('client_closed');
    else if (this.inbound === Inbound.Expect) this.refuseProxy('PROXY header cut short');
    else this.detected(null);
  }

  onDetectTimeout(): void {
    this.detectTimer = undefined;
    if (this.stage !== Stage.Detecting) return;
    if (this.inbound === Inbound.Expect) {
      this.refuseProxy(this.peek.length > 0 ? 'PROXY header incomplete' : 'no PROXY header in time');
      return;
    }
    if (this.peek.length > 0) {
      this.refuse('detect_timeout');
      return;
    }
    const route = this.ctx.router.selectOnTimeout(this.source);
    if (route === undefined) this.refuse('no_data');
    else this.routeTo(route);
  }

  onEarlyError(err: NodeJS.ErrnoException): void {
    this.code = err.code;
    this.refuse('client_closed');
  }

  onEarlyClose(): void {
    this.refuse('client_closed');
  }

  /**
   * The PROXY step, before detection (a ClientHello parser would call "PROXY " bytes no-match): strips a
   * trusted peer's header and takes the client address from it, refuses a forged one. True when
   * detection can run on what is left in the peek buffer.
   */
  private readProxyHeader(): boolean {
    const step = inboundStep(this.peek.view(), this.inbound === Inbound.Expect);
    switch (step.kind) {
      case 'none':
        this.inbound = Inbound.Done;
        return true;
      case 'wait':
        if (this.peek.length >= this.ctx.config.limits.maxPeekBytes) {
          this.refuseProxy('PROXY header longer than limits.max_peek_bytes');
        }
        return false;
      case 'refuse':
        this.refuseProxy(step.reason);
        return false;
      case 'header': {
        this.inbound = Inbound.Done;
        const h = step.header;
        this.proxyHeader = h;
        if (h.command === 'proxy') {
          this.proxyPeer = this.clientAddress;
          this.proxyPeerPort = this.clientPort;
          this.clientAddress = h.source.address;
          this.clientPort = h.source.port;
          this.source = unmapV4(h.source.ip);
        }
        this.ctx.observer.onProxyHeader?.(this);
        // Header bytes never reach a backend: keep only what follows them.
        const rest = this.peek.take().subarray(step.length);
        if (this.stage === Stage.Closed) return false;
        if (rest.length > 0) this.peek.append(rest);
        return rest.length > 0;
      }
    }
  }

  private refuseProxy(reason: string): void {
    this.code = reason;
    this.refuse('proxy_header');
  }

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
    const now = performance.now();
    this.detectMs = now - this.acceptedAt;
    clearTimeout(this.detectTimer);
    this.detectTimer = undefined;
    const c = this.client;
    c.pause();
    c.removeListener('data', onData);
    // onDetectEnd stays until the relay starts: a paused socket with nothing buffered still emits 'end'.
    this.route = route;
    this.stage = Stage.Connecting;
    this.ctx.observer.onRouted(this);
    const backends = this.ctx.balancer.order(route, now);
    this.cancelConnect = connectBackend(backends, this.ctx.config.timeouts.connect, this);
  }

  onConnectFailure(failure: ConnectFailure): void {
    this.ctx.balancer.failed(failure.backend, performance.now());
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
    this.ctx.balancer.connected(endpoint);
    backend.setKeepAlive(true, KEEPALIVE_MS);
    const c = this.client;
    c.removeListener('end', onEnd);
    c.removeListener('error', onError);
    c.removeListener('close', onClose);
    this.stage = Stage.Relaying;
    this.relay = new Relay(c, backend, this);
    this.ctx.observer.onConnected(this);
    const pp = this.route!.proxyProtocol;
    // Corked, the header and the peeked bytes leave in one segment; the header is not counted as client bytes.
    if (pp !== undefined) {
      backend.cork();
      backend.write(outboundHeader(pp, this));
    }
    this.relay.start(this.peek.take(), this.clientEnded, this.route!.idle ?? this.ctx.config.timeouts.idle);
    if (pp !== undefined) backend.uncork();
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

// Listeners shared by every connection rather than five closures each, which would live as long as the
// connection (docs/performance.md): `this` is the client socket, which points back to its connection.

function onData(this: ClientSocket, chunk: Buffer): void {
  this[CONNECTION]!.onDetectData(chunk);
}

function onEnd(this: ClientSocket): void {
  this[CONNECTION]!.onDetectEnd();
}

function onError(this: ClientSocket, err: NodeJS.ErrnoException): void {
  this[CONNECTION]!.onEarlyError(err);
}

function onClose(this: ClientSocket): void {
  this[CONNECTION]!.onEarlyClose();
}

function onTimer(c: Connection): void {
  c.onDetectTimeout();
}

/** Probe dead peers after a minute of silence, so a vanished client doesn't hold a backend. */
const KEEPALIVE_MS = 60_000;
