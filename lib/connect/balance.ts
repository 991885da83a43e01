// Decides the order a route's backends are tried in: rotation for `balance = "roundrobin"`, and
// backends whose last connect failed moved to the back for `timeouts.backend_down`.
import type { Endpoint, RouteConfig } from '../config/types.js';
import type { HealthView } from '../health/checker.js';

export class Balancer {
  /** Next starting backend of each route, by route index; used by roundrobin routes only. */
  private readonly next: number[];
  /** Backends whose connect failed, by address text: until when (performance.now()) they go last. */
  private readonly down: Map<string, number>;
  /** Active health checks' verdicts: a backend they hold down goes last too. */
  health: HealthView | undefined;

  /**
   * `previous` is the balancer of the config before a reload: its record of down backends (by
   * address text) is shared, so a reload doesn't send clients back to a dead one, and connections
   * still on the old config keep it up to date.
   */
  constructor(
    routes: readonly RouteConfig[],
    private readonly downMs: number,
    previous?: Balancer,
  ) {
    this.next = new Array<number>(routes.length).fill(0);
    this.down = previous?.down ?? new Map();
  }

  /**
   * The backends to try for one connection, in order. A single backend, or a `first` route with no
   * backend down, is the route's own list: nothing is allocated on the common path. `all` is the
   * route's list with its templates expanded, when it has any.
   */
  order(route: RouteConfig, now: number, all: readonly Endpoint[] = route.backends): readonly Endpoint[] {
    const n = all.length;
    if (n === 1) return all;
    let start = 0;
    const anyDown = this.down.size > 0 || (this.health !== undefined && this.health.downCount > 0);
    if (route.balance === 'roundrobin') {
      start = this.rotate(route.index, n);
      // A down backend's turn passes to the next one up, so the live ones share the load evenly.
      for (let k = 1; k < n && anyDown && this.goesLast(all[start]!.text, now); k++) {
        start = this.rotate(route.index, n);
      }
    }
    if (start === 0 && !anyDown) return all;
    const up: Endpoint[] = [];
    const later: Endpoint[] = [];
    for (let k = 0; k < n; k++) {
      const e = all[(start + k) % n]!;
      (this.goesLast(e.text, now) ? later : up).push(e);
    }
    return later.length === 0 ? up : up.concat(later);
  }

  /** A connect to this backend failed: other backends go first until downMs has passed. */
  failed(backend: Endpoint, now: number): void {
    if (this.downMs <= 0) return;
    // Expanded template names come from clients: keep the record bounded, oldest first out.
    if (this.down.size >= MAX_DOWN && !this.down.has(backend.text)) {
      for (const [text, until] of this.down) if (until <= now) this.down.delete(text);
      if (this.down.size >= MAX_DOWN) this.down.delete(this.down.keys().next().value!);
    }
    this.down.set(backend.text, now + this.downMs);
  }

  /** A connect succeeded: the backend is no longer down. */
  connected(backend: Endpoint): void {
    if (this.down.size > 0) this.down.delete(backend.text);
  }

  /** Whether the backend with this address text is now tried after the others. */
  isDown(text: string, now: number): boolean {
    const until = this.down.get(text);
    if (until === undefined) return false;
    if (until > now) return true;
    this.down.delete(text);
    return false;
  }

  /** Down by the last connect or by the health checks: tried after the others, never skipped. */
  private goesLast(text: string, now: number): boolean {
    return this.health?.isDown(text) === true || this.isDown(text, now);
  }

  private rotate(index: number, n: number): number {
    const i = this.next[index]! % n;
    this.next[index] = i + 1;
    return i;
  }
}

/** Most backends remembered as down at once (configured ones and names expanded from templates). */
const MAX_DOWN = 4096;
