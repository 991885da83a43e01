// The worker processes of `workers > 1`: forks them, restarts the ones that die (a bounded number of
// times), forwards their log lines, hands them the config and asks them for reports.
import cluster, { type Worker } from 'node:cluster';
import type net from 'node:net';
import { createInterface } from 'node:readline';
import type { Config } from '../config/types.js';
import type { Logger, LogOutput } from '../log.js';
import { type FromWorker, isOurs, type ListenerInfo, type StatusQuery, type ToWorker } from './messages.js';
import { WORKER_ENV } from './worker.js';

/** More deaths than this within RESTART_WINDOW_MS and the primary stops restarting and drains. */
export const MAX_RESTARTS = 5;
export const RESTART_WINDOW_MS = 60_000;

/** What the primary knows of one worker. */
interface Slot {
  readonly index: number;
  readonly worker: Worker;
  started: boolean;
  dataPlane: string;
  listeners: ListenerInfo[];
  /** Resolves once the worker exited and its log lines are all forwarded. */
  readonly gone: Promise<void>;
}

type Pending = { index: number; resolve: (m: FromWorker | undefined) => void };

export interface GroupEvents {
  /** Every worker of the first start is serving. */
  onStarted(): void;
  /** A worker died before the first start was complete, or too many died since: the group is failing. */
  onFailed(reason: string): void;
}

export class WorkerGroup {
  private readonly slots: (Slot | undefined)[] = [];
  private current: Config;
  private stopping = false;
  private everStarted = false;
  private readonly deaths: number[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Set while a reload's config has reached the workers (they count that reload themselves). */
  reached = false;

  constructor(
    config: Config,
    readonly size: number,
    private readonly log: Logger,
    private readonly output: LogOutput,
    private readonly events: GroupEvents,
  ) {
    this.current = config;
    // Workers' stdout comes to the primary, which writes whole lines: one stream, never interleaved.
    cluster.setupPrimary({ serialization: 'advanced', stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    for (let i = 1; i <= size; i++) this.fork(i);
  }

  get config(): Config {
    return this.current;
  }

  /** Serving workers, by number. */
  serving(): Slot[] {
    return this.slots.filter((s): s is Slot => s?.started === true);
  }

  /** Bound addresses as worker 1 (or the first serving one) reports them: every worker binds the same. */
  addresses(): Map<string, net.AddressInfo> {
    const out = new Map<string, net.AddressInfo>();
    for (const l of this.serving()[0]?.listeners ?? []) {
      out.set(l.config, {
        address: l.address,
        port: l.port,
        family: l.address.includes(':') ? 'IPv6' : 'IPv4',
      });
    }
    return out;
  }

  dataPlane(): string | undefined {
    return this.serving()[0]?.dataPlane;
  }

  pids(): number[] {
    return this.serving().map((s) => s.worker.process.pid ?? 0);
  }

  /**
   * Every serving worker switches to `next`, or none does: if one refuses (a new port it cannot bind),
   * the ones that switched are given the old config back and this throws with the refusals.
   */
  async reload(next: Config): Promise<void> {
    const prev = this.current;
    const slots = this.serving();
    this.reached = true;
    const answers = await Promise.all(
      slots.map((s) => this.ask(s, (id) => ({ sniMux: 'config', id, config: next }))),
    );
    const errors: string[] = [];
    const switched: Slot[] = [];
    answers.forEach((a, i) => {
      const slot = slots[i]!;
      if (a === undefined) errors.push(`worker ${slot.index} exited during the reload`);
      else if (a.sniMux === 'config' && a.errors.length > 0)
        errors.push(...a.errors.map((e) => `worker ${slot.index}: ${e}`));
      else switched.push(slot);
    });
    if (errors.length === 0) {
      this.current = next;
      return;
    }
    await Promise.all(switched.map((s) => this.ask(s, (id) => ({ sniMux: 'config', id, config: prev }))));
    throw new Error(errors.join('; '));
  }

  /** Asks every serving worker; answers in worker order, a worker that exits meanwhile left out. */
  async query(query: StatusQuery, limit = 0): Promise<{ worker: number; pid: number; value: unknown }[]> {
    const slots = this.serving();
    const answers = await Promise.all(
      slots.map((s) => this.ask(s, (id) => ({ sniMux: 'status', id, query, limit }))),
    );
    const out: { worker: number; pid: number; value: unknown }[] = [];
    answers.forEach((a, i) => {
      if (a?.sniMux === 'status')
        out.push({ worker: slots[i]!.index, pid: slots[i]!.worker.process.pid ?? 0, value: a.value });
    });
    return out;
  }

  /** Tells every serving worker about a reload the primary refused, for their metrics and status. */
  reloadRefused(errors: string[]): void {
    for (const s of this.serving()) this.send(s, { sniMux: 'reload-failed', errors });
  }

  /** Drains every worker (a second call: closes their connections now); resolves once all are gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    const live = this.slots.filter((s): s is Slot => s !== undefined);
    for (const s of live) this.send(s, { sniMux: 'stop' });
    await Promise.all(live.map((s) => s.gone));
  }

  private fork(index: number): void {
    const worker = cluster.fork({ [WORKER_ENV]: String(index) });
    let exited: () => void = () => {};
    const exit = new Promise<void>((resolve) => {
      exited = resolve;
    });
    const stdout = worker.process.stdout;
    const drained =
      stdout === null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            createInterface({ input: stdout, crlfDelay: Number.POSITIVE_INFINITY })
              .on('line', (line) => this.output.write(`${line}\n`))
              .on('close', resolve);
          });
    const slot: Slot = {
      index,
      worker,
      started: false,
      dataPlane: '',
      listeners: [],
      gone: Promise.all([exit, drained]).then(() => {}),
    };
    this.slots[index - 1] = slot;
    worker.on('message', (m: unknown) => {
      if (isOurs<FromWorker>(m)) this.onMessage(slot, m);
    });
    worker.on('exit', (code, signal) => {
      exited();
      this.onExit(slot, code, signal);
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (m.sniMux === 'ready') {
      this.send(slot, { sniMux: 'config', id: 0, config: this.current });
    } else if (m.sniMux === 'started') {
      slot.started = true;
      slot.dataPlane = m.dataPlane;
      slot.listeners = m.listeners;
      if (this.stopping) this.send(slot, { sniMux: 'stop' });
      if (!this.everStarted && this.slots.every((s) => s?.started === true)) {
        this.everStarted = true;
        this.events.onStarted();
      }
    } else {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      p.resolve(m);
    }
  }

  private onExit(slot: Slot, code: number | null, signal: string | null): void {
    for (const [id, p] of this.pending) {
      if (p.index !== slot.index) continue;
      this.pending.delete(id);
      p.resolve(undefined);
    }
    if (this.stopping) return;
    const pid = slot.worker.process.pid;
    this.log.error({ worker: slot.index, worker_pid: pid, code, signal }, 'worker exited');
    if (!this.everStarted) {
      this.events.onFailed(
        `worker ${slot.index} exited before it was serving (code ${code}, signal ${signal})`,
      );
      return;
    }
    const now = performance.now();
    this.deaths.push(now);
    while (this.deaths.length > 0 && now - this.deaths[0]! > RESTART_WINDOW_MS) this.deaths.shift();
    if (this.deaths.length > MAX_RESTARTS) {
      this.events.onFailed(
        `${this.deaths.length} workers exited within ${RESTART_WINDOW_MS / 1000} s: not restarting them`,
      );
      return;
    }
    this.log.info({ worker: slot.index }, 'restarting worker');
    this.fork(slot.index);
  }

  private ask(slot: Slot, message: (id: number) => ToWorker): Promise<FromWorker | undefined> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { index: slot.index, resolve });
      if (!this.send(slot, message(id))) {
        this.pending.delete(id);
        resolve(undefined);
      }
    });
  }

  private send(slot: Slot, m: ToWorker): boolean {
    if (!slot.worker.isConnected()) return false;
    slot.worker.send(m);
    return true;
  }
}
