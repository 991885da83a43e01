// The pid file: written once the listeners are bound, removed at exit, read by `sni-mux reload` to signal us.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/types.js';

export type PidFileRead =
  | { kind: 'ok'; pid: number }
  | { kind: 'error'; message: string; code?: string | undefined };

export type SignalResult = { kind: 'sent'; pid: number } | { kind: 'error'; message: string };

/** The pid file path from a config; a relative path is taken from the config file's folder. */
export function pidFilePath(config: Config): string | undefined {
  return config.pidFile === undefined ? undefined : resolve(dirname(config.file), config.pidFile);
}

/** "1234\n" → 1234. Pure: anything but one positive decimal number (and whitespace) is undefined. */
export function parsePid(text: string): number | undefined {
  const m = /^\s*([1-9][0-9]{0,9})\s*$/.exec(text);
  if (m === null) return undefined;
  const pid = Number(m[1]);
  return pid <= 0x7fffffff ? pid : undefined;
}

/**
 * Writes the pid atomically (temp file, then rename), so a reader never sees a half-written file.
 * Throws with the path and errno: a pid file that was asked for and cannot be written is a start-up error.
 */
export function writePidFile(path: string, pid = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    try {
      unlinkSync(tmp);
    } catch {
      // Nothing was written, or it is already gone.
    }
    throw new Error(`cannot write pid_file ${path}: ${code}`, { cause: err });
  }
}

/**
 * Removes the pid file if it still holds our pid: during an upgrade the new process may already
 * have written its own. Returns why it was left in place, or undefined when removed or not ours.
 */
export function removePidFile(path: string, pid = process.pid): string | undefined {
  const read = readPidFile(path);
  if (read.kind !== 'ok' || read.pid !== pid) return undefined;
  try {
    unlinkSync(path);
    return undefined;
  } catch (err) {
    // EACCES after dropping privileges: the folder belongs to root (see docs/operations.md).
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

export function readPidFile(path: string): PidFileRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist: is sni-mux running, with this pid_file?'
        : code === 'EACCES'
          ? 'permission denied: run as root or as the user sni-mux runs as'
          : `cannot read: ${code ?? (err as Error).message}`;
    return { kind: 'error', message: `pid file ${path} ${why}`, code };
  }
  const pid = parsePid(text);
  if (pid === undefined) {
    return { kind: 'error', message: `pid file ${path} does not hold a process id: ${JSON.stringify(text)}` };
  }
  return { kind: 'ok', pid };
}

/**
 * What process `pid` runs, from /proc; undefined where that cannot be read (not Linux, or gone).
 * Arguments are joined by spaces.
 */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * Reads the pid file and sends `signal` to that process; every failure comes back with what to do.
 * A pid that now belongs to another program is not signalled: after a crash the number may be reused,
 * and SIGHUP kills most programs.
 */
export function signalPidFile(
  path: string,
  signal: NodeJS.Signals,
  command: (pid: number) => string | undefined = commandLine,
): SignalResult {
  const read = readPidFile(path);
  if (read.kind === 'error') return read;
  const cmd = command(read.pid);
  if (cmd !== undefined && cmd !== '' && !cmd.includes('sni-mux')) {
    return {
      kind: 'error',
      message: `pid ${read.pid} (from ${path}) is not sni-mux but "${cmd.slice(0, 80)}": the pid file is stale; not signalled`,
    };
  }
  try {
    process.kill(read.pid, signal);
    return { kind: 'sent', pid: read.pid };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ESRCH'
        ? 'no such process: sni-mux is not running and the pid file is stale'
        : code === 'EPERM'
          ? 'permission denied: run as root or as the user sni-mux runs as'
          : (code ?? (err as Error).message);
    return { kind: 'error', message: `cannot send ${signal} to pid ${read.pid} (from ${path}): ${why}` };
  }
}

/**
 * Writes the pid file and removes it when the process exits, however it exits (but a kill -9).
 * onLeft hears why it had to be left behind.
 */
export function claimPidFile(path: string, onLeft: (path: string, code: string) => void): void {
  writePidFile(path);
  process.once('exit', () => {
    const why = removePidFile(path);
    if (why !== undefined) onLeft(path, why);
  });
}
