// The admin HTTP listener: GET /metrics for Prometheus and GET /healthz for load balancers and probes.
import http from 'node:http';
import type net from 'node:net';
import type { Endpoint } from './config/types.js';

/** What the admin listener serves; Metrics provides it. */
export interface ExpositionSource {
  exposition(): Promise<{ contentType: string; body: string }>;
}

/** Enough for scrapers and probes; more waiting clients are refused, not queued. */
const MAX_ADMIN_CONNECTIONS = 64;
/** A request must arrive whole within this, so a slow client cannot hold a socket. */
const REQUEST_TIMEOUT_MS = 10_000;
const ALLOW = 'GET, HEAD';

export class AdminServer {
  private readonly server: http.Server;
  private draining = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly source: ExpositionSource,
    private readonly onError: (err: Error) => void = () => {},
  ) {
    this.server = http.createServer(
      { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS },
      this.handle,
    );
    this.server.maxConnections = MAX_ADMIN_CONNECTIONS;
    this.server.keepAliveTimeout = 5_000;
    // Malformed requests get a 400 when the socket can still take one; they never reach handle().
    this.server.on('clientError', (_err: Error, socket: net.Socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  /** Binds the admin address; rejects with the address and errno text if it cannot. */
  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new Error(`cannot listen on admin address ${this.endpoint.text}: ${err.code ?? err.message}`));
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.endpoint.host, port: this.endpoint.port }, () => {
        this.server.removeListener('error', onError);
        this.server.on('error', this.onError);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  /** From now on /healthz answers 503, so a load balancer stops sending new clients. */
  setDraining(): void {
    this.draining = true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== '/metrics' && path !== '/healthz') {
      reply(res, 404, 'not found: try /metrics or /healthz\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', ALLOW);
      reply(res, 405, `method ${req.method} not allowed: use GET or HEAD\n`);
      return;
    }
    if (path === '/healthz') {
      if (this.draining) reply(res, 503, 'draining\n');
      else reply(res, 200, 'ok\n');
      return;
    }
    this.source.exposition().then(
      ({ contentType, body }) => reply(res, 200, body, contentType),
      (err: unknown) =>
        reply(res, 500, `cannot collect metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  };
}

function reply(
  res: http.ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  // HEAD: node:http sends the headers only.
  res.end(body);
}
