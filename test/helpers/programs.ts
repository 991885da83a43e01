// Real programs for interop tests: find them (or say why a test skips), run them, start daemons and stop them.
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Test } from 'tap';

/** The Debian package a program comes from, for skip messages (the same names as in .ci/run). */
const PACKAGES: Readonly<Record<string, string>> = {
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  'gnutls-cli': 'gnutls-bin',
  gtlsclient: 'ngtcp2-client',
  gtlsserver: 'ngtcp2-server',
  python3: 'python3',
};

/** sshd, nginx and openvpn live in sbin, which a non-root PATH often lacks. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * Programs to treat as missing, comma-separated: `SNIMUX_TEST_WITHOUT=nginx,gnutls-cli npm test`
 * checks that the tests needing them skip cleanly (and that fallbacks work) on a box that has them.
 */
const WITHOUT = new Set(
  (process.env.SNIMUX_TEST_WITHOUT ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
);

/** Absolute path of an executable, like `which` (PATH, then the sbin directories), or undefined. */
export function findProgram(name: string): string | undefined {
  if (WITHOUT.has(name)) return undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Like findProgram, for a program the caller has already checked with `missing`. */
export function program(name: string): string {
  const file = findProgram(name);
  if (file === undefined)
    throw new Error(`${name} not found on PATH or in sbin; check missing('${name}') first`);
  return file;
}

/**
 * A tap skip message naming the missing programs and their Debian packages, or false when all are
 * installed: `t.test('…', { skip: missing('sshd', 'ssh') }, …)`.
 */
export function missing(...names: string[]): string | false {
  const absent = names.filter((n) => findProgram(n) === undefined);
  if (absent.length === 0) return false;
  const pkgs = [...new Set(absent.map((n) => PACKAGES[n] ?? n))];
  return `${absent.join(', ')} not installed (apt-get install ${pkgs.join(' ')})`;
}

/** A fresh directory under the system temp dir, removed when the test ends. */
export function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `snimux-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Where freePorts looks: the 12,000 ports just below the kernel's ephemeral range. A port from port 0
 * is an ephemeral one, and between our check and the daemon's bind any outgoing connection on the box
 * may take it as its source port: the soak makes 100,000 of those a minute beside the other test files
 * (tap runs two at once), and a daemon or a workers = 2 mux then fails with EADDRINUSE. Below the
 * range, only an explicit bind takes a port.
 */
function unassignedRange(): [number, number] {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (low > 13_000) return [low - 12_000, low - 1];
  } catch {
    // Not Linux: fall back to port 0 below.
  }
  return [0, 0];
}
const UNASSIGNED = unassignedRange();

/** A port bound for a moment, to learn that it is free. */
interface Held {
  port: number;
  close(): Promise<void>;
}

/** Binds a TCP listener on port (0: the kernel picks), or rejects with the bind error. */
function holdTcp(port: number, host: string): Promise<Held> {
  const s = net.createServer();
  return new Promise<Held>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ port, host, exclusive: true }, () =>
      resolve({
        port: (s.address() as net.AddressInfo).port,
        close: () => new Promise<void>((done) => s.close(() => done())),
      }),
    );
  });
}

/** Binds a UDP socket on port (0: the kernel picks), or rejects with the bind error. */
function holdUdp(port: number, host: string): Promise<Held> {
  const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise<Held>((resolve, reject) => {
    s.once('error', reject);
    s.bind({ port, address: host, exclusive: true }, () =>
      resolve({ port: s.address().port, close: () => new Promise<void>((done) => s.close(() => done())) }),
    );
  });
}

/**
 * n distinct ports that bind() took a moment ago, from below the ephemeral range (see unassignedRange)
 * and from a random start, so that test files running at the same time rarely look at the same ports.
 * All n are held together so they differ.
 */
async function heldPorts(n: number, hold: (port: number) => Promise<Held>): Promise<number[]> {
  const held: Held[] = [];
  const [low, high] = UNASSIGNED;
  const span = high - low + 1;
  let candidate = low + Math.floor(Math.random() * span);
  try {
    for (let tries = 0; held.length < n; tries++) {
      if (high === 0) {
        held.push(await hold(0));
        continue;
      }
      if (tries >= span) throw new Error(`no free port in ${low}-${high}`);
      const port = low + ((candidate++ - low) % span);
      try {
        held.push(await hold(port));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    return held.map((h) => h.port);
  } finally {
    await Promise.all(held.map((h) => h.close()));
  }
}

/**
 * n distinct TCP ports that were free a moment ago, for daemons that cannot bind port 0 and report it
 * (sshd, openssl s_server, nginx, openvpn), and for a workers = 2 mux.
 */
export function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  return heldPorts(n, (port) => holdTcp(port, host));
}

/** A UDP port on host that was free a moment ago. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return (await heldPorts(1, (port) => holdUdp(port, host)))[0]!;
}

/** A port that was free a moment ago on `host`: bound to port 0, then closed. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0]!;
}

/** Whether this box can listen on [::1] (containers often run without IPv6, even on loopback). */
export async function hasIpv6Loopback(): Promise<boolean> {
  try {
    await freePorts(1, '::1');
    return true;
  } catch {
    return false;
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  /** stdout as UTF-8. */
  text: string;
  /** True if the run was killed for taking longer than timeoutMs. */
  timedOut: boolean;
}

export interface RunOptions {
  /** Written to stdin, which is then closed. Without it stdin is closed at once. */
  input?: string | Buffer | undefined;
  /** Bound on the run: SIGKILL after this long (default 30 s). A guard against hangs, not a test threshold. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a client program to completion, like execFile, with stdin input and stdout kept as bytes. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env, cwd: opts.cwd });
    const out: Buffer[] = [];
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    proc.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    // A client that exits before reading all its input is the test's business, not an exception.
    proc.stdin.on('error', () => {});
    proc.stdin.end(opts.input);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${file}: ${err.message}`));
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out);
      resolve({ code, signal, stdout, stderr, text: stdout.toString('utf8'), timedOut });
    });
  });
}

export interface Daemon {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Everything the daemon wrote so far, stdout and stderr interleaved as they arrived. */
  readonly output: string;
  /**
   * Resolves with the first match of re in the output from offset `from` on (already written or
   * to come); rejects, with the output, if the daemon exits first.
   */
  waitFor(re: RegExp, from?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or null if killed by a signal) once the daemon has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL to its process group if it has not exited within 5 s. */
  stop(): Promise<number | null>;
}

export interface DaemonOptions {
  /** Output that says the daemon is ready (listening): startDaemon resolves once it appears. */
  ready: RegExp;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Daemons still running, killed if the test process exits without its teardowns (a crash, a timeout). */
const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Starts a daemon in the foreground as a child of the test, in its own process group (so nginx's
 * workers go with it), and waits for its ready line. The test's teardown stops it.
 */
export async function startDaemon(
  t: Test,
  file: string,
  args: readonly string[],
  opts: DaemonOptions,
): Promise<Daemon> {
  const name = file.slice(file.lastIndexOf('/') + 1);
  const proc = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
  });
  let output = '';
  let ended: string | undefined;
  type Waiter = {
    re: RegExp;
    from: number;
    resolve: (m: RegExpExecArray) => void;
    reject: (e: Error) => void;
  };
  const waiters: Waiter[] = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      const m = w.re.exec(output.slice(w.from));
      if (m) {
        waiters.splice(i, 1);
        w.resolve(m);
      }
    }
  };
  const onData = (s: string): void => {
    output += s;
    check();
  };
  proc.stdout!.setEncoding('utf8').on('data', onData);
  proc.stderr!.setEncoding('utf8').on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    const finish = (code: number | null, why: string): void => {
      if (ended !== undefined) return;
      ended = why;
      live.delete(proc.pid ?? -1);
      for (const w of waiters.splice(0)) {
        w.reject(new Error(`${name} ${why} before printing ${w.re}; its output:\n${output}`));
      }
      resolve(code);
    };
    proc.on('error', (err) => finish(null, `failed to start (${err.message})`));
    proc.on('close', (code, signal) => finish(code, `exited (${code ?? signal})`));
  });
  if (proc.pid !== undefined) live.add(proc.pid);

  const waitFor = (re: RegExp, from = 0): Promise<RegExpExecArray> => {
    const m = re.exec(output.slice(from));
    if (m) return Promise.resolve(m);
    if (ended !== undefined) {
      return Promise.reject(new Error(`${name} ${ended} before printing ${re}; its output:\n${output}`));
    }
    return new Promise((resolve, reject) => waiters.push({ re, from, resolve, reject }));
  };
  const running = (): boolean => ended === undefined;
  const stop = async (): Promise<number | null> => {
    if (running()) {
      proc.kill('SIGTERM');
      const guard = setTimeout(() => {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await exited;
      clearTimeout(guard);
    }
    return exited;
  };
  t.teardown(stop);

  await waitFor(opts.ready);
  return {
    name,
    proc,
    pid: proc.pid!,
    get output() {
      return output;
    },
    waitFor,
    exited,
    stop,
  };
}
