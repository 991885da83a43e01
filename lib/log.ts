// Logging with pino: JSON lines by default, pino-pretty on a terminal; one line per connection.
import pino, { type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogConfig } from './config/types.js';
import type { Connection } from './connection.js';

export type { Logger };

/** A pino logger writing to stdout; pretty when asked, or when auto and stdout is a terminal. */
export function createLogger(cfg: LogConfig): Logger {
  const pretty = cfg.format === 'pretty' || (cfg.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: cfg.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  // Synchronous writes, pretty or not: a line is on stdout before the process can exit or be killed
  // (a pino transport would format in a worker thread and lose the last lines at exit).
  if (pretty) {
    const stream = pinoPretty({
      colorize: process.stdout.isTTY === true,
      translateTime: 'SYS:standard',
      ignore: 'pid',
      // One line per event, like the JSON: a connection's line stays one line in a terminal too.
      singleLine: true,
      sync: true,
      destination: 1,
    });
    return pino(options, stream);
  }
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

/** The fields of the one line written when a connection ends, relayed or refused. */
export function connectionFields(c: Connection): Record<string, unknown> {
  const end = c.closedAt ?? performance.now();
  return {
    conn: c.id,
    client: c.clientAddress,
    client_port: c.clientPort,
    proxy_peer: c.proxyPeer,
    proxy_peer_port: c.proxyPeerPort,
    listener: c.listener,
    protocol: c.protocol,
    sni: c.sni,
    alpn: c.alpn,
    host: c.host,
    route: c.route?.name,
    backend: c.backend?.text,
    bytes_client_to_backend: c.bytesUp,
    bytes_backend_to_client: c.bytesDown,
    detect_ms: round(c.detectMs),
    connect_ms: round(c.connectMs),
    duration_ms: round(end - c.acceptedAt),
    end: c.end,
    reject: c.reject,
    code: c.code,
  };
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 1000) / 1000;
}
