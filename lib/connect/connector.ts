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
  let i = 0;
  let socket: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  let done = false;

  const fail = (code: string): void => {
    clearTimeout(timer);
    socket?.removeListener('connect', onConnect).removeListener('error', onError);
    socket?.destroy();
    socket = undefined;
    const backend = backends[i - 1]!;
    handler.onConnectFailure({ backend, code, ms: elapsed() });
    attempt();
  };
  const onError = (err: NodeJS.ErrnoException): void => fail(err.code ?? 'EUNKNOWN');
  const onTimeout = (): void => fail('ETIMEDOUT');
  const onConnect = (): void => {
    clearTimeout(timer);
    const s = socket!;
    s.removeListener('connect', onConnect).removeListener('error', onError);
    done = true;
    handler.onConnected(s, backends[i - 1]!, elapsed());
  };
  const elapsed = (): number => performance.now() - started;

  function attempt(): void {
    if (done) return;
    const backend = backends[i++];
    if (backend === undefined) {
      done = true;
      handler.onAllFailed();
      return;
    }
    started = performance.now();
    socket = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    socket.pause();
    socket.once('connect', onConnect);
    socket.on('error', onError);
    timer = setTimeout(onTimeout, timeoutMs);
  }

  attempt();
  return () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    socket?.destroy();
  };
}
