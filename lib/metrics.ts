// Prometheus metrics: a prom-client registry fed by the mux's connection events, one update per stage.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Config, Endpoint, RouteConfig } from './config/types.js';
import type { ConnectFailure } from './connect/attempts.js';
import type { Connection } from './connection.js';
import { PROTOCOLS } from './detect/types.js';
import type { MuxObserver } from './mux.js';
import { REJECT_REASONS } from './reasons.js';
import { UdpMetrics } from './udp/metrics.js';
import { VERSION } from './version.js';

/** Label value for a connection routed without a recognised protocol (catch-all, on_timeout). */
export const UNKNOWN_PROTOCOL = 'unknown';

// Detection and connects are usually sub-millisecond on a LAN, and capped by timeouts.detect/connect (5 s default).
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Connections last from a refused second to day-long SSH sessions.
const DURATION_BUCKETS = [0.01, 0.1, 1, 10, 60, 300, 900, 3600, 14400, 86400];

const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

type Child = { inc(n?: number): void };
type Observer = { observe(v: number): void };

/** One route's resolved label children and byte tallies; found once per connection by route name. */
interface RouteSeries {
  readonly connections: Map<string, Child>;
  readonly active: { inc(): void; dec(): void };
  readonly connectSeconds: Observer;
  readonly durationSeconds: Observer;
  readonly bytesUp: Child;
  readonly bytesDown: Child;
  /** Bytes of this route's closed connections. */
  closedUp: number;
  closedDown: number;
  /** What the bytes counter shows now; the next scrape adds the difference. */
  shownUp: number;
  shownDown: number;
  /** Connections relaying now: their bytes so far are added at scrape time. */
  readonly relaying: Set<Connection>;
}

/**
 * The metrics registry and the observer the Mux calls. Label values come only from the config
 * (route names, backend texts) and fixed sets (protocols, reasons): nothing a client sends.
 */
export class Metrics implements MuxObserver {
  readonly registry = new Registry();
  private readonly routes = new Map<string, RouteSeries>();
  private readonly detectSeconds = new Map<string, Observer>();
  private readonly rejected = new Map<string, Child>();

  private readonly accepted: Counter;
  private readonly connectionsTotal: Counter<'route' | 'protocol'>;
  private readonly connectionsActive: Gauge<'route'>;
  private readonly bytesTotal: Counter<'route' | 'direction'>;
  private readonly detectDuration: Histogram<'protocol'>;
  private readonly connectDuration: Histogram<'route'>;
  private readonly connectionDuration: Histogram<'route'>;
  private readonly rejectedTotal: Counter<'reason'>;
  private readonly connectFailures: Counter<'route' | 'backend'>;
  private readonly reloads: Counter<'result'>;
  private readonly backendsDown: Gauge<'backend'>;
  /** Every backend of every config loaded, by address text: each has a snimux_backend_down series. */
  private readonly backendTexts = new Set<string>();
  private isBackendDown: ((text: string) => boolean) | undefined;
  private readonly lastReload: Gauge;
  private logDropped: (() => number) | undefined;
  private readonly backendUp: Gauge<'route' | 'backend'>;
  /** The routes of the config in force, for snimux_backend_up (only routes with health_check have series). */
  private checkedRoutes: readonly RouteConfig[] = [];
  private healthState: ((route: RouteConfig, backend: Endpoint) => boolean | undefined) | undefined;
  /** UDP flows' series, in the same registry; the mux hands it to its flow table. */
  readonly udp: UdpMetrics;

  constructor(config: Config) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // Gauges named *_total break Prometheus naming rules (promtool flags them); the same counts
    // stay available by type in nodejs_active_handles, nodejs_active_requests, nodejs_active_resources.
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);
    this.accepted = new Counter({
      name: 'snimux_accepted_connections_total',
      help: 'Connections accepted; each ends counted once, in snimux_connections_total or snimux_rejected_connections_total.',
      registers,
    });
    this.connectionsTotal = new Counter({
      name: 'snimux_connections_total',
      help: 'Connections relayed (routed, and a backend connected), by route and detected protocol ("unknown" when none was recognised).',
      labelNames: ['route', 'protocol'],
      registers,
    });
    this.connectionsActive = new Gauge({
      name: 'snimux_connections_active',
      help: 'Connections routed and not yet closed (connecting to a backend or relaying), by route.',
      labelNames: ['route'],
      registers,
    });
    this.bytesTotal = new Counter({
      name: 'snimux_bytes_total',
      help: 'Bytes relayed, by route and direction (client_to_backend includes the bytes peeked during detection).',
      labelNames: ['route', 'direction'],
      registers,
      // Live connections' bytes are read at scrape time, so a long transfer shows before it ends.
      collect: () => this.collectBytes(),
    });
    this.detectDuration = new Histogram({
      name: 'snimux_detect_duration_seconds',
      help: 'Time from accept to the routing decision, by detected protocol.',
      labelNames: ['protocol'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.connectDuration = new Histogram({
      name: 'snimux_backend_connect_duration_seconds',
      help: 'Time to open the TCP connection to the backend that answered (its own attempt, not failed ones before it), by route.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.connectionDuration = new Histogram({
      name: 'snimux_connection_duration_seconds',
      help: 'Time from accept to close of routed connections, by route.',
      labelNames: ['route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.rejectedTotal = new Counter({
      name: 'snimux_rejected_connections_total',
      help: 'Connections closed before being relayed, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.connectFailures = new Counter({
      name: 'snimux_backend_connect_failures_total',
      help: 'Failed attempts to connect to a backend (refused, unreachable, timed out), by route and backend.',
      labelNames: ['route', 'backend'],
      registers,
    });
    new Gauge({
      name: 'snimux_build_info',
      help: 'Always 1; the labels say which sni-mux and Node.js are running.',
      labelNames: ['version', 'node_version'],
      registers,
      aggregator: 'first',
    }).set({ version: VERSION, node_version: process.versions.node }, 1);
    this.reloads = new Counter({
      name: 'snimux_config_reloads_total',
      help: 'Config reloads (SIGHUP), by result.',
      labelNames: ['result'],
      registers,
      // With workers > 1 every worker counts the same reload: /metrics shows the highest, not the sum.
      aggregator: 'max',
    });
    this.lastReload = new Gauge({
      name: 'snimux_config_last_reload_success_timestamp_seconds',
      help: 'Unix time the config in force was loaded (at start or by the last successful reload).',
      registers,
      aggregator: 'max',
    });

    this.backendsDown = new Gauge({
      name: 'snimux_backend_down',
      help: '1 while a backend is tried after the others because a connect to it failed within timeouts.backend_down; 0 otherwise.',
      labelNames: ['backend'],
      registers,
      aggregator: 'max',
      collect: () => this.collectBackendsDown(),
    });

    const logDropped = new Counter({
      name: 'snimux_log_lines_dropped_total',
      help: 'Log lines dropped because stdout was not being read and the log buffer was full.',
      registers,
      // Read from the log output at scrape time: logging knows nothing of metrics.
      collect: () => {
        logDropped.reset();
        logDropped.inc(this.logDropped?.() ?? 0);
      },
    });

    this.backendUp = new Gauge({
      name: 'snimux_backend_up',
      help: 'Active health check verdict of a configured backend of a route with health_check: 1 up, 0 down.',
      labelNames: ['route', 'backend'],
      registers,
      aggregator: 'min',
      collect: () => this.collectBackendUp(),
    });

    for (const p of [...PROTOCOLS, UNKNOWN_PROTOCOL]) {
      this.detectDuration.zero({ protocol: p });
      this.detectSeconds.set(p, this.detectDuration.labels(p));
    }
    for (const r of REJECT_REASONS) {
      const child = this.rejectedTotal.labels(r);
      child.inc(0);
      this.rejected.set(r, child);
    }
    this.accepted.inc(0);
    this.reloads.labels('success').inc(0);
    this.reloads.labels('failure').inc(0);
    this.lastReload.setToCurrentTime();
    this.addRoutes(config);
    this.udp = new UdpMetrics(this.registry, config);
  }

  /** The exposition in Prometheus text format, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A reload took effect. With the new config, its new routes get their zero series at once. */
  reloadSucceeded(config?: Config): void {
    this.reloads.labels('success').inc();
    this.lastReload.setToCurrentTime();
    if (config !== undefined) {
      this.addRoutes(config);
      this.udp.addRoutes(config);
    }
  }

  /** A reload was refused (bad config, or a new address could not be bound). */
  reloadFailed(): void {
    this.reloads.labels('failure').inc();
  }

  /**
   * Creates every route's series at 0 so dashboards show quiet routes. Series of routes a reload
   * removed stay: counters must not vanish or go back while the process lives.
   */
  addRoutes(config: Config): void {
    this.checkedRoutes = config.routes.filter((r) => r.healthCheck !== undefined);
    for (const route of config.routes) {
      const series = this.series(route.name);
      for (const p of routeProtocols(route)) connectionsChild(this.connectionsTotal, series, route.name, p);
      for (const b of route.backends) {
        this.connectFailures.labels(route.name, b.text).inc(0);
        // A template names no one backend: its expansions are logged, not given series.
        if (b.template === undefined) this.backendTexts.add(b.text);
      }
    }
  }

  /** Where snimux_backend_up reads the health checks' verdicts (the mux's checker). */
  watchHealth(state: (route: RouteConfig, backend: Endpoint) => boolean | undefined): void {
    this.healthState = state;
  }

  /** Where snimux_backend_down reads each backend's state at scrape time (the mux's balancer). */
  watchBackends(isDown: (text: string) => boolean): void {
    this.isBackendDown = isDown;
  }

  /** Where snimux_log_lines_dropped_total reads its count at scrape time (the log output). */
  watchLog(dropped: () => number): void {
    this.logDropped = dropped;
  }

  onAccepted(): void {
    this.accepted.inc();
  }

  onRouted(c: Connection): void {
    const series = this.series(c.route!.name);
    const protocol = c.protocol ?? UNKNOWN_PROTOCOL;
    series.active.inc();
    if (c.detectMs !== undefined) this.detectSeconds.get(protocol)!.observe(c.detectMs / 1000);
  }

  onConnectFailure(c: Connection, f: ConnectFailure): void {
    // Backend texts come from the config, so this label set is bounded like the routes.
    // An expanded template counts under the configured text: names clients choose never become labels.
    this.connectFailures.labels(c.route!.name, f.backend.origin ?? f.backend.text).inc();
  }

  onConnected(c: Connection): void {
    const route = c.route!.name;
    const series = this.series(route);
    // Counted once relaying starts: a connection refused after routing (no backend answered, the client
    // gone while connecting) is counted as rejected only, so accepted = relayed + rejected exactly.
    connectionsChild(this.connectionsTotal, series, route, c.protocol ?? UNKNOWN_PROTOCOL).inc();
    if (c.connectMs !== undefined) series.connectSeconds.observe(c.connectMs / 1000);
    series.relaying.add(c);
  }

  onClosed(c: Connection): void {
    if (c.reject !== undefined) this.rejected.get(c.reject)!.inc();
    if (c.route === undefined) return;
    const series = this.series(c.route.name);
    series.active.dec();
    series.durationSeconds.observe(((c.closedAt ?? performance.now()) - c.acceptedAt) / 1000);
    if (series.relaying.delete(c)) {
      series.closedUp += c.bytesUp;
      series.closedDown += c.bytesDown;
    }
  }

  /** A route's series, created at 0 the first time its name is seen. */
  private series(route: string): RouteSeries {
    let s = this.routes.get(route);
    if (s !== undefined) return s;
    const active = this.connectionsActive.labels(route);
    active.set(0);
    this.connectDuration.zero({ route });
    this.connectionDuration.zero({ route });
    const bytesUp = this.bytesTotal.labels(route, 'client_to_backend');
    const bytesDown = this.bytesTotal.labels(route, 'backend_to_client');
    bytesUp.inc(0);
    bytesDown.inc(0);
    s = {
      connections: new Map(),
      active,
      connectSeconds: this.connectDuration.labels(route),
      durationSeconds: this.connectionDuration.labels(route),
      bytesUp,
      bytesDown,
      closedUp: 0,
      closedDown: 0,
      shownUp: 0,
      shownDown: 0,
      relaying: new Set(),
    };
    this.routes.set(route, s);
    return s;
  }

  /** Series for the config in force only: a route or backend a reload removed is no longer checked. */
  private collectBackendUp(): void {
    this.backendUp.reset();
    for (const r of this.checkedRoutes) {
      for (const b of r.backends) {
        const up = this.healthState?.(r, b);
        if (up !== undefined) this.backendUp.labels(r.name, b.text).set(up ? 1 : 0);
      }
    }
  }

  private collectBackendsDown(): void {
    for (const text of this.backendTexts) {
      this.backendsDown.labels(text).set(this.isBackendDown?.(text) === true ? 1 : 0);
    }
  }

  /** Brings snimux_bytes_total up to closed + live bytes; it only ever grows, as a counter must. */
  private collectBytes(): void {
    for (const s of this.routes.values()) {
      let up = s.closedUp;
      let down = s.closedDown;
      for (const c of s.relaying) {
        up += c.bytesUp;
        down += c.bytesDown;
      }
      if (up > s.shownUp) s.bytesUp.inc(up - s.shownUp);
      if (down > s.shownDown) s.bytesDown.inc(down - s.shownDown);
      s.shownUp = Math.max(up, s.shownUp);
      s.shownDown = Math.max(down, s.shownDown);
    }
  }
}

/** The protocols a route can see: its own list, or all of them plus "unknown" when it takes any. */
function routeProtocols(route: RouteConfig): string[] {
  if (route.protocol === undefined) return [...PROTOCOLS, UNKNOWN_PROTOCOL];
  return route.onTimeout ? [...route.protocol, UNKNOWN_PROTOCOL] : [...route.protocol];
}

function connectionsChild(
  counter: Counter<'route' | 'protocol'>,
  series: RouteSeries,
  route: string,
  protocol: string,
): Child {
  let child = series.connections.get(protocol);
  if (child === undefined) {
    child = counter.labels(route, protocol);
    child.inc(0);
    series.connections.set(protocol, child);
  }
  return child;
}
