// Prometheus series for UDP flows: flows, datagrams and bytes per route, dropped datagrams by reason.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/types.js';
import type { Flow } from './flow.js';
import { UDP_REJECT_REASONS, type UdpRejectReason } from './flow.js';
import type { FlowObserver } from './flows.js';

const UNKNOWN = 'unknown';
type Child = { inc(n?: number): void };

/** A route's counts: closed flows' totals, and what the counters show (the next scrape adds the rest). */
interface Tally {
  closed: [number, number, number, number];
  shown: [number, number, number, number];
  readonly children: [Child, Child, Child, Child];
}

/** The observer UdpFlows calls; counts per flow, and reads live flows' counts only at scrape time. */
export class UdpMetrics implements FlowObserver {
  private readonly flowsTotal: Counter<'route' | 'protocol'>;
  private readonly flowsActive: Gauge<'route'>;
  private readonly datagrams: Counter<'route' | 'direction'>;
  private readonly bytes: Counter<'route' | 'direction'>;
  private readonly rejected: Counter<'reason'>;
  private readonly tallies = new Map<string, Tally>();
  private live: ReadonlyMap<string, Flow> = new Map();

  constructor(registry: Registry, config: Config) {
    const registers = [registry];
    this.flowsTotal = new Counter({
      name: 'snimux_udp_flows_total',
      help: 'UDP flows routed, by route and detected protocol ("unknown" when none was recognised).',
      labelNames: ['route', 'protocol'],
      registers,
    });
    this.flowsActive = new Gauge({
      name: 'snimux_udp_flows_active',
      help: 'UDP flows routed and not yet idled out, by route.',
      labelNames: ['route'],
      registers,
    });
    this.datagrams = new Counter({
      name: 'snimux_udp_datagrams_total',
      help: 'UDP datagrams relayed, by route and direction.',
      labelNames: ['route', 'direction'],
      registers,
      collect: () => this.collect(),
    });
    this.bytes = new Counter({
      name: 'snimux_udp_bytes_total',
      help: 'UDP payload bytes relayed, by route and direction.',
      labelNames: ['route', 'direction'],
      registers,
    });
    this.rejected = new Counter({
      name: 'snimux_udp_rejected_datagrams_total',
      help: 'UDP datagrams dropped instead of relayed, by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const r of UDP_REJECT_REASONS) this.rejected.labels(r).inc(0);
    this.addRoutes(config);
  }

  /** Zero series for every UDP route, so dashboards show quiet ones; kept across reloads. */
  addRoutes(config: Config): void {
    for (const r of config.routes) {
      if (r.transport !== 'udp') continue;
      this.tally(r.name);
      for (const p of r.protocol ?? [UNKNOWN]) this.flowsTotal.labels(r.name, p).inc(0);
    }
  }

  watchFlows(flows: ReadonlyMap<string, Flow>): void {
    this.live = flows;
  }

  onFlowRouted(f: Flow): void {
    const route = f.route!.name;
    this.tally(route);
    this.flowsTotal.labels(route, f.protocol ?? UNKNOWN).inc();
    this.flowsActive.labels(route).inc();
  }

  onFlowClosed(f: Flow): void {
    const t = this.tally(f.route!.name);
    this.flowsActive.labels(f.route!.name).dec();
    t.closed[0] += f.datagramsUp;
    t.closed[1] += f.datagramsDown;
    t.closed[2] += f.bytesUp;
    t.closed[3] += f.bytesDown;
  }

  onRejected(reason: UdpRejectReason, datagrams: number): void {
    this.rejected.labels(reason).inc(datagrams);
  }

  private tally(route: string): Tally {
    let t = this.tallies.get(route);
    if (t !== undefined) return t;
    this.flowsActive.labels(route).set(0);
    const children: Tally['children'] = [
      this.datagrams.labels(route, 'client_to_backend'),
      this.datagrams.labels(route, 'backend_to_client'),
      this.bytes.labels(route, 'client_to_backend'),
      this.bytes.labels(route, 'backend_to_client'),
    ];
    for (const c of children) c.inc(0);
    t = { closed: [0, 0, 0, 0], shown: [0, 0, 0, 0], children };
    this.tallies.set(route, t);
    return t;
  }

  /** Brings datagram and byte counters up to closed + live flows' counts; they only ever grow. */
  private collect(): void {
    const now = new Map<string, [number, number, number, number]>();
    for (const [route, t] of this.tallies) now.set(route, [...t.closed]);
    for (const f of this.live.values()) {
      if (f.route === undefined || f.closedAt !== undefined) continue;
      const v = now.get(f.route.name);
      if (v === undefined) continue;
      v[0] += f.datagramsUp;
      v[1] += f.datagramsDown;
      v[2] += f.bytesUp;
      v[3] += f.bytesDown;
    }
    for (const [route, v] of now) {
      const t = this.tallies.get(route)!;
      for (let i = 0; i < 4; i++) {
        if (v[i]! > t.shown[i]!) t.children[i]!.inc(v[i]! - t.shown[i]!);
        t.shown[i] = Math.max(v[i]!, t.shown[i]!);
      }
    }
  }
}
