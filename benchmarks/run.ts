// Runs every benchmark figure for sni-mux, HAProxy, nginx, sslh-select and a direct connection in one run,
// and writes benchmarks/results/<date>.json and .md with absolute figures and ratios to HAProxy.
//
//   npm run bench -- [--figures micro,conn,rtt,bulk,idle]
//     [--peers direct,sni-mux,sni-mux-js,haproxy,haproxy-splice,nginx,sslh]
//                           [--repeat 3] [--seconds 5] [--bulk-mib 4096] [--idle 8000] [--no-pin] [--out DIR]
//                           [--ports 20000-29999]  (where relays listen: a range of its own on a shared box)
//
// Placement: the relay under test runs on CPU 0, the C load generator and C backend on CPU 1 (taskset),
// so the relay has a core to itself and nothing written in Node shares it.
// Run through tap's TypeScript loader, like the tests and the micro benchmarks (`npm run bench`).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const LOADGEN = join(HERE, 'loadgen', 'loadgen');
const BACKEND = join(HERE, 'loadgen', 'backend');
const HELLO_ECHO = join(ROOT, 'test/fixtures/clienthello/curl.bin'); // SNI a.example.com → echo
const HELLO_SINK = join(ROOT, 'test/fixtures/clienthello/openssl-sni-alpn.bin'); // SNI x.example.com → sink
// sni-mux runs its default (native) data plane; sni-mux-js the js one. haproxy-splice: option splice-auto.
const ALL_PEERS = ['direct', 'sni-mux', 'sni-mux-js', 'haproxy', 'haproxy-splice', 'nginx', 'sslh'] as const;
type Peer = (typeof ALL_PEERS)[number];
const ALL_FIGURES = ['micro', 'conn', 'rtt', 'bulk', 'idle'];
const MICRO = ['micro-clienthello.ts', 'micro-detect.ts', 'micro-route.ts'];

/** What the C load generator prints, per mode (its last JSON line), plus what this script adds. */
interface ConnRun {
  conn_per_s: number;
  p50_us: number;
  p99_us: number;
  total: number;
  errors: number;
  cpu_us_per_conn?: number;
}
interface RttRun {
  /** Round trips measured after the warm-up: 0 when the relay failed them. */
  rounds: number;
  p50_us: number | undefined;
  p99_us: number | undefined;
}
interface BulkRun {
  mib_per_s: number;
  ok: boolean;
  bytes: number;
  cpu_s_per_gib?: number;
}
interface IdleRun {
  ready: number;
  rss_before: number;
  rss_after: number;
  bytes_per_conn: number | undefined;
}
interface PeerRuns {
  conn: ConnRun[];
  rtt: RttRun[];
  bulk: BulkRun[];
  idle: IdleRun[];
  error?: string;
}
type Figure =
  | 'conn_per_s'
  | 'conn_p50_us'
  | 'conn_p99_us'
  | 'cpu_us_per_conn'
  | 'rtt_p50_us'
  | 'rtt_added_p50_us'
  | 'rtt_p99_us'
  | 'bulk_mib_s'
  | 'cpu_s_per_gib'
  | 'idle_kib_per_conn';
type Summary = Record<Exclude<Figure, 'rtt_added_p50_us'>, number | undefined> & {
  rtt_added_p50_us?: number | undefined;
  conn_errors: number;
  bulk_ok: boolean;
  idle_conns: number | undefined;
  noise: Record<'conn_per_s' | 'rtt_p50_us' | 'bulk_mib_s' | 'idle_kib_per_conn', number | undefined>;
};
type Facts = Awaited<ReturnType<typeof machineFacts>> & { loadavg_end?: number[] };
interface Result {
  date: string;
  machine: Facts;
  options: typeof opt;
  runs: Record<string, PeerRuns>;
  summary: Record<string, Summary>;
  micro?: Record<string, number>;
}
/** A relay started by startPeer(). */
interface Started {
  proc: ChildProcess;
  pids: () => number[];
}

const { values: opt } = parseArgs({
  options: {
    figures: { type: 'string', default: ALL_FIGURES.join(',') },
    peers: { type: 'string', default: ALL_PEERS.join(',') },
    repeat: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'bulk-mib': { type: 'string', default: '4096' },
    idle: { type: 'string', default: '8000' },
    'no-pin': { type: 'boolean', default: false },
    out: { type: 'string', default: join(HERE, 'results') },
    ports: { type: 'string', default: '20000-29999' },
  },
});
const figures = new Set(opt.figures.split(','));
const repeat = Number(opt.repeat);
const seconds = Number(opt.seconds);
const pin = !opt['no-pin'] && os.cpus().length >= 2;
const [PORT_LO = Number.NaN, PORT_HI = Number.NaN] = opt.ports.split('-').map(Number);
if (!(PORT_LO > 0 && PORT_HI >= PORT_LO && PORT_HI < 65536)) {
  console.error(`--ports ${opt.ports}: want LO-HI, two ports with LO <= HI`);
  process.exit(2);
}
const RELAY_CPU = '0';
const LOAD_CPU = '1';

/** Prefixes a command with taskset when pinning. */
function pinned(cpu: string, cmd: string, args: string[]): [string, string[]] {
  return pin ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

function median(xs: readonly (number | undefined)[]): number | undefined {
  const s = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

function spread(xs: readonly (number | undefined)[]): number | undefined {
  const s = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (s.length < 2) return undefined;
  const m = median(s);
  return m ? (Math.max(...s) - Math.min(...s)) / m : undefined;
}

/**
 * A free port below the ephemeral range (32768+): tens of thousands of benchmark connections take
 * ephemeral source ports, and a relay restarted on one of those could not bind it.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO + 1));
    const server = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}

/** Resolves once something accepts on the port, within 30 s. */
async function waitForPort(port: number, proc?: ChildProcess): Promise<void> {
  // Generous: Node starts in seconds on a loaded machine, and a relay skipped costs its whole column.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${port} after 30 s`);
}

/** A process and its descendants (nginx runs a master and a worker). */
function pidTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid)!.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

const CLK_TCK = 100;

/** utime + stime in seconds, summed over the process tree. */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {}
  }
  return ticks / CLK_TCK;
}

/** Resident bytes, summed over the process tree. */
function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {}
  }
  return kb * 1024;
}

/** Runs the C load generator on the load CPU; returns its last JSON line. */
async function loadgen<T>(
  mode: string,
  port: number,
  hello: string,
  args: readonly (string | number)[],
  timeoutS: number,
): Promise<T> {
  const [cmd, argv] = pinned(LOAD_CPU, LOADGEN, [
    mode,
    '127.0.0.1',
    String(port),
    hello,
    ...args.map(String),
  ]);
  let stdout: string;
  try {
    ({ stdout } = await run(cmd, argv, { timeout: timeoutS * 1000 }));
  } catch (err) {
    // A failed check (bulk count wrong, no connection made) still reports what it measured.
    const out = (err as { stdout?: string }).stdout;
    if (!out?.trim().startsWith('{')) throw err;
    stdout = out;
  }
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/** Starts one relay on the relay CPU, on a port free right now, and waits until it accepts. */
async function startPeer(
  name: Exclude<Peer, 'direct'>,
  dir: string,
  ports: Record<Peer, number>,
  backend: { echo: number; sink: number },
): Promise<Started> {
  ports[name] = await freePort();
  // The variants share their relay's config file, on their own port (peers run one at a time).
  const haproxyPort = name === 'haproxy-splice' ? ports[name] : ports.haproxy;
  const snimuxPort = name === 'sni-mux-js' ? ports[name] : ports['sni-mux'];
  await run(join(HERE, 'peers'), [
    'configure',
    dir,
    String(backend.echo),
    String(backend.sink),
    String(haproxyPort),
    String(ports.nginx),
    String(ports.sslh),
    String(snimuxPort),
    name === 'haproxy-splice' ? 'splice' : '',
  ]);
  const snimux: [string, string[]] = [
    process.execPath,
    [join(ROOT, 'dist/bin/sni-mux.js'), '--config', join(dir, 'sni-mux.toml')],
  ];
  const haproxy: [string, string[]] = ['haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']];
  const cmds: Record<Exclude<Peer, 'direct'>, [string, string[]]> = {
    'sni-mux': snimux,
    'sni-mux-js': snimux,
    haproxy,
    'haproxy-splice': haproxy,
    nginx: [
      'nginx',
      ['-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx-error.log'), '-g', 'daemon off;'],
    ],
    sslh: ['sslh-select', [`-F${join(dir, 'sslh.cfg')}`, '-f']],
  };
  const [cmd, args] = pinned(RELAY_CPU, ...cmds[name]);
  const env = { ...process.env, SNI_MUX_DATA_PLANE: name === 'sni-mux-js' ? 'js' : 'native' };
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  try {
    await waitForPort(ports[name], proc);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${name}: ${(err as Error).message}\n${stderr}`);
  }
  return { proc, pids: () => pidTree(proc.pid!) };
}

async function stopPeer(p: Started | undefined): Promise<void> {
  if (p === undefined || p.proc.exitCode !== null) return;
  const exited = new Promise((resolve) => p.proc.on('exit', resolve));
  p.proc.kill('SIGTERM');
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function which(cmd: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

async function machineFacts() {
  const version = async (cmd: string, args: string[], re: RegExp): Promise<string | undefined> => {
    try {
      const { stdout, stderr } = await run(cmd, args);
      return re.exec(stdout + stderr)?.[1];
    } catch {
      return undefined;
    }
  };
  return {
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    kernel: os.release(),
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    sni_mux: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    haproxy: await version('haproxy', ['-v'], /HAProxy version (\S+)/),
    nginx: await version('nginx', ['-v'], /nginx\/(\S+)/),
    sslh: await version('sslh-select', ['-V'], /sslh\S* (\S+)/),
    gcc: await version('gcc', ['--version'], /\) (\S+)/),
    loadavg_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    placement: pin
      ? `relay on CPU ${RELAY_CPU}; loadgen and backend on CPU ${LOAD_CPU} (taskset)`
      : 'not pinned',
  };
}

/** The micro benchmarks print JSON lines; they run in Node through tap's TypeScript loader. */
async function micro(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const file of MICRO) {
    log(`micro: ${file}`);
    const [cmd, args] = pinned(RELAY_CPU, process.execPath, [
      '--import=@tapjs/typescript/import',
      join(HERE, file),
      '--json',
    ]);
    const { stdout } = await run(cmd, args, { cwd: ROOT, timeout: 120_000 });
    for (const line of stdout.split('\n')) if (line.startsWith('{')) Object.assign(out, JSON.parse(line));
  }
  return out;
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('the benchmarks read /proc: Linux only');
  log('building the C load generator');
  await run('make', ['-s', '-C', join(HERE, 'loadgen')]);
  if (!existsSync(join(ROOT, 'dist/bin/sni-mux.js')))
    await run('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT });

  const facts = await machineFacts();
  const peers: Peer[] = [];
  for (const p of opt.peers.split(',')) {
    const bin = (<Partial<Record<string, string | null>>>{
      direct: null,
      'sni-mux': null,
      'sni-mux-js': null,
      haproxy: 'haproxy',
      'haproxy-splice': 'haproxy',
      nginx: 'nginx',
      sslh: 'sslh-select',
    })[p];
    if (bin === undefined) throw new Error(`unknown peer ${p}`);
    if (bin !== null && !(await which(bin))) log(`${p}: not installed, skipped (benchmarks/peers install)`);
    else peers.push(p as Peer);
  }

  const result: Result = {
    date: new Date().toISOString(),
    machine: facts,
    options: opt,
    runs: {},
    summary: {},
  };
  if (figures.has('micro')) result.micro = await micro();

  // The backend's ports come from the same range as the relays'.
  const echoPort = await freePort();
  let sinkPort = await freePort();
  while (sinkPort === echoPort) sinkPort = await freePort();
  const [bcmd, bargs] = pinned(LOAD_CPU, BACKEND, [
    '--echo-port',
    String(echoPort),
    '--sink-port',
    String(sinkPort),
  ]);
  const backend = spawn(bcmd, bargs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve) =>
    createInterface({ input: backend.stdout }).once('line', resolve),
  );
  const { echo, sink } = JSON.parse(first) as { echo: number; sink: number };
  const ports: Record<Peer, number> = {
    direct: echo,
    'sni-mux': 0,
    'sni-mux-js': 0,
    haproxy: 0,
    'haproxy-splice': 0,
    nginx: 0,
    sslh: 0,
  };
  const dir = mkdtempSync(join(os.tmpdir(), 'snimux-bench-'));
  const portFor = (peer: Peer, kind: 'echo' | 'sink'): number =>
    peer === 'direct' ? (kind === 'sink' ? sink : echo) : ports[peer];

  try {
    for (const peer of peers) result.runs[peer] = { conn: [], rtt: [], bulk: [], idle: [] };
    // Rounds go over every peer in turn, so a burst of noise from elsewhere hits them all alike.
    for (let round = 0; round < repeat; round++) {
      for (const peer of peers) {
        const r = result.runs[peer]!;
        let p: Started | undefined;
        try {
          p = peer === 'direct' ? undefined : await startPeer(peer, dir, ports, { echo, sink });
        } catch (err) {
          // One peer that will not start must not cost the whole run.
          log(`${peer}: cannot start, skipped: ${(err as Error).message}`);
          r.error = (err as Error).message;
          continue;
        }
        try {
          if (figures.has('conn')) {
            const before = p ? cpuSeconds(p.pids()) : undefined;
            const x = await loadgen<ConnRun>(
              'conn-rate',
              portFor(peer, 'echo'),
              HELLO_ECHO,
              [32, seconds, 1],
              seconds + 30,
            );
            // CPU over the whole run, so divided by every connection made, warm-up and tail included.
            if (p) x.cpu_us_per_conn = ((cpuSeconds(p.pids()) - before!) * 1e6) / x.total;
            log(
              `${peer} round ${round + 1}: ${x.conn_per_s} conn/s, p50 ${x.p50_us} µs, p99 ${x.p99_us} µs, cpu ${x.cpu_us_per_conn?.toFixed(1)} µs/conn`,
            );
            r.conn.push(x);
          }
          // Memory right after the connection run, which leaves the relay's heap and allocator as a
          // running server's would be; in a fresh process, Node's figure mostly shows its heap growing.
          if (figures.has('idle') && p) {
            if (!figures.has('conn'))
              await loadgen('conn-rate', portFor(peer, 'echo'), HELLO_ECHO, [32, 3, 0], 30);
            r.idle.push(await idle(peer, p, portFor(peer, 'echo')));
          }
          if (figures.has('rtt')) {
            const x = await loadgen<RttRun>(
              'ping-pong',
              portFor(peer, 'echo'),
              HELLO_ECHO,
              [20000, seconds, 64],
              seconds + 30,
            );
            // No round trip measured (the relay failed it): no figure, not a 0 µs one.
            if (!(x.rounds > 0)) x.p50_us = x.p99_us = undefined;
            log(`${peer} round ${round + 1}: ping-pong p50 ${x.p50_us} µs, p99 ${x.p99_us} µs`);
            r.rtt.push(x);
          }
          if (figures.has('bulk')) {
            const before = p ? cpuSeconds(p.pids()) : undefined;
            const x = await loadgen<BulkRun>(
              'bulk',
              portFor(peer, 'sink'),
              HELLO_SINK,
              [opt['bulk-mib'], 30],
              60,
            );
            if (p) x.cpu_s_per_gib = (cpuSeconds(p.pids()) - before!) / (x.bytes / 2 ** 30);
            log(
              `${peer} round ${round + 1}: bulk ${x.mib_per_s} MiB/s, ok ${x.ok}, cpu ${x.cpu_s_per_gib?.toFixed(3)} s/GiB`,
            );
            r.bulk.push(x);
          }
        } finally {
          await stopPeer(p);
        }
      }
    }
  } finally {
    backend.kill('SIGKILL');
  }

  result.machine.loadavg_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  summarise(result);
  mkdirSync(opt.out, { recursive: true });
  const stamp = result.date.replace(/:/g, '-').slice(0, 19);
  writeFileSync(join(opt.out, `${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(opt.out, `${stamp}.md`), markdown(result));
  // Formatted as `npm run lint` expects, so a committed result does not fail the lint.
  const biome = join(ROOT, 'node_modules/.bin/biome');
  if (existsSync(biome)) {
    await run(biome, ['format', '--write', join(opt.out, `${stamp}.json`), join(opt.out, `${stamp}.md`)], {
      cwd: ROOT,
    }).catch(() => log('biome could not format the results; they are written unformatted'));
  }
  process.stdout.write(markdown(result));
  log(`wrote ${join(opt.out, `${stamp}.json`)} and .md`);
}

/** Opens the idle connections, reads the relay's resident memory, and lets them go. */
async function idle(peer: Peer, p: Started, port: number): Promise<IdleRun> {
  // sslh-select uses select(): FD_SETSIZE (1024 fds) caps it near 500 relayed connections.
  const conns = peer === 'sslh' ? Math.min(400, Number(opt.idle)) : Number(opt.idle);
  const pids = p.pids();
  const before = rssBytes(pids);
  const [cmd, args] = pinned(LOAD_CPU, LOADGEN, [
    'idle',
    '127.0.0.1',
    String(port),
    HELLO_ECHO,
    String(conns),
    '60',
  ]);
  const gen = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: gen.stdout }).once('line', resolve);
    gen.on('exit', (code) => reject(new Error(`idle loadgen exited with ${code}`)));
  });
  const ready = JSON.parse(line) as { ready: number };
  const after = rssBytes(p.pids());
  gen.stdin.end('q');
  await new Promise((resolve) => gen.on('exit', resolve));
  const x: IdleRun = {
    ...ready,
    rss_before: before,
    rss_after: after,
    bytes_per_conn: ready.ready > 0 ? (after - before) / ready.ready : undefined,
  };
  log(`${peer}: idle ${x.ready} connections, ${(x.bytes_per_conn! / 1024).toFixed(2)} KiB each`);
  return x;
}

function summarise(result: Result): void {
  const s = result.summary;
  for (const [peer, r] of Object.entries(result.runs)) {
    s[peer] = {
      conn_per_s: median(r.conn.map((x) => x.conn_per_s)),
      conn_p50_us: median(r.conn.map((x) => x.p50_us)),
      conn_p99_us: median(r.conn.map((x) => x.p99_us)),
      conn_errors: r.conn.reduce((n, x) => n + x.errors, 0),
      cpu_us_per_conn: median(r.conn.map((x) => x.cpu_us_per_conn)),
      rtt_p50_us: median(r.rtt.map((x) => x.p50_us)),
      rtt_p99_us: median(r.rtt.map((x) => x.p99_us)),
      bulk_mib_s: median(r.bulk.map((x) => x.mib_per_s)),
      bulk_ok: r.bulk.every((x) => x.ok),
      cpu_s_per_gib: median(r.bulk.map((x) => x.cpu_s_per_gib)),
      idle_conns: r.idle[0]?.ready,
      idle_kib_per_conn: median(r.idle.map((x) => x.bytes_per_conn! / 1024)),
      noise: {
        conn_per_s: spread(r.conn.map((x) => x.conn_per_s)),
        rtt_p50_us: spread(r.rtt.map((x) => x.p50_us)),
        bulk_mib_s: spread(r.bulk.map((x) => x.mib_per_s)),
        idle_kib_per_conn: spread(r.idle.map((x) => x.bytes_per_conn)),
      },
    };
  }
  const direct = s.direct?.rtt_p50_us;
  for (const v of Object.values(s)) {
    v.rtt_added_p50_us =
      direct === undefined || v.rtt_p50_us === undefined ? undefined : v.rtt_p50_us - direct;
  }
  if (s.direct) s.direct.rtt_added_p50_us = 0;
}

const ROWS: [Figure, string, number, 'higher' | 'lower'][] = [
  ['conn_per_s', 'new connections/s (32 in flight)', 0, 'higher'],
  ['conn_p50_us', 'connection latency p50 (µs)', 0, 'lower'],
  ['conn_p99_us', 'connection latency p99 (µs)', 0, 'lower'],
  ['cpu_us_per_conn', 'relay CPU per connection (µs)', 1, 'lower'],
  ['rtt_p50_us', 'round trip 64 B p50 (µs)', 1, 'lower'],
  ['rtt_added_p50_us', 'round trip added by the relay p50 (µs)', 1, 'lower'],
  ['rtt_p99_us', 'round trip 64 B p99 (µs)', 1, 'lower'],
  ['bulk_mib_s', 'bulk, one stream (MiB/s)', 0, 'higher'],
  ['cpu_s_per_gib', 'relay CPU per GiB relayed (s)', 3, 'lower'],
  ['idle_kib_per_conn', 'memory per idle relayed connection (KiB)', 2, 'lower'],
];

function markdown(result: Result): string {
  const s = result.summary;
  const peers = Object.keys(s);
  const m = result.machine;
  const fmt = (v: number | undefined | null, d: number): string =>
    v === undefined || v === null || Number.isNaN(v) ? '–' : v.toFixed(d);
  let out = `# sni-mux benchmark, ${result.date.slice(0, 16).replace('T', ' ')} UTC\n\n`;
  out += `Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memory_gib} GiB, Linux ${m.kernel}; Node ${m.node}, `;
  out += `HAProxy ${m.haproxy ?? '–'}, nginx ${m.nginx ?? '–'}, sslh ${m.sslh ?? '–'}, gcc ${m.gcc ?? '–'}.\n`;
  out += `Placement: ${m.placement}. Load average at start ${m.loadavg_start.join(' ')}, at end ${m.loadavg_end!.join(' ')}.\n`;
  out += `Each figure is the median of ${result.options.repeat} rounds; (x) is the ratio to HAProxy in the same run.\n\n`;
  if (peers.length) {
    out += `| figure | ${peers.join(' | ')} |\n|---|${peers.map(() => '---:').join('|')}|\n`;
    for (const [key, label, d] of ROWS) {
      const h = s.haproxy?.[key];
      const cells = peers.map((p) => {
        const v = s[p]![key];
        if (v === undefined) return '–';
        const ratio = h && p !== 'haproxy' && key !== 'rtt_added_p50_us' ? ` (${(v / h).toFixed(2)}x)` : '';
        return `${fmt(v, d)}${ratio}`;
      });
      out += `| ${label} | ${cells.join(' | ')} |\n`;
    }
    const idle = peers.map((p) => `${p} ${s[p]!.idle_conns ?? '–'}`).join(', ');
    out += `\nIdle connections held: ${idle}. Bulk byte counts verified: ${peers.map((p) => `${p} ${s[p]!.bulk_ok ? 'ok' : 'FAILED'}`).join(', ')}.\n`;
    const noise = peers
      .map((p) => {
        const n = s[p]!.noise;
        const pc = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(0)}%`);
        return `${p}: conn/s ${pc(n.conn_per_s)}, rtt p50 ${pc(n.rtt_p50_us)}, bulk ${pc(n.bulk_mib_s)}, idle memory ${pc(n.idle_kib_per_conn)}`;
      })
      .join('; ');
    out += `Noise (max − min over rounds, as a share of the median): ${noise}.\n`;
  }
  if (result.micro) {
    out += '\n## Micro benchmarks (ns per call, best of 5 rounds)\n\n| what | ns |\n|---|---:|\n';
    for (const [k, v] of Object.entries(result.micro)) out += `| ${k} | ${v.toFixed(0)} |\n`;
  }
  return out;
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
