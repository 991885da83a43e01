// Active health checks: each configured backend of a route with health_check, checked every [health] interval.
import type { Endpoint, HealthCheck, HealthConfig, RouteConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { type CheckResult, checkBackend } from './probe.js';

/** What the balancer reads: which backends (by address text) the checks hold down. */
export interface HealthView {
  /** Backends now down: 0 lets the balancer keep its no-allocation path. */
  readonly downCount: number;
  isDown(text: string): boolean;
}

/** One backend checked one way; shared by the routes that check it the same way. */
interface Target {
  readonly key: string;
  readonly backend: Endpoint;
  readonly kind: HealthCheck;
  readonly sni: string | undefined;
  routes: string[];
  /** Backends start up, as HAProxy's do: a dead one goes down after `fall` failed checks. */
  up: boolean;
  /** Consecutive results that disagree with `up`. */
  streak: number;
  running: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class HealthChecker implements HealthView {
  private readonly targets = new Map<string, Target>();
  /** Down targets per address text (one backend may be checked by two kinds of check). */
  private readonly down = new Map<string, number>();
  private config: HealthConfig | undefined;
  private stopped = false;

  constructor(private readonly log: Logger) {}

  get downCount(): number {
    return this.down.size;
  }

  isDown(text: string): boolean {
    return this.down.has(text);
  }

  /** For snimux_backend_up: 1 up, 0 down, undefined when the route does not check this backend. */
  state(route: RouteConfig, backend: Endpoint): boolean | undefined {
    if (route.healthCheck === undefined) return undefined;
    return this.targets.get(targetKey(route, backend))?.up;
  }

  /**
   * Checks what `config` asks for. A backend checked the same way before keeps its state (a reload
   * does not bring a dead backend back); new ones start up and are checked at once; others stop.
   */
  update(routes: readonly RouteConfig[], config: HealthConfig): void {
    if (this.stopped) return;
    const reschedule = this.config?.interval !== config.interval;
    this.config = config;
    const wanted = new Map<string, Target>();
    for (const r of routes) {
      if (r.healthCheck === undefined) continue;
      for (const b of r.backends) {
        if (b.template !== undefined) continue;
        const key = targetKey(r, b);
        const t = wanted.get(key) ?? this.targets.get(key) ?? newTarget(key, b, r);
        if (!wanted.has(key)) t.routes = [];
        t.routes.push(r.name);
        wanted.set(key, t);
      }
    }
    for (const [key, t] of this.targets) {
      if (wanted.has(key)) continue;
      clearInterval(t.timer);
      if (!t.up) this.countDown(t.backend.text, -1);
      this.targets.delete(key);
    }
    for (const [key, t] of wanted) {
      const fresh = !this.targets.has(key);
      this.targets.set(key, t);
      if (fresh || reschedule) this.schedule(t, fresh);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.targets.values()) clearInterval(t.timer);
  }

  private schedule(t: Target, now: boolean): void {
    clearInterval(t.timer);
    t.timer = setInterval(runCheck, this.config!.interval, this, t);
    t.timer.unref();
    if (now) this.run(t);
  }

  /** Called by the timer; a check still running (timeout over interval) lets this tick pass. */
  run(t: Target): void {
    if (t.running || this.stopped) return;
    t.running = true;
    checkBackend(t.backend, t.kind, t.sni, this.config!.timeout).then((r) => this.settle(t, r));
  }

  private settle(t: Target, result: CheckResult): void {
    t.running = false;
    if (this.stopped || this.targets.get(t.key) !== t) return;
    const passed = result === undefined;
    if (passed === t.up) {
      t.streak = 0;
      return;
    }
    t.streak++;
    const cfg = this.config!;
    if (t.streak < (t.up ? cfg.fall : cfg.rise)) return;
    t.up = passed;
    t.streak = 0;
    this.countDown(t.backend.text, passed ? -1 : 1);
    const fields = { backend: t.backend.text, routes: t.routes, check: t.kind };
    // Logged on the change only: a backend down for hours writes one line, not one per check.
    if (passed) this.log.info(fields, 'backend up');
    else this.log.warn({ ...fields, code: result }, 'backend down');
  }

  private countDown(text: string, delta: number): void {
    const n = (this.down.get(text) ?? 0) + delta;
    if (n <= 0) this.down.delete(text);
    else this.down.set(text, n);
  }
}

function runCheck(checker: HealthChecker, t: Target): void {
  checker.run(t);
}

/** The name a tls check asks for: the route's first sni, a wildcard's own domain ("*.bjk.is" → "bjk.is"). */
function checkSni(r: RouteConfig): string | undefined {
  const first = r.sni?.[0];
  return first?.startsWith('*.') ? first.slice(2) : first;
}

function targetKey(r: RouteConfig, b: Endpoint): string {
  return r.healthCheck === 'tls' ? `tls ${checkSni(r)} ${b.text}` : `connect ${b.text}`;
}

function newTarget(key: string, backend: Endpoint, r: RouteConfig): Target {
  return {
    key,
    backend,
    kind: r.healthCheck!,
    sni: r.healthCheck === 'tls' ? checkSni(r) : undefined,
    routes: [],
    up: true,
    streak: 0,
    running: false,
    timer: undefined,
  };
}
