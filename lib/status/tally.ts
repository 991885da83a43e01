// Plain-number tallies for the status page: totals since start, refusals in the last minutes, reloads.
import type { Config } from '../config/types.js';
import type { Connection } from '../connection.js';
import type { MuxObserver } from '../mux.js';
import type { ReloadMetrics } from '../ops/reload.js';
import { REJECT_REASONS, type RejectReason } from '../reasons.js';

/** Refusals are kept in steps of this long, for as many steps as make the window. */
const STEP_MS = 10_000;
const STEPS = 30;
/** The span "recent refusals" covers: the last 5 minutes, give or take the current step. */
export const RECENT_WINDOW_S = (STEP_MS * STEPS) / 1000;

const REASON_INDEX = new Map<RejectReason, number>(REJECT_REASONS.map((r, i) => [r, i]));

/** Counts per reason in a ring of time steps; the oldest step is cleared as time moves on. */
export class RecentRejections {
  private readonly counts = new Uint32Array(STEPS * REJECT_REASONS.length);
  /** Absolute step number (ms / STEP_MS) of the newest slot. */
  private head = 0;

  add(reason: RejectReason, now: number): void {
    this.advance(now);
    this.counts[(this.head % STEPS) * REJECT_REASONS.length + REASON_INDEX.get(reason)!]! += 1;
  }

  /** Every reason with its count over the window (zeros included, so the list never changes shape). */
  sums(now: number): Record<RejectReason, number> {
    this.advance(now);
    const out = {} as Record<RejectReason, number>;
    REJECT_REASONS.forEach((r, i) => {
      let n = 0;
      for (let s = 0; s < STEPS; s++) n += this.counts[s * REJECT_REASONS.length + i]!;
      out[r] = n;
    });
    return out;
  }

  private advance(now: number): void {
    const step = Math.floor(now / STEP_MS);
    if (step <= this.head) return;
    const clear = Math.min(step - this.head, STEPS);
    for (let k = 1; k <= clear; k++) {
      const slot = ((this.head + k) % STEPS) * REJECT_REASONS.length;
      this.counts.fill(0, slot, slot + REJECT_REASONS.length);
    }
    this.head = step;
  }
}

/** The last reload: when, how it went, and the errors that kept the old config. */
export interface ReloadRecord {
  readonly at: number;
  readonly result: 'success' | 'failure';
  readonly errors: readonly string[];
}

/**
 * A mux and reload observer that keeps the few numbers the status page needs as plain fields: the
 * metrics registry keeps its own (prom-client series), which are costly to read back.
 */
export class StatusTally implements MuxObserver, ReloadMetrics {
  /** Wall-clock times (Date.now()), for people; intervals use performance.now(). */
  readonly startedAt = Date.now();
  configLoadedAt = this.startedAt;
  lastReload: ReloadRecord | undefined;
  accepted = 0;
  routed = 0;
  rejected = 0;
  /** Bytes of connections already closed; live ones are added when a report is made. */
  closedUp = 0;
  closedDown = 0;
  readonly rejectedTotal = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));
  private readonly recent = new RecentRejections();

  onAccepted(): void {
    this.accepted++;
  }

  onRouted(): void {
    this.routed++;
  }

  onConnectFailure(): void {}

  onConnected(): void {}

  onClosed(c: Connection): void {
    this.closedUp += c.bytesUp;
    this.closedDown += c.bytesDown;
    if (c.reject === undefined) return;
    this.rejected++;
    this.rejectedTotal.set(c.reject, this.rejectedTotal.get(c.reject)! + 1);
    this.recent.add(c.reject, performance.now());
  }

  /** Refusals per reason within the last RECENT_WINDOW_S seconds. */
  recentRejections(now: number): Record<RejectReason, number> {
    return this.recent.sums(now);
  }

  reloadSucceeded(_config?: Config): void {
    this.configLoadedAt = Date.now();
    this.lastReload = { at: this.configLoadedAt, result: 'success', errors: [] };
  }

  reloadFailed(errors: readonly string[] = []): void {
    this.lastReload = { at: Date.now(), result: 'failure', errors: [...errors] };
  }
}
