// The js data plane: Node's net.Socket for both sides and lib/relay for the bytes. It runs where the
// addon is not built, and when the config says data_plane = "js".
import net from 'node:net';
import type { Endpoint } from '../config/types.js';
import type { ConnectHandler } from '../connect/attempts.js';
import { connectBackend } from '../connect/connector.js';
import { Relay } from '../relay/relay.js';
import { netHasReusePort, reusePortWanted } from '../workers/reuseport.js';
import type {
  AcceptHandler,
  ClientSide,
  DataPlane,
  DetectOwner,
  PlaneListener,
  RelayOwner,
  RelayView,
} from './types.js';

export class JsPlane implements DataPlane {
  readonly name = 'js';

  listen(e: Endpoint, onAccept: AcceptHandler): Promise<PlaneListener> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true });
      server.on('connection', (socket) => onAccept(new JsClient(socket), e.text));
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen on ${e.text}: ${err.code ?? err.message}`, { cause: err }));
      };
      server.once('error', onError);
      // ipv6Only so "[::]:443" and "0.0.0.0:443" can both be listed, as nginx and HAProxy allow.
      const options: net.ListenOptions & { reusePort?: boolean } = {
        host: e.host,
        port: e.port,
        ipv6Only: e.host.includes(':'),
        backlog: 511,
      };
      // A worker binds its own SO_REUSEPORT socket (exclusive: not the primary's shared handle) where net can.
      if (reusePortWanted() && netHasReusePort())
        Object.assign(options, { reusePort: true, exclusive: true });
      server.listen(options, () => {
        server.removeListener('error', onError);
        server.on('error', () => {
          // An accept error (EMFILE…) must not kill the process; Node keeps the server listening.
        });
        resolve({
          address: () => {
            const a = server.address();
            return a !== null && typeof a === 'object' ? a : null;
          },
          close: () => server.close(),
        });
      });
    });
  }
}

/** The accepted socket points back to its owner, for the shared listeners. */
const OWNER = Symbol('sni-mux.owner');
type ClientSocket = net.Socket & { [OWNER]?: DetectOwner };

class JsClient implements ClientSide, ConnectHandler {
  readonly remoteAddress: string;
  readonly remotePort: number;
  private backend: net.Socket | undefined;
  private handler: ConnectHandler | undefined;

  constructor(readonly socket: ClientSocket) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  hold(owner: DetectOwner): void {
    this.socket[OWNER] = owner;
    this.socket.on('error', onHeldError).on('close', onClose);
  }

  startDetect(owner: DetectOwner): void {
    const c = this.socket;
    c.removeListener('error', onHeldError).removeListener('close', onClose);
    c.setNoDelay(true);
    c.setKeepAlive(true, KEEPALIVE_MS);
    c[OWNER] = owner;
    c.on('data', onData);
    c.on('end', onEnd);
    c.on('error', onError);
    c.on('close', onClose);
  }

  connect(backends: readonly Endpoint[], timeoutMs: number, handler: ConnectHandler): () => void {
    const c = this.socket;
    c.pause();
    c.removeListener('data', onData);
    // onEnd stays until the relay starts: a paused socket with nothing buffered still emits 'end'.
    this.handler = handler;
    return connectBackend(backends, timeoutMs, this);
  }

  onConnectFailure(...args: Parameters<ConnectHandler['onConnectFailure']>): void {
    this.handler!.onConnectFailure(...args);
  }

  onAllFailed(): void {
    this.handler!.onAllFailed();
  }

  onConnected(backend: Endpoint, ms: number, socket?: net.Socket): void {
    this.backend = socket!;
    this.backend.setKeepAlive(true, KEEPALIVE_MS);
    this.handler!.onConnected(backend, ms, socket);
  }

  relay(
    header: Uint8Array | undefined,
    head: Uint8Array,
    clientEnded: boolean,
    idleMs: number,
    owner: RelayOwner,
  ): RelayView {
    const c = this.socket;
    c.removeListener('end', onEnd);
    c.removeListener('error', onError);
    c.removeListener('close', onClose);
    const backend = this.backend!;
    this.backend = undefined;
    const relay = new Relay(c, backend, owner);
    // Corked, the header and the peeked bytes leave in one segment; the header is not counted as client bytes.
    if (header !== undefined) {
      backend.cork();
      backend.write(header);
    }
    relay.start(head, clientEnded, idleMs);
    if (header !== undefined) backend.uncork();
    return relay;
  }

  destroy(reply?: Readonly<Uint8Array>): void {
    const c = this.socket;
    if (reply === undefined || reply.length === 0) {
      c.destroy();
      return;
    }
    // Later bytes are dropped unread; the socket goes once the reply is handed to the kernel.
    c.removeListener('data', onData);
    c.once('finish', destroySocket);
    c.end(reply);
  }
}

function destroySocket(this: net.Socket): void {
  this.destroy();
}

// Listeners shared by every client rather than four closures each, which would live as long as the
// connection (docs/performance.md): `this` is the client socket, which points back to its owner.

function onData(this: ClientSocket, chunk: Buffer): void {
  this[OWNER]!.onDetectData(chunk);
}

function onEnd(this: ClientSocket): void {
  this[OWNER]!.onDetectEnd();
}

function onError(this: ClientSocket, err: NodeJS.ErrnoException): void {
  this[OWNER]!.onEarlyError(err);
}

function onHeldError(): void {
  // The 'close' that follows refuses the connection.
}

function onClose(this: ClientSocket): void {
  this[OWNER]!.onEarlyClose();
}

/** Probe dead peers after a minute of silence, so a vanished client doesn't hold a backend. */
const KEEPALIVE_MS = 60_000;
