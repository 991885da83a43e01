// The admin HTTP listener: /metrics for Prometheus, /healthz for load balancers, the status page and its JSON.
import http from 'node:http';
import type net from 'node:net';
import type { Cidr, Endpoint } from '../config/types.js';
import { anyCidrContains, ipBytes } from '../net/ip.js';
import { STATUS_PAGE, STATUS_PAGE_CSP } from '../status/page.js';
import { DEFAULT_LIMIT, MAX_LIMIT } from '../status/report.js';

/** What the admin listener serves; Metrics provides it. */
export interface ExpositionSource {
  exposition(): Promise<{ contentType: string; body: string }>;
}

/** The status page's data (lib/status/report.ts) and who may see anything at all. */
export interface StatusSource {
  /** [admin] allow of the config in force; undefined: every peer that can reach the listener. */
  allow(): readonly Cidr[] | undefined;
  status(limit: number): unknown;
  connections(limit: number): unknown;
  routes(): unknown;
}

const JSON_TYPE = 'application/json; charset=utf-8';

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
    private readonly pages?: StatusSource,
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
    const allow = this.pages?.allow();
    if (allow !== undefined) {
      const peer = ipBytes(req.socket.remoteAddress ?? '');
      if (peer === undefined || !anyCidrContains(allow, peer)) {
        res.setHeader('Connection', 'close');
        reply(res, 403, 'forbidden: this address is not in [admin] allow\n');
        return;
      }
    }
    const page = this.pages === undefined ? undefined : PAGES.get(path);
    if (path !== '/metrics' && path !== '/healthz' && page === undefined) {
      reply(res, 404, `not found: try ${this.pages === undefined ? '' : '/, '}/metrics or /healthz\n`);
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
    if (page !== undefined) {
      const limit = readLimit(q === -1 ? '' : url.slice(q + 1));
      if (limit === undefined) reply(res, 400, `limit must be a whole number from 0 to ${MAX_LIMIT}\n`);
      else page(res, this.pages!, limit);
      return;
    }
    this.source.exposition().then(
      ({ contentType, body }) => reply(res, 200, body, contentType),
      (err: unknown) =>
        reply(res, 500, `cannot collect metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  };
}

type Page = (res: http.ServerResponse, pages: StatusSource, limit: number) => void;

/**
 * The status page and its JSON, by path; nothing a client sends is echoed unescaped. A Map, not an
 * object: a path like "/__proto__" or "constructor" must find nothing.
 */
const PAGES: ReadonlyMap<string, Page> = new Map<string, Page>([
  [
    '/',
    (res) => {
      res.setHeader('Content-Security-Policy', STATUS_PAGE_CSP);
      res.setHeader('X-Frame-Options', 'DENY');
      reply(res, 200, STATUS_PAGE, 'text/html; charset=utf-8');
    },
  ],
  ['/status', (res, pages, limit) => replyJson(res, pages.status(limit))],
  ['/connections', (res, pages, limit) => replyJson(res, pages.connections(limit))],
  ['/routes', (res, pages) => replyJson(res, pages.routes())],
]);

/** A report, or the promise of one (the primary of `workers > 1` asks its workers: lib/workers). */
function replyJson(res: http.ServerResponse, value: unknown): void {
  if (!(value instanceof Promise)) {
    reply(res, 200, JSON.stringify(value), JSON_TYPE);
    return;
  }
  value.then(
    (v: unknown) => reply(res, 200, JSON.stringify(v), JSON_TYPE),
    (err: unknown) =>
      reply(res, 500, `cannot collect the report: ${err instanceof Error ? err.message : String(err)}\n`),
  );
}

/** `limit` from a query string: the default when absent, capped at MAX_LIMIT, undefined when not a number. */
function readLimit(query: string): number | undefined {
  const text = new URLSearchParams(query).get('limit');
  if (text === null || text === '') return DEFAULT_LIMIT;
  if (!/^[0-9]{1,9}$/.test(text)) return undefined;
  return Math.min(Number(text), MAX_LIMIT);
}

function reply(
  res: http.ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  if (res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    // The state changes every second, and a JSON answer must never be read as a page.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  // HEAD: node:http sends the headers only.
  res.end(body);
}
