// Helpers for the workers = N tests: a two-worker config, connections until every worker has served.
import { readFileSync } from 'node:fs';
import { exchange } from './clients.js';
import { connectionLine, type LogLine, type MuxProcess } from './mux.js';
import { freePort } from './programs.js';

export const PROBE = Buffer.from('\xffprobe', 'latin1');
/** The kernel spreads connections by a hash of the client's port: this many make missing a worker absurd. */
export const MAX_CONNECTIONS = 400;

/** A config with `workers = 2` on a fixed free port (port 0 is refused with workers > 1). */
export async function workersToml(
  ...parts: string[]
): Promise<{ toml: (...p: string[]) => string; text: string }> {
  const port = await freePort();
  const toml = (...p: string[]): string =>
    [`listen = ["127.0.0.1:${port}"]`, 'workers = 2', ...p]
      .map((s) => (s.endsWith('\n') ? s : `${s}\n`))
      .join('');
  return { toml, text: toml(...parts) };
}

/**
 * Sends probes one after another until connection lines from every worker pid in `pids` were seen,
 * at most MAX_CONNECTIONS; returns each connection's reply and line.
 */
export async function spread(
  mux: MuxProcess,
  pids: readonly number[],
): Promise<{ replies: string[]; lines: LogLine[]; seen: Set<number> }> {
  const replies: string[] = [];
  const lines: LogLine[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < MAX_CONNECTIONS && pids.some((p) => !seen.has(p)); i++) {
    const ex = await exchange(mux.port, PROBE);
    replies.push(ex.reply.toString().split(' ')[0] ?? '');
    const line = await connectionLine(mux, ex.localPort);
    lines.push(line);
    seen.add(line.pid as number);
  }
  return { replies, lines, seen };
}

/** A line the primary itself wrote (the workers' lines have their own pid). */
export const fromPrimary = (mux: MuxProcess, msg: string) => (l: LogLine) =>
  l.msg === msg && l.pid === mux.pid;

/** Sockets listening on 127.0.0.1:port, from /proc/net/tcp (state 0A is LISTEN). */
export function listeningSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === local && f[3] === '0A';
    }).length;
}

export function startedLine(mux: MuxProcess): LogLine {
  return mux.logs.find(fromPrimary(mux, 'sni-mux started'))!;
}
