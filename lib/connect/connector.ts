// Opens a TCP connection to the first backend of a route that answers, trying each in turn.
import net from 'node:net';
import type { Endpoint } from '../config/types.js';

export interface ConnectFailure {
  backend: Endpoint;
  /** errno code (ECONNREFUSED, ENOTFOUND, …) or ETIMEDOUT for our own connect timeout. */
  code: string;
  ms: number;
}

export interface ConnectHandler {
  /** A backend failed; the next one is tried next. */
  onConnectFailure(failure: ConnectFailure): void;
  /** Connected: the socket is ready, paused, with no listeners of ours left on it. */
  onConnected(socket: net.Socket, backend: Endpoint, ms: number): void;
  /** Every backend failed. */
  onAllFailed(): void;
}

/**
 * Tries backends in order. DNS names are resolved per attempt (net.connect looks them up),
 * so a container that moved is found on the next connection.
 * Returns a cancel function for when the client goes away mid-connect.
 */
export function connectBackend(
  backends: readonly Endpoint[],
  timeoutMs: number,
  handler: ConnectHandler,
): () => void {
  const a = new Attempts(backends, timeoutMs, handler);
  a.next();
  return a.cancel;
}

/** The socket being connected points back to its attempts, so the handlers are shared, not closures. */
const ATTEMPTS = Symbol('sni-mux.attempts');
type Pending = net.Socket & { [ATTEMPTS]?: Attempts };

class Attempts {
  private i = 0;
  private socket: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private done = false;

  constructor(
    private readonly backends: readonly Endpoint[],
    private readonly timeoutMs: number,
    private readonly handler: ConnectHandler,
  ) {}

  next(): void {
    if (this.done) return;
    const backend = this.backends[this.i++];
    if (backend === undefined) {
      this.done = true;
      this.handler.onAllFailed();
      return;
    }
    this.started = performance.now();
    const s: Pending = net.connect({
      host: backend.host,
      port: backend.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    s[ATTEMPTS] = this;
    s.pause();
    s.on('connect', onConnect);
    s.on('error', onError);
    this.socket = s;
    this.timer = setTimeout(onTimeout, this.timeoutMs, this);
  }

  readonly cancel = (): void => {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
  };

  /** Called by the listeners below. */
  connected(s: Pending): void {
    clearTimeout(this.timer);
    s.removeListener('connect', onConnect).removeListener('error', onError);
    s[ATTEMPTS] = undefined;
    this.done = true;
    this.handler.onConnected(s, this.backends[this.i - 1]!, performance.now() - this.started);
  }

  fail(code: string): void {
    clearTimeout(this.timer);
    const s = this.socket!;
    s.removeListener('connect', onConnect).removeListener('error', onError);
    s.destroy();
    this.socket = undefined;
    const backend = this.backends[this.i - 1]!;
    this.handler.onConnectFailure({ backend, code, ms: performance.now() - this.started });
    this.next();
  }
}

// Listeners shared by every attempt: `this` is the socket being connected.

function onConnect(this: Pending): void {
  this[ATTEMPTS]!.connected(this);
}

function onError(this: Pending, err: NodeJS.ErrnoException): void {
  this[ATTEMPTS]!.fail(err.code ?? 'EUNKNOWN');
}

function onTimeout(a: Attempts): void {
  a.fail('ETIMEDOUT');
}
