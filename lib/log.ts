// Logging with pino: JSON lines by default, pino-pretty on a terminal; one line per connection.
import pino, { type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { LogConfig } from './config/types.js';
import type { Connection } from './connection.js';

export type { Logger };

/** Bytes of log lines held while stdout's reader is behind; past this, new lines are dropped and counted. */
export const LOG_BUFFER_BYTES = 1024 * 1024;

type Destination = ReturnType<typeof pino.destination>;

/**
 * Where log lines go: stdout, written asynchronously through a bounded buffer. A reader that stops (a
 * stuck journald, `| less`, a paused container log driver) costs log lines, never relaying: the lines
 * that do not fit are dropped and counted, and once the reader is back one line says how many.
 */
export class LogOutput {
  /** Lines dropped since start. */
  dropped = 0;
  readonly stream: Destination;
  /** Dropped lines not yet reported in the log. */
  private unreported = 0;
  private logger: Logger | undefined;
  /** performance.now() after which a stalled write gives up: only set at exit. */
  private giveUpAt = Number.POSITIVE_INFINITY;
  /** Lines were written since the stream last drained: an asynchronous write may be in flight. */
  private pending = false;

  constructor(fd = 1, bufferBytes = LOG_BUFFER_BYTES) {
    // Libuv makes stdout non-blocking once Node opens it as a stream (pipe, socket or terminal): a full
    // pipe then answers EAGAIN, which the writer retries on a timer, instead of blocking a thread.
    if (fd === 1) void process.stdout.isTTY;
    this.stream = pino.destination({
      dest: fd,
      sync: false,
      // Each line goes out as soon as the previous write is done: no batching delay, no flush timer.
      minLength: 0,
      maxLength: bufferBytes,
      retryEAGAIN: () => performance.now() < this.giveUpAt,
    });
    this.stream.on('drop', () => {
      this.dropped++;
      this.unreported++;
    });
    // The buffer emptied: the reader is back.
    this.stream.on('drain', () => {
      this.pending = false;
      if (this.unreported === 0 || this.logger === undefined) return;
      const n = this.unreported;
      this.unreported = 0;
      this.logger.warn(
        { dropped: n, dropped_total: this.dropped },
        'log lines dropped: stdout was not being read',
      );
    });
    // A reader that closed the pipe (EPIPE): lines stay buffered, then are dropped at the bound.
    this.stream.on('error', () => {
      this.pending = false;
    });
  }

  /** Writes one formatted line (or drops and counts it when the buffer is full). */
  write(line: string): void {
    this.pending = true;
    this.stream.write(line);
  }

  /** The logger whose lines go here, for the dropped-lines report. */
  reportTo(logger: Logger): void {
    this.logger = logger;
  }

  /**
   * At exit: writes what is buffered, waiting at most `ms` for a stalled reader. The write in flight runs
   * on libuv's thread pool, which process.exit does not wait for, so it is awaited here: a synchronous
   * flush alone lost the last line ('stopped') whenever that line was the one in flight.
   */
  async flush(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    if (this.pending) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.stream.off('drain', done);
          this.stream.off('error', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        this.stream.once('drain', done);
        this.stream.once('error', done);
      });
    }
    // Only reached with lines still buffered when the reader stalled: give it what is left of `ms`.
    this.giveUpAt = deadline;
    try {
      this.stream.flushSync();
    } catch {
      // The reader did not come back in time: what is left is lost with the process.
    }
  }
}

/** A pino logger writing to `output` (stdout); pretty when asked, or when auto and stdout is a terminal. */
export function createLogger(cfg: LogConfig, output = new LogOutput()): Logger {
  const pretty = cfg.format === 'pretty' || (cfg.format === 'auto' && process.stdout.isTTY === true);
  const options = { level: cfg.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  // Formatted in this thread, pretty or not: a pino transport would format in a worker thread and lose
  // the last lines at exit, and a piped pretty stream would queue without bound behind a stalled reader.
  // The caller flushes the output before exiting.
  let dest: { write(line: string): void } = output;
  if (pretty) {
    const prettify = prettyFactory({
      colorize: process.stdout.isTTY === true,
      translateTime: 'SYS:standard',
      ignore: 'pid',
      // One line per event, like the JSON: a connection's line stays one line in a terminal too.
      singleLine: true,
    });
    dest = { write: (line) => output.write(prettify(line)) };
  }
  const logger = pino(options, dest);
  output.reportTo(logger);
  return logger;
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
    sni: capText(c.sni),
    alpn: c.alpn === undefined ? undefined : capAlpn(c.alpn),
    alpn_count: c.alpn !== undefined && c.alpn.length > MAX_LOGGED_ALPN ? c.alpn.length : undefined,
    host: capText(c.host),
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
    detail: c.detail,
  };
}

/**
 * Bounds on what a stranger's hello puts in a line: a 64 KiB ClientHello can carry thousands of ALPN
 * names (one made a 288 KB line). Names and counts past these are cut; alpn_count says how many were sent.
 */
const MAX_LOGGED_ALPN = 8;
const MAX_LOGGED_ALPN_LENGTH = 32;
/** Host names are at most 253 bytes; anything longer is cut there. */
const MAX_LOGGED_NAME = 253;

function capText(s: string | undefined, max = MAX_LOGGED_NAME): string | undefined {
  return s === undefined || s.length <= max ? s : `${s.slice(0, max)}…`;
}

function capAlpn(alpn: readonly string[]): readonly string[] {
  if (alpn.length <= MAX_LOGGED_ALPN && alpn.every((a) => a.length <= MAX_LOGGED_ALPN_LENGTH)) return alpn;
  return alpn.slice(0, MAX_LOGGED_ALPN).map((a) => capText(a, MAX_LOGGED_ALPN_LENGTH)!);
}

function round(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms * 1000) / 1000;
}
