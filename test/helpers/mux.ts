// Starts a real sni-mux process from dist/bin for a test and reads its JSON log lines.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Test } from 'tap';
import { tempDir } from './programs.js';

export const BIN = new URL('../../dist/bin/sni-mux.js', import.meta.url).pathname;

/** The data plane a mux started here runs: SNI_MUX_DATA_PLANE, else the default, native where built. */
export function expectedPlane(): 'native' | 'js' {
  const forced = process.env.SNI_MUX_DATA_PLANE;
  if (forced === 'native' || forced === 'js') return forced;
  const addon =
    process.env.SNI_MUX_ADDON ?? new URL('../../build/Release/sni_mux.node', import.meta.url).pathname;
  return existsSync(addon) ? 'native' : 'js';
}

export type LogLine = Record<string, unknown> & { msg: string; level: number };

export interface MuxProcess {
  proc: ChildProcess;
  pid: number;
  /** Port of the first listener. */
  port: number;
  /** Bound ports by listen text, in config order. */
  ports: number[];
  /** Bound UDP ports (listen_udp), in config order. */
  udpPorts: number[];
  configFile: string;
  logs: LogLine[];
  stderr: string;
  /** Resolves with the first log line (already seen or future) that satisfies pred. */
  waitForLog(pred: (l: LogLine) => boolean): Promise<LogLine>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Every mux still running: tap skips teardown when a test times out, so an exit hook kills them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/**
 * Writes the TOML to a temp file and runs `sni-mux --config` on it; the test's teardown stops it.
 * `wrapper` runs it through another command that ends by exec-ing its arguments (same pid).
 */
export async function startMux(
  t: Test,
  toml: string,
  extraArgs: string[] = [],
  wrapper: string[] = [],
): Promise<MuxProcess> {
  const dir = tempDir(t, 'mux');
  const configFile = join(dir, 'mux.toml');
  writeFileSync(configFile, toml);
  const argv = [...wrapper, process.execPath, BIN, '--config', configFile, ...extraArgs];
  const proc = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  createInterface({ input: proc.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(line)) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  const waitForLog = (pred: (l: LogLine) => boolean): Promise<LogLine> => {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => waiters.push({ pred, resolve }));
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  running.add(proc);
  proc.on('exit', () => running.delete(proc));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });

  const started = await Promise.race([
    waitForLog((l) => l.msg === 'sni-mux started'),
    exited.then((code) => {
      throw new Error(`sni-mux exited with ${code} before starting:\n${stderr}`);
    }),
  ]);
  const listeners = started.listeners as { port: number }[];
  return {
    proc,
    pid: proc.pid!,
    port: listeners[0]!.port,
    ports: listeners.map((l) => l.port),
    udpPorts: ((started.udp_listeners ?? []) as { port: number }[]).map((l) => l.port),
    configFile,
    logs,
    get stderr() {
      return stderr;
    },
    waitForLog,
    exited,
    stop,
  };
}

/** Waits for the one log line of a finished connection with the given client port. */
export function connectionLine(mux: MuxProcess, clientPort: number): Promise<LogLine> {
  return mux.waitForLog(
    (l) => l.client_port === clientPort && (l.end !== undefined || l.reject !== undefined),
  );
}

const taken = new WeakMap<MuxProcess, Set<LogLine>>();

/**
 * Waits for the next finished-connection line matching pred that no earlier call returned: for
 * clients whose local port is unknown (ssh, openssl, openvpn).
 */
export function nextConnectionLine(
  mux: MuxProcess,
  pred: (l: LogLine) => boolean = () => true,
): Promise<LogLine> {
  const done = taken.get(mux) ?? new Set<LogLine>();
  taken.set(mux, done);
  return mux.waitForLog((l) => {
    if (l.end === undefined && l.reject === undefined) return false;
    if (done.has(l) || !pred(l)) return false;
    // Taken as soon as it matches, so two waits pending at once never get the same line.
    done.add(l);
    return true;
  });
}

/** Open file descriptors of a process (Linux). */
export async function fdCount(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/**
 * The process's fd count once it is back down to `baseline`, or as it is after 10 s (a hang guard).
 * A connection's log line can come before its socket is closed: the js plane closes a refused client
 * once the reply (a TLS alert, say) is flushed, a loop turn later. Nothing outside the process signals
 * that close, so the count is read until it settles.
 */
export async function fdsBackTo(pid: number, baseline: number): Promise<number> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const n = await fdCount(pid);
    if (n <= baseline || performance.now() >= deadline) return n;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resident memory of a process (Linux /proc/PID/status VmRSS), in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
