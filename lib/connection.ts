// One client connection's way through the stages: detect → route → connect → relay, then one report.
import type { Config, Endpoint, RouteConfig } from './config/types.js';
import type { ConnectFailure } from './connect/attempts.js';
import type { Balancer } from './connect/balance.js';
import { expandBackends } from './connect/template.js';
import type { ClientSide, DetectOwner, RelayOwner, RelayView } from './dataplane/types.js';
import type { ConnectionDebug } from './debug.js';
import { UNRECOGNIZED_NAME_ALERT } from './detect/alert.js';
import { detect } from './detect/detect.js';
import { PeekBuffer } from './detect/peek.js';
import type { Detection, Protocol } from './detect/types.js';
import { unmapV4 } from './net/ip.js';
import { timeoutAfterIo } from './net/timeout.js';
import { inboundStep, isTrustedPeer } from './proxy/inbound.js';
import { outboundHeader } from './proxy/outbound.js';
import type { ProxyHeader } from './proxy/parse.js';
import type { EndReason, RejectReason } from './reasons.js';
import type { Router } from './route/router.js';

/** What a connection needs from the mux: the config and router in force when it was accepted. */
export interface ConnectionContext {
  readonly config: Config;
  readonly router: Router;
  readonly balancer: Balancer;
  readonly observer: ConnectionObserver;
  /** Present only at log level debug or trace; called as `ctx.debug?.…`, so it costs nothing otherwise. */
  readonly debug?: ConnectionDebug | undefined;
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

const STAGE_NAMES = ['detecting', 'connecting', 'relaying', 'closed'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/**
 * A connection as observers outside the data path see it (the admin status page, /connections): plain
 * values copied at one instant, never the live object. Field names are the connection log line's.
 */
export interface ConnectionSnapshot {
  readonly id: number;
  readonly client: string;
  readonly client_port: number;
  readonly proxy_peer: string | undefined;
  readonly listener: string;
  readonly protocol: Protocol | undefined;
  readonly sni: string | undefined;
  readonly alpn: readonly string[] | undefined;
  readonly host: string | undefined;
  readonly route: string | undefined;
  readonly backend: string | undefined;
  readonly bytes_client_to_backend: number;
  readonly bytes_backend_to_client: number;
  readonly age_ms: number;
  /** Silence on the relay, to the idle sweep's resolution; undefined before relaying or without an idle timeout. */
  readonly idle_ms: number | undefined;
  readonly stage: StageName;
}

/** Where the PROXY protocol check stands: a trusted peer's header awaited, a forged one looked for, or done. */
enum Inbound {
  Expect,
  Forbid,
  Done,
}

export class Connection implements DetectOwner, RelayOwner {
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
  /** The errno code behind a refusal or an end, when there was one: ECONNRESET, ETIMEDOUT, EMFILE… */
  code: string | undefined;
  /** What was wrong, in words, when the reason alone does not say: a malformed hello or PROXY header, a bad backend name. */
  detail: string | undefined;
  relay: RelayView | undefined;
  closedAt: number | undefined;

  private stage = Stage.Detecting;
  private inbound: Inbound;
  private readonly peek = new PeekBuffer();
  private clientEnded = false;
  private detectTimer: NodeJS.Timeout | undefined;
  private cancelConnect: (() => void) | undefined;

  constructor(
    id: number,
    readonly client: ClientSide,
    readonly listener: string,
    readonly ctx: ConnectionContext,
    source: Uint8Array | undefined,
  ) {
    this.id = id;
    this.clientAddress = client.remoteAddress;
    this.clientPort = client.remotePort;
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

  /** A read-only copy of what this connection is now, for observers; `now` is performance.now(). */
  snapshot(now: number): ConnectionSnapshot {
    return Object.freeze({
      id: this.id,
      client: this.clientAddress,
      client_port: this.clientPort,
      proxy_peer: this.proxyPeer,
      listener: this.listener,
      protocol: this.protocol,
      sni: this.sni,
      alpn: this.alpn === undefined ? undefined : Object.freeze([...this.alpn]),
      host: this.host,
      route: this.route?.name,
      backend: this.backend?.text,
      bytes_client_to_backend: this.bytesUp,
      bytes_backend_to_client: this.bytesDown,
      age_ms: Math.round(now - this.acceptedAt),
      idle_ms: this.stage === Stage.Relaying ? this.relay!.idleFor(now) : undefined,
      stage: STAGE_NAMES[this.stage]!,
    });
  }

  /** Starts detection on a freshly accepted socket. */
  start(): void {
    this.client.startDetect(this);
    this.detectTimer = timeoutAfterIo(onTimer, this.ctx.config.timeouts.detect, this, undefined);
    this.ctx.debug?.socket(this, 'accepted');
  }

  /** Refuses the connection before it is relayed; `reply` is written to the client before closing. */
  refuse(reason: RejectReason, reply?: Readonly<Uint8Array>): void {
    if (this.stage === Stage.Closed) return;
    this.reject = reason;
    this.finish();
    this.client.destroy(reply);
    // Logged here, the one place a refused client's socket closes, whichever side closed it.
    this.ctx.debug?.socket(this, 'close');
  }

  /** Mux shutdown: closes a relayed connection, refuses one still detecting or connecting. */
  abort(): void {
    if (this.stage === Stage.Relaying) this.relay!.abort('shutdown');
    else this.refuse('shutdown');
  }

  /** Called by the data plane while detecting, as are the next four. */
  onDetectData(chunk: Uint8Array): void {
    this.ctx.debug?.socket(this, 'data', chunk.length);
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
        this.ctx.debug?.detect(this, this.peek.view(), `invalid ${result.protocol}`);
        this.protocol = result.protocol;
        this.detail = result.reason;
        this.refuse(result.protocol === 'tls' ? 'bad_hello' : 'malformed');
        return;
      case 'need-more':
        if (this.peek.length >= this.ctx.config.limits.maxPeekBytes) {
          this.ctx.debug?.detect(this, this.peek.view(), 'undecided at limits.max_peek_bytes');
          this.refuse('peek_limit');
        }
        return;
    }
  }

  onDetectEnd(): void {
    this.ctx.debug?.socket(this, 'end');
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
      this.ctx.debug?.detect(this, this.peek.view(), 'undecided at timeouts.detect');
      this.refuse('detect_timeout');
      return;
    }
    const route = this.ctx.router.selectOnTimeout(this.source);
    this.ctx.debug?.silent(this, route);
    if (route === undefined) this.refuse('no_data');
    else this.routeTo(route);
  }

  onEarlyError(err: { code?: string | undefined }): void {
    this.ctx.debug?.socket(this, 'error', err.code);
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
    this.detail = reason;
    this.refuse('proxy_header');
  }

  private detected(d: Detection | null): void {
    this.ctx.debug?.detect(this, this.peek.view(), d === null ? 'no probe matched' : d.protocol);
    if (d !== null) {
      this.protocol = d.protocol;
      this.sni = d.sni;
      this.alpn = d.alpn;
      this.host = d.host;
    }
    const route = this.ctx.router.select(d, this.source);
    this.ctx.debug?.route(this, d, route);
    // A TLS client gets a name error it can show (the reason counted stays no_route).
    if (route === undefined)
      this.refuse('no_route', d?.protocol === 'tls' ? UNRECOGNIZED_NAME_ALERT : undefined);
    else this.routeTo(route);
  }

  private routeTo(route: RouteConfig): void {
    const now = performance.now();
    this.detectMs = now - this.acceptedAt;
    clearTimeout(this.detectTimer);
    this.detectTimer = undefined;
    this.route = route;
    this.stage = Stage.Connecting;
    this.ctx.observer.onRouted(this);
    let list = route.backends;
    if (route.templated) {
      const expanded = expandBackends(route, this.sni, this.host);
      if (typeof expanded === 'string') {
        this.detail = expanded;
        this.refuse('bad_backend');
        return;
      }
      list = expanded;
    }
    const backends = this.ctx.balancer.order(route, now, list);
    this.ctx.debug?.connecting(this, backends);
    this.cancelConnect = this.client.connect(backends, this.ctx.config.timeouts.connect, this);
  }

  onConnectFailure(failure: ConnectFailure): void {
    // Out of descriptors here, not there: the backend is not down, and the next one would fail alike.
    if (failure.code === 'EMFILE' || failure.code === 'ENFILE') {
      this.code = failure.code;
      this.refuse('fd_limit');
      return;
    }
    this.ctx.balancer.failed(failure.backend, performance.now());
    this.ctx.observer.onConnectFailure(this, failure);
  }

  onAllFailed(): void {
    this.cancelConnect = undefined;
    this.refuse('backend_unavailable');
  }

  onConnected(endpoint: Endpoint, ms: number): void {
    this.cancelConnect = undefined;
    this.backend = endpoint;
    this.connectMs = ms;
    this.ctx.debug?.connected(this, endpoint, ms);
    this.ctx.balancer.connected(endpoint);
    this.stage = Stage.Relaying;
    const pp = this.route!.proxyProtocol;
    const header = pp === undefined ? undefined : outboundHeader(pp, this);
    const idle = this.route!.idle ?? this.ctx.config.timeouts.idle;
    this.ctx.observer.onConnected(this);
    // A relay can end inside relay() (the native plane's head write failed): onRelayEnd sets it then.
    const relay = this.client.relay(header, this.peek.take(), this.clientEnded, idle, this);
    this.relay ??= relay;
  }

  onRelayEnd(relay: RelayView): void {
    this.relay = relay;
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

function onTimer(c: Connection): void {
  c.onDetectTimeout();
}
