// The js data plane's connect: net.connect to each backend in turn (it looks names up per attempt).
import net from 'node:net';
import type { Endpoint } from '../config/types.js';
import { BackendAttempts, type ConnectHandler } from './attempts.js';

/** Tries backends in order; returns a cancel function for when the client goes away mid-connect. */
export function connectBackend(
  backends: readonly Endpoint[],
  timeoutMs: number,
  handler: ConnectHandler,
): () => void {
  const a = new SocketAttempts(backends, timeoutMs, handler);
  a.next();
  return a.cancel;
}

/** The socket being connected points back to its attempts, so the handlers are shared, not closures. */
const ATTEMPTS = Symbol('sni-mux.attempts');
type Pending = net.Socket & { [ATTEMPTS]?: SocketAttempts | undefined };

class SocketAttempts extends BackendAttempts {
  private socket: Pending | undefined;

  protected dial(backend: Endpoint): void {
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
  }

  protected abandon(): void {
    const s = this.socket;
    if (s === undefined) return;
    this.socket = undefined;
    release(s);
    s.destroy();
  }

  /** Called by onConnect below. */
  connected(s: Pending): void {
    this.socket = undefined;
    release(s);
    this.succeed(s);
  }
}

function release(s: Pending): void {
  s.removeListener('connect', onConnect).removeListener('error', onError);
  s[ATTEMPTS] = undefined;
}

// Listeners shared by every attempt: `this` is the socket being connected.

function onConnect(this: Pending): void {
  this[ATTEMPTS]!.connected(this);
}

function onError(this: Pending, err: NodeJS.ErrnoException): void {
  this[ATTEMPTS]!.fail(err.code ?? 'EUNKNOWN');
}
