// The UDP side of the mux: binds listen_udp, keeps the flow table, classifies new flows and relays datagrams.

import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { Config, Endpoint, RouteConfig } from '../config/types.js';
import { detectDatagrams } from '../detect/datagram.js';
import type { Detection } from '../detect/types.js';
import type { Logger } from '../log.js';
import { ipBytes, sourceKey } from '../net/ip.js';
import { Router } from '../route/router.js';
import {
  Flow,
  type FlowEnd,
  FlowState,
  MAX_QUEUED_BYTES,
  MAX_QUEUED_DATAGRAMS,
  type UdpRejectReason,
} from './flow.js';

/** Metrics hear about flows here; UdpFlows knows no metrics library. */
export interface FlowObserver {
  /** A flow was routed and its backend socket is ready. */
  onFlowRouted(f: Flow): void;
  /** A routed flow ended (f.end says why). */
  onFlowClosed(f: Flow): void;
  /** `datagrams` were dropped for `reason` (a refused new flow, or an undecided flow's held datagrams). */
  onRejected(reason: UdpRejectReason, datagrams: number): void;
  /** Flows are read at scrape time for their datagram and byte counts. */
  watchFlows?(flows: ReadonlyMap<string, Flow>): void;
}

const NO_DATAGRAMS: readonly Buffer[] = [];

export class UdpFlows {
  /** Every flow held: detecting or relaying, keyed by listener, client address and port. */
  readonly flows = new Map<string, Flow>();
  private readonly sockets = new Map<string, dgram.Socket>();
  private readonly perSource = new Map<string, number>();
  private readonly roundRobin = new Map<string, number>();
  private config: Config;
  /** One router per listen_udp text: a route's `listen` scopes it to some of them. */
  private routers: Map<string, Router>;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweepMs = 0;
  private stopping = false;
  private nextId = 1;
  private readonly emptyWaiters = new Set<() => void>();
  // A flood must not become a log flood: one refusal line a second per reason, with the count it stands for.
  private readonly rejectLog = new Map<UdpRejectReason, { last: number; suppressed: number }>();

  constructor(
    config: Config,
    private readonly log: Logger,
    private readonly observer?: FlowObserver,
  ) {
    this.config = config;
    this.routers = udpRouters(config);
    observer?.watchFlows?.(this.flows);
  }

  /** Bound UDP addresses by config text. */
  addresses(): Map<string, AddressInfo> {
    const out = new Map<string, AddressInfo>();
    for (const [text, s] of this.sockets) out.set(text, s.address());
    return out;
  }

  /**
   * Makes the bound set equal to config.listenUdp and routes new flows by the new config. Live flows
   * keep their route and backend socket; those on an address no longer listed end. Throws (binding
   * nothing new) if an address cannot be bound.
   */
  async update(config: Config): Promise<void> {
    const keep = new Set(config.listenUdp.map((e) => e.text));
    const opened: string[] = [];
    try {
      for (const e of config.listenUdp) {
        if (this.sockets.has(e.text)) continue;
        this.sockets.set(e.text, await this.bind(e));
        opened.push(e.text);
      }
    } catch (err) {
      for (const text of opened) this.closeSocket(text);
      throw err;
    }
    for (const text of [...this.sockets.keys()]) if (!keep.has(text)) this.closeSocket(text);
    this.config = config;
    this.routers = udpRouters(config);
    this.startSweep();
  }

  /** No new flows; live ones go on until they idle out, or `drainMs` passes, then everything closes. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    if (this.flows.size > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.emptyWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, drainMs);
        this.emptyWaiters.add(done);
      });
    }
    this.closeAll();
  }

  /** Ends every flow and closes every socket now. */
  closeAll(): void {
    this.stopping = true;
    for (const f of [...this.flows.values()]) this.finish(f, 'shutdown');
    for (const text of [...this.sockets.keys()]) this.closeSocket(text);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  private bind(e: Endpoint): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const v6 = net.isIPv6(e.host);
      // ipv6Only so "[::]:443" and "0.0.0.0:443" can both be listed, as for TCP.
      const s = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
      const onError = (err: NodeJS.ErrnoException): void => {
        s.close();
        reject(new Error(`cannot listen on udp ${e.text}: ${err.code ?? err.message}`, { cause: err }));
      };
      s.once('error', onError);
      s.bind({ address: e.host, port: e.port }, () => {
        s.removeListener('error', onError);
        s.on('error', (err: NodeJS.ErrnoException) => {
          // A send to a vanished client (EHOSTUNREACH…) must not kill the listener or the process.
          this.log.debug({ listener: e.text, code: err.code }, 'udp listen socket error');
        });
        s.on('message', (msg, rinfo) => this.onDatagram(s, e.text, msg, rinfo));
        resolve(s);
      });
    });
  }

  private closeSocket(text: string): void {
    const s = this.sockets.get(text);
    this.sockets.delete(text);
    if (s === undefined) return;
    for (const f of [...this.flows.values()]) if (f.socket === s) this.finish(f, 'shutdown');
    s.close();
  }

  private onDatagram(socket: dgram.Socket, listener: string, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${listener}|${rinfo.address}|${rinfo.port}`;
    const f = this.flows.get(key);
    if (f !== undefined) {
      if (f.state === FlowState.Relaying) {
        f.active = true;
        f.datagramsUp++;
        f.bytesUp += msg.length;
        f.backendSocket!.send(msg);
      } else this.hold(f, msg);
      return;
    }
    this.newFlow(socket, listener, key, msg, rinfo);
  }

  private newFlow(
    socket: dgram.Socket,
    listener: string,
    key: string,
    msg: Buffer,
    rinfo: dgram.RemoteInfo,
  ): void {
    const limits = this.config.limits;
    if (this.stopping) {
      this.refuse('shutdown', 1, rinfo);
      return;
    }
    if (this.flows.size >= limits.maxUdpFlows) {
      this.refuse('flow_limit', 1, rinfo);
      return;
    }
    const source = ipBytes(rinfo.address);
    const sk = sourceKey(source);
    if (sk !== undefined && (this.perSource.get(sk) ?? 0) >= limits.maxConnectionsPerSource) {
      this.refuse('flow_limit', 1, rinfo);
      return;
    }
    // Decide before holding anything: junk and unroutable datagrams cost no flow-table slot.
    const first = [msg];
    const r = detectDatagrams(first);
    let route: RouteConfig | undefined;
    if (r.kind === 'invalid') {
      this.refuse('invalid', 1, rinfo);
      return;
    }
    if (r.kind !== 'need-more') {
      route = this.routers.get(listener)?.select(r.kind === 'match' ? r.detection : null, source);
      if (route === undefined) {
        this.refuse('no_route', 1, rinfo);
        return;
      }
    }
    const f = new Flow(
      this.nextId++,
      key,
      listener,
      socket,
      rinfo.address,
      rinfo.port,
      source,
      this.config.timeouts.udpIdle,
    );
    this.flows.set(key, f);
    if (sk !== undefined) this.perSource.set(sk, (this.perSource.get(sk) ?? 0) + 1);
    f.queue = first;
    f.queuedBytes = msg.length;
    if (route !== undefined) this.connect(f, route, r.kind === 'match' ? r.detection : undefined);
  }

  /** A datagram of a flow not yet relaying: held in order, and the flow decided again if still undecided. */
  private hold(f: Flow, msg: Buffer): void {
    if (f.queue.length >= MAX_QUEUED_DATAGRAMS || f.queuedBytes + msg.length > MAX_QUEUED_BYTES) {
      f.queue.push(msg);
      this.reject(f, 'undecided');
      return;
    }
    f.queue.push(msg);
    f.queuedBytes += msg.length;
    if (f.route !== undefined) return; // decided, its backend socket still connecting
    const r = detectDatagrams(f.queue);
    if (r.kind === 'need-more') return;
    if (r.kind === 'invalid') {
      this.reject(f, 'invalid');
      return;
    }
    const route = this.routers.get(f.listener)?.select(r.kind === 'match' ? r.detection : null, f.source);
    if (route === undefined) {
      this.reject(f, 'no_route');
      return;
    }
    this.connect(f, route, r.kind === 'match' ? r.detection : undefined);
  }

  private connect(f: Flow, route: RouteConfig, d: Detection | undefined): void {
    f.detectMs = performance.now() - f.startedAt;
    f.route = route;
    if (d !== undefined) {
      f.protocol = d.protocol;
      f.sni = d.sni;
      f.alpn = d.alpn;
    }
    const backend = this.pick(route);
    f.backend = backend;
    const s = dgram.createSocket(net.isIPv6(backend.host) ? 'udp6' : 'udp4');
    f.backendSocket = s;
    s.on('error', (err: NodeJS.ErrnoException) => this.finish(f, 'backend_error', err.code));
    s.on('message', (msg) => {
      f.active = true;
      f.datagramsDown++;
      f.bytesDown += msg.length;
      f.socket.send(msg, f.clientPort, f.clientAddress);
    });
    // A connected socket: the kernel drops datagrams from anyone but the backend, and its replies
    // are told apart from other flows' by the socket they arrive on.
    s.connect(backend.port, backend.host, () => {
      if (f.state === FlowState.Closed) return;
      f.state = FlowState.Relaying;
      const held = f.queue;
      f.queue = NO_DATAGRAMS as Buffer[];
      f.queuedBytes = 0;
      for (const m of held) {
        f.datagramsUp++;
        f.bytesUp += m.length;
        s.send(m);
      }
      this.observer?.onFlowRouted(f);
    });
  }

  /** The route's backend for a new flow: the first, or each in turn. */
  private pick(route: RouteConfig): Endpoint {
    if (route.balance !== 'roundrobin' || route.backends.length === 1) return route.backends[0]!;
    const n = this.roundRobin.get(route.name) ?? 0;
    this.roundRobin.set(route.name, n + 1);
    return route.backends[n % route.backends.length]!;
  }

  /** An undecided flow is dropped with its held datagrams. */
  private reject(f: Flow, reason: UdpRejectReason): void {
    f.reject = reason;
    const n = f.queue.length;
    this.remove(f);
    this.refuse(reason, n, { address: f.clientAddress, port: f.clientPort }, f.sni);
  }

  private refuse(
    reason: UdpRejectReason,
    datagrams: number,
    client: { address: string; port: number },
    sni?: string,
  ): void {
    this.observer?.onRejected(reason, datagrams);
    const now = performance.now();
    let l = this.rejectLog.get(reason);
    if (l === undefined) {
      l = { last: Number.NEGATIVE_INFINITY, suppressed: 0 };
      this.rejectLog.set(reason, l);
    }
    if (now - l.last < 1000) {
      l.suppressed++;
      return;
    }
    l.last = now;
    this.log.warn(
      {
        transport: 'udp',
        client: client.address,
        client_port: client.port,
        sni,
        reject: reason,
        datagrams,
        suppressed: l.suppressed,
      },
      `udp datagrams dropped: ${reason}`,
    );
    l.suppressed = 0;
  }

  /** Ends a flow whatever its state: closes its backend socket and writes its one log line. */
  private finish(f: Flow, end: FlowEnd, code?: string): void {
    if (f.state === FlowState.Closed) return;
    if (f.route === undefined) {
      this.reject(f, end === 'shutdown' ? 'shutdown' : 'undecided');
      return;
    }
    const routed = f.state === FlowState.Relaying;
    f.end = end;
    if (code !== undefined) f.code = code;
    this.remove(f);
    if (this.log.isLevelEnabled('info')) this.log.info(flowFields(f), 'udp flow closed');
    if (routed) this.observer?.onFlowClosed(f);
  }

  private remove(f: Flow): void {
    f.state = FlowState.Closed;
    f.closedAt = performance.now();
    f.queue = NO_DATAGRAMS as Buffer[];
    if (f.backendSocket !== undefined) {
      f.backendSocket.removeAllListeners('message');
      f.backendSocket.on('error', () => {});
      f.backendSocket.close();
    }
    if (this.flows.get(f.key) === f) this.flows.delete(f.key);
    const sk = sourceKey(f.source);
    if (sk !== undefined) {
      const n = (this.perSource.get(sk) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(sk);
      else this.perSource.set(sk, n);
    }
    if (this.flows.size === 0) for (const w of [...this.emptyWaiters]) w();
  }

  /** One timer for every flow: undecided ones past timeouts.detect, relaying ones idle past udp_idle. */
  private startSweep(): void {
    const ms = Math.max(
      10,
      Math.min(1000, this.config.timeouts.udpIdle / 10, this.config.timeouts.detect / 10),
    );
    if (this.sweepTimer !== undefined && ms === this.sweepMs) return;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepMs = ms;
    this.sweepTimer = setInterval(() => this.sweep(), ms);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = performance.now();
    const detectMs = this.config.timeouts.detect;
    for (const f of this.flows.values()) {
      if (f.state === FlowState.Relaying) {
        if (f.active) {
          f.active = false;
          f.lastActive = now;
        } else if (now - f.lastActive >= f.idleMs) this.finish(f, 'idle_timeout');
      } else if (now - f.startedAt > detectMs) {
        if (f.route === undefined) this.reject(f, 'undecided');
        else this.finish(f, 'backend_error', 'ETIMEDOUT');
      }
    }
  }
}

/** Routers over UDP routes only (TCP routes never see a datagram), one per listen_udp address. */
function udpRouters(config: Config): Map<string, Router> {
  const udp = config.routes.filter((r) => r.transport === 'udp');
  return new Map(config.listenUdp.map((e) => [e.text, new Router(udp, e.text)]));
}

/** The fields of the one line written when a routed flow ends. */
export function flowFields(f: Flow): Record<string, unknown> {
  const end = f.closedAt ?? performance.now();
  return {
    flow: f.id,
    transport: 'udp',
    client: f.clientAddress,
    client_port: f.clientPort,
    listener: f.listener,
    protocol: f.protocol,
    sni: f.sni,
    alpn: f.alpn,
    route: f.route?.name,
    backend: f.backend?.text,
    datagrams_client_to_backend: f.datagramsUp,
    datagrams_backend_to_client: f.datagramsDown,
    bytes_client_to_backend: f.bytesUp,
    bytes_backend_to_client: f.bytesDown,
    detect_ms: f.detectMs === undefined ? undefined : Math.round(f.detectMs * 1000) / 1000,
    duration_ms: Math.round((end - f.startedAt) * 1000) / 1000,
    end: f.end,
    code: f.code,
  };
}
