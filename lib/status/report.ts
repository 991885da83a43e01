// The admin listener's JSON: /status (everything the page shows), /connections and /routes. Read-only.
import type { StatusSource } from '../admin/server.js';
import type { Cidr, Config, Endpoint, RouteConfig } from '../config/types.js';
import type { Connection, ConnectionSnapshot } from '../connection.js';
import type { Mux } from '../mux.js';
import type { RejectReason } from '../reasons.js';
import { type RouteRow, routeRows } from '../route/describe.js';
import { VERSION } from '../version.js';
import { RECENT_WINDOW_S, type StatusTally } from './tally.js';

/** Default and most connections one answer lists: a flood must not make the status page the attack. */
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;
/** Rates are averaged over about this long (less just after start). */
const RATE_WINDOW_MS = 10_000;

/** Active health of a route's backend (health_check): true up, false down, undefined not checked. */
export type BackendHealth = (route: RouteConfig, backend: Endpoint) => boolean | undefined;

export interface BackendStatus {
  readonly backend: string;
  /** Passive: its last connect failed, so it is tried after the others for timeouts.backend_down. */
  readonly down: boolean;
  /** Active health check result; null when not checked. */
  readonly up: boolean | null;
}

/** A route as `check` prints it, plus its backends' state and live connections. */
export interface RouteStatus extends RouteRow {
  readonly backend_state: readonly BackendStatus[];
  readonly live: number;
}

export interface StatusDeps {
  readonly mux: Pick<Mux, 'config' | 'live' | 'addresses' | 'backendDown' | 'plane' | 'udp'>;
  readonly tally: StatusTally;
  readonly health?: BackendHealth;
}

/** Totals at one instant, kept to compute rates from. */
interface Sample {
  readonly t: number;
  readonly accepted: number;
  readonly up: number;
  readonly down: number;
}

/** Builds the reports; keeps a few samples of the totals so rates need no timer. */
export class StatusReports implements StatusSource {
  private readonly samples: Sample[] = [];
  private readonly start: Sample = { t: performance.now(), accepted: 0, up: 0, down: 0 };

  constructor(private readonly deps: StatusDeps) {}

  /** [admin] allow of the config in force, so a reload changes it at once. */
  allow(): readonly Cidr[] | undefined {
    return this.deps.mux.config.admin?.allow;
  }

  /** Live connections, oldest first, at most `limit`. */
  connections(limit = DEFAULT_LIMIT, now = performance.now()): ConnectionSnapshot[] {
    return snapshots(this.deps.mux.live, limit, now);
  }

  routes(): RouteStatus[] {
    const { mux, health } = this.deps;
    const live = new Map<string, number>();
    for (const c of mux.live) {
      const name = c.route?.name;
      if (name !== undefined) live.set(name, (live.get(name) ?? 0) + 1);
    }
    return routeStatus(mux.config, mux.backendDown.bind(mux), health, live);
  }

  /** Everything the status page shows, with up to `limit` live connections. */
  status(limit = DEFAULT_LIMIT) {
    const { mux, tally } = this.deps;
    const now = performance.now();
    let up = tally.closedUp;
    let down = tally.closedDown;
    for (const c of mux.live) {
      up += c.bytesUp;
      down += c.bytesDown;
    }
    const current: Sample = { t: now, accepted: tally.accepted, up, down };
    const base = this.rateBase(current);
    const seconds = (now - base.t) / 1000;
    const perSecond = (a: number, b: number): number =>
      seconds > 0 ? Math.round(((a - b) / seconds) * 100) / 100 : 0;
    const config = mux.config;
    return {
      version: VERSION,
      data_plane: mux.plane.name,
      node: process.versions.node,
      pid: process.pid,
      now: new Date().toISOString(),
      started_at: new Date(tally.startedAt).toISOString(),
      uptime_s: Math.round((Date.now() - tally.startedAt) / 1000),
      config: {
        file: config.file,
        loaded_at: new Date(tally.configLoadedAt).toISOString(),
        last_reload:
          tally.lastReload === undefined
            ? null
            : {
                at: new Date(tally.lastReload.at).toISOString(),
                result: tally.lastReload.result,
                errors: tally.lastReload.errors,
              },
      },
      listeners: [
        ...[...mux.addresses()].map(([listen, a]) => ({
          listen,
          transport: 'tcp',
          address: a.address,
          port: a.port,
        })),
        ...[...mux.udp.addresses()].map(([listen, a]) => ({
          listen,
          transport: 'udp',
          address: a.address,
          port: a.port,
        })),
      ],
      routes: this.routes(),
      totals: {
        live: mux.live.size,
        accepted: tally.accepted,
        routed: tally.routed,
        rejected: tally.rejected,
        bytes_client_to_backend: up,
        bytes_backend_to_client: down,
      },
      rates: {
        window_s: Math.round(seconds * 10) / 10,
        connections: perSecond(current.accepted, base.accepted),
        bytes_client_to_backend: perSecond(current.up, base.up),
        bytes_backend_to_client: perSecond(current.down, base.down),
      },
      rejections: {
        window_s: RECENT_WINDOW_S,
        recent: tally.recentRejections(now),
        total: Object.fromEntries(tally.rejectedTotal) as Record<RejectReason, number>,
      },
      connections: snapshots(mux.live, limit, now),
    };
  }

  /**
   * The sample to take rates against: the newest at least RATE_WINDOW_MS old, else the oldest kept if
   * a couple of seconds old, else the start. Records `current` at most once a second.
   */
  private rateBase(current: Sample): Sample {
    const s = this.samples;
    while (s.length > 1 && current.t - s[1]!.t >= RATE_WINDOW_MS) s.shift();
    let base = this.start;
    if (s.length > 0 && current.t - s[0]!.t >= RATE_WINDOW_MS / 5) base = s[0]!;
    if (s.length === 0 || current.t - s[s.length - 1]!.t >= 1000) s.push(current);
    return base;
  }
}

export type StatusReport = ReturnType<StatusReports['status']>;

function snapshots(live: Iterable<Connection>, limit: number, now: number): ConnectionSnapshot[] {
  const out: ConnectionSnapshot[] = [];
  if (limit <= 0) return out;
  for (const c of live) {
    out.push(c.snapshot(now));
    if (out.length >= limit) break;
  }
  return out;
}

/** The route table of `config`, each backend with its passive and active state. Pure. */
export function routeStatus(
  config: Config,
  isDown: (backend: string) => boolean,
  health: BackendHealth | undefined,
  live: ReadonlyMap<string, number>,
): RouteStatus[] {
  const rows = routeRows(config);
  return config.routes.map((r, i) => ({
    ...rows[i]!,
    backend_state: r.backends.map((b) => ({
      backend: b.text,
      down: isDown(b.text),
      up: health?.(r, b) ?? null,
    })),
    live: live.get(r.name) ?? 0,
  }));
}
