// Tries a route's backends in order under our own connect timeout; each data plane says how to dial.
import type net from 'node:net';
import type { Endpoint } from '../config/types.js';
import { timeoutAfterIo } from '../net/timeout.js';

export interface ConnectFailure {
  backend: Endpoint;
  /** errno code (ECONNREFUSED, ENOTFOUND, …) or ETIMEDOUT for our own connect timeout. */
  code: string;
  ms: number;
}

export interface ConnectHandler {
  /** A backend failed; the next one is tried next. */
  onConnectFailure(failure: ConnectFailure): void;
  /** Connected: the socket (js data plane) is ready, paused, with no listeners of ours left on it. */
  onConnected(backend: Endpoint, ms: number, socket?: net.Socket): void;
  /** Every backend failed. */
  onAllFailed(): void;
}

/**
 * One connection's walk over its backends. A subclass dials (and resolves names per attempt, so a
 * container that moved is found on the next connection) and reports with succeed() or fail().
 */
export abstract class BackendAttempts {
  private i = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  protected done = false;
  /** Bumped per attempt: a late answer (DNS, the timer) for an abandoned attempt is dropped. */
  protected attempt = 0;

  constructor(
    private readonly backends: readonly Endpoint[],
    private readonly timeoutMs: number,
    private readonly handler: ConnectHandler,
  ) {}

  /** Starts connecting to one backend; attempt is the number current() must still return. */
  protected abstract dial(backend: Endpoint, attempt: number): void;
  /** Lets go of what the current attempt holds (a socket, the addon's backend fd). */
  protected abstract abandon(): void;

  /** True while attempt is the one under way and nothing has ended the walk. */
  protected current(attempt: number): boolean {
    return !this.done && attempt === this.attempt;
  }

  next(): void {
    if (this.done) return;
    const backend = this.backends[this.i++];
    if (backend === undefined) {
      this.done = true;
      this.handler.onAllFailed();
      return;
    }
    this.started = performance.now();
    const attempt = ++this.attempt;
    this.timer = timeoutAfterIo(onTimeout, this.timeoutMs, this, attempt);
    this.dial(backend, attempt);
  }

  /** The client went away mid-connect. */
  readonly cancel = (): void => {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.abandon();
  };

  timedOut(attempt: number): void {
    if (this.current(attempt)) this.fail('ETIMEDOUT');
  }

  protected succeed(socket?: net.Socket): void {
    clearTimeout(this.timer);
    this.done = true;
    this.handler.onConnected(this.backends[this.i - 1]!, performance.now() - this.started, socket);
  }

  fail(code: string): void {
    if (this.done) return;
    clearTimeout(this.timer);
    this.attempt++;
    this.abandon();
    const backend = this.backends[this.i - 1]!;
    this.handler.onConnectFailure({ backend, code, ms: performance.now() - this.started });
    this.next();
  }
}

function onTimeout(a: BackendAttempts, attempt: number): void {
  // Run after the turn's I/O: the connect may have been answered in the meantime.
  a.timedOut(attempt);
}
