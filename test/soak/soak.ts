// Soak: thousands of connections of every kind against one sni-mux process, then checks that nothing leaked.
//
// Run by test/soak.test.ts (SOAK_SECONDS, default 60, in CI) and by `npm run soak` (default 300 s).
// Each client kind is one small function; the checks at the end are what the issue asks of a soak:
// the process is alive, fds back to baseline, memory near baseline and not growing with the number of
// connections, every relayed byte intact, and the counters add up (accepted = routed + rejected) in the
// log and in /metrics. SOAK_SEED replays a run's choice of clients.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Test } from 'tap';
import { Rng } from '../fuzz/mutate.js';
import { captureFirstBytes } from '../helpers/clients.js';
import { adminPort, type Sample, scrape } from '../helpers/metrics.js';
import { fdCount, type LogLine, type MuxProcess, rssBytes, startMux } from '../helpers/mux.js';
import { closedPort, sha256, startRecorder } from '../helpers/servers.js';

const MiB = 1024 * 1024;

export interface SoakOptions {
  seconds: number;
  /** Connections in flight at once. */
  concurrency: number;
  seed: number;
}

/** What one client did: `expect` is the exact reply a relayed client must get, if it is to be checked. */
interface Outcome {
  kind: string;
  connected: boolean;
  expect?: string;
  reply: Buffer;
}

interface Env {
  port: number;
  rng: Rng;
  hello: Buffer;
}

/** A client connection: writes the steps in order, then ends, resets or just waits, and reports. */
function client(
  env: Env,
  kind: string,
  steps: readonly Uint8Array[],
  finish: 'end' | 'reset' | 'wait',
  expect?: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect({ port: env.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let connected = false;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end());
    s.on('error', () => {});
    s.on('close', () => resolve({ kind, connected, expect, reply: Buffer.concat(chunks) }));
    s.on('connect', async () => {
      connected = true;
      for (const step of steps) {
        if (s.destroyed) return;
        await new Promise<void>((done) => s.write(step, () => done()));
      }
      if (s.destroyed) return;
      if (finish === 'end') s.end();
      else if (finish === 'reset') s.resetAndDestroy();
      // 'wait': the mux decides (detect timeout, no data, idle), and closes.
    });
  });
}

function reply(name: string, body: Uint8Array): string {
  return `${name} ${body.length} ${sha256(body)}`;
}

function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

/** Random bytes that no probe claims (0xff first): they go to the catch-all. */
function junk(rng: Rng, max: number): Buffer {
  const b = randomBytes(1 + rng.below(max));
  b[0] = 0xff;
  return b;
}

const POSTGRES_SSL_REQUEST = Uint8Array.of(0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f);

/** Every kind of client, with its weight. Valid ones carry the reply their recorder must give. */
const KINDS: readonly { name: string; weight: number; run(env: Env): Promise<Outcome> }[] = [
  {
    name: 'tls',
    weight: 20,
    run: (env) => {
      const body = concat(env.hello, randomBytes(env.rng.below(64 * 1024)));
      return client(env, 'tls', [body], 'end', reply('tls', body));
    },
  },
  {
    name: 'tls-trickle', // the hello in small writes, as a slow link delivers it
    weight: 2,
    run: (env) => {
      const steps: Buffer[] = [];
      for (let i = 0; i < env.hello.length; i += 97) steps.push(env.hello.subarray(i, i + 97));
      return client(env, 'tls-trickle', steps, 'end', reply('tls', env.hello));
    },
  },
  {
    name: 'http',
    weight: 15,
    run: (env) => {
      const body = concat(
        Buffer.from(
          `POST /${env.rng.next()} HTTP/1.1\r\nHost: Soak.Example:8080\r\nContent-Length: 100\r\n\r\n`,
        ),
        randomBytes(100),
      );
      return client(env, 'http', [body], 'end', reply('http', body));
    },
  },
  {
    name: 'ssh',
    weight: 10,
    run: (env) => {
      const body = concat(Buffer.from('SSH-2.0-OpenSSH_9.2p1 soak\r\n'), randomBytes(env.rng.below(4096)));
      return client(env, 'ssh', [body], 'end', reply('ssh', body));
    },
  },
  {
    name: 'catch-all',
    weight: 10,
    run: (env) => {
      const body = junk(env.rng, 128 * 1024);
      return client(env, 'catch-all', [body], 'end', reply('fallback', body));
    },
  },
  {
    name: 'half-close-mid-hello', // FIN before detection decided: the bytes so far go to the catch-all
    weight: 5,
    run: (env) => {
      const part = env.hello.subarray(0, 1 + env.rng.below(env.hello.length - 1));
      return client(env, 'half-close-mid-hello', [part], 'end', reply('fallback', part));
    },
  },
  {
    name: 'garbage', // anything at all: some of it is a probe's prefix, malformed or nothing
    weight: 8,
    run: (env) => client(env, 'garbage', [randomBytes(1 + env.rng.below(2048))], 'end'),
  },
  {
    name: 'bad-hello', // a TLS record whose lengths lie
    weight: 5,
    run: (env) => {
      const b = Buffer.from(env.hello);
      b.writeUInt16BE(env.rng.below(0x10000), 3 + 2 * env.rng.below(3));
      return client(env, 'bad-hello', [b], 'end');
    },
  },
  {
    name: 'slowloris', // a few bytes of a hello, then nothing: detect_timeout
    weight: 4,
    run: (env) => client(env, 'slowloris', [env.hello.subarray(0, 3 + env.rng.below(20))], 'wait'),
  },
  {
    name: 'silent', // connects and says nothing: no_data
    weight: 3,
    run: (env) => client(env, 'silent', [], 'wait'),
  },
  {
    name: 'reset-mid-hello',
    weight: 6,
    run: (env) => client(env, 'reset-mid-hello', [env.hello.subarray(0, 10 + env.rng.below(100))], 'reset'),
  },
  {
    name: 'reset-while-relayed', // routed, then reset mid-stream by the client
    weight: 5,
    run: (env) => client(env, 'reset-while-relayed', [env.hello, randomBytes(8192)], 'reset'),
  },
  {
    name: 'backend-down', // a Postgres SSLRequest is routed to a port nobody listens on: backend_unavailable
    weight: 4,
    run: (env) => client(env, 'backend-down', [POSTGRES_SSL_REQUEST], 'end'),
  },
  {
    name: 'reset-then-nothing', // connects and resets at once
    weight: 3,
    run: (env) => client(env, 'reset-then-nothing', [], 'reset'),
  },
];

function pickKind(rng: Rng): (typeof KINDS)[number] {
  const total = KINDS.reduce((a, k) => a + k.weight, 0);
  let r = rng.below(total);
  for (const k of KINDS) {
    r -= k.weight;
    if (r < 0) return k;
  }
  return KINDS[0]!;
}

function closing(mux: MuxProcess): LogLine[] {
  return mux.logs.filter((l) => l.end !== undefined || l.reject !== undefined);
}

function sum(samples: Sample[], name: string): number {
  return samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
}

/** Drives the load for opts.seconds, then asserts every check on `t`. */
export async function runSoak(t: Test, opts: SoakOptions): Promise<void> {
  // Two alike TLS backends taking turns: the soak drives the balancer too.
  const tlsRecs = [await startRecorder(t, 'tls'), await startRecorder(t, 'tls')];
  const httpRec = await startRecorder(t, 'http');
  const sshRec = await startRecorder(t, 'ssh');
  const fallback = await startRecorder(t, 'fallback');
  const dead = await closedPort();
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[timeouts]
detect = "400ms"
connect = "1s"
idle = "10s"
[limits]
max_connections_per_source = ${opts.concurrency * 4}
[log]
format = "json"
[admin]
listen = "127.0.0.1:0"
[[route]]
name = "tls"
sni = ["soak.example"]
backends = ["127.0.0.1:${tlsRecs[0]!.port}", "127.0.0.1:${tlsRecs[1]!.port}"]
balance = "roundrobin"
[[route]]
name = "http"
host = ["soak.example"]
backend = "127.0.0.1:${httpRec.port}"
[[route]]
name = "ssh"
protocol = "ssh"
backend = "127.0.0.1:${sshRec.port}"
[[route]]
name = "down"
protocol = "postgres"
backend = "127.0.0.1:${dead}"
[[route]]
name = "fallback"
backend = "127.0.0.1:${fallback.port}"
`,
  );
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'soak.example', rejectUnauthorized: false }),
  );
  const env: Env = { port: mux.port, rng: new Rng(opts.seed), hello };
  const admin = adminPort(mux);
  const fdBaseline = await fdCount(mux.pid);
  const rssBaseline = await rssBytes(mux.pid);
  const heapBaseline = sum(await scrape(admin), 'nodejs_heap_size_used_bytes');
  t.comment(
    `seed ${opts.seed}, ${opts.seconds} s, ${opts.concurrency} in flight; mux fds ${fdBaseline}, ` +
      `RSS ${mib(rssBaseline)} MiB, heap ${mib(heapBaseline)} MiB`,
  );

  const load: Load = {
    counts: new Map(),
    bad: [],
    mismatches: 0,
    connects: 0,
    checked: 0,
    peakRss: rssBaseline,
  };
  // Two equal halves: memory that the first half grew to is V8 keeping its heap; more growth in the
  // second, with the same load, is a leak that scales with connections.
  await drive(env, mux, opts.concurrency, (opts.seconds * 1000) / 2, load);
  await mux.waitForLog(() => closing(mux).length >= load.connects);
  const rssHalf = await rssBytes(mux.pid);
  await drive(env, mux, opts.concurrency, (opts.seconds * 1000) / 2, load);

  t.equal(mux.proc.exitCode, null, 'the mux is alive');
  t.comment(`clients: ${[...load.counts].map(([k, n]) => `${k}=${n}`).join(' ')}`);
  t.ok(load.connects > opts.seconds * 20, `${load.connects} connections in ${opts.seconds} s`);
  t.same(load.bad, [], `every one of ${load.checked} relayed clients got its bytes through intact`);
  t.equal(load.mismatches, 0, 'no checksum mismatch');

  // Every accepted connection ends with exactly one line: relayed (end) or refused (reject).
  await mux.waitForLog(() => closing(mux).length >= load.connects);
  const lines = closing(mux);
  const routed = lines.filter((l) => l.end !== undefined).length;
  const rejected = lines.filter((l) => l.reject !== undefined).length;
  t.equal(lines.length, load.connects, `accepted ${load.connects} = routed ${routed} + rejected ${rejected}`);
  t.equal(new Set(lines.map((l) => l.conn)).size, lines.length, 'one line per connection');
  const tlsSplit = tlsRecs.map((r) => lines.filter((l) => l.backend === `127.0.0.1:${r.port}`).length);
  t.ok(
    // Not exactly even: a client gone while its backend connect runs still took a turn.
    Math.min(...tlsSplit) >= 0.9 * Math.max(...tlsSplit) && Math.min(...tlsSplit) > 0,
    `roundrobin split the TLS route's connections evenly: ${tlsSplit.join(' / ')}`,
  );
  const outcomes = new Map<string, number>();
  for (const l of lines) {
    const key = l.end !== undefined ? `end:${l.end}` : `reject:${l.reject}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  t.comment(
    `outcomes: ${[...outcomes]
      .sort()
      .map(([k, n]) => `${k}=${n}`)
      .join(' ')}`,
  );

  t.equal(await fdCount(mux.pid), fdBaseline, 'open fds back to baseline');
  const rssAfter = await rssBytes(mux.pid);
  const samples = await scrape(admin);
  const heapAfter = sum(samples, 'nodejs_heap_size_used_bytes');
  t.comment(
    `RSS ${mib(rssBaseline)} → ${mib(rssHalf)} (half) → ${mib(rssAfter)} MiB (end), peak ${mib(load.peakRss)}; ` +
      `heap ${mib(heapBaseline)} → ${mib(heapAfter)} MiB`,
  );
  // The mux has no GC hook, and V8 keeps the heap it grew to under load: compare generously.
  t.ok(rssAfter < rssBaseline + 96 * MiB, 'RSS after the load < baseline + 96 MiB');
  t.ok(heapAfter < heapBaseline + 64 * MiB, 'heap used after the load < baseline + 64 MiB');
  // Half the load is tens of thousands of connections: a leak of 1 KiB each would show here.
  t.ok(
    rssAfter < rssHalf + 32 * MiB,
    'the second half of the load grew RSS by < 32 MiB: no leak per connection',
  );

  // connections_total counts routing decisions, including those refused afterwards (backend_unavailable,
  // a client gone while connecting): the lines that name a route.
  const withRoute = lines.filter((l) => l.route !== undefined).length;
  t.equal(
    sum(samples, 'snimux_rejected_connections_total'),
    rejected,
    'snimux_rejected_connections_total = rejected lines',
  );
  t.equal(
    sum(samples, 'snimux_connections_total'),
    withRoute,
    'snimux_connections_total = lines with a route',
  );
  t.equal(sum(samples, 'snimux_connections_active'), 0, 'no connection left active');
}

interface Load {
  counts: Map<string, number>;
  bad: string[];
  mismatches: number;
  connects: number;
  checked: number;
  peakRss: number;
}

/** `concurrency` workers, each running one client after another for `ms`. */
async function drive(env: Env, mux: MuxProcess, concurrency: number, ms: number, load: Load): Promise<void> {
  const deadline = performance.now() + ms;
  const sampler = setInterval(async () => {
    load.peakRss = Math.max(load.peakRss, await rssBytes(mux.pid));
  }, 1000);
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && mux.proc.exitCode === null) {
      const o = await pickKind(env.rng).run(env);
      load.counts.set(o.kind, (load.counts.get(o.kind) ?? 0) + 1);
      if (o.connected) load.connects++;
      if (o.expect === undefined) continue;
      load.checked++;
      const got = o.reply.toString('latin1');
      if (got !== o.expect && load.mismatches++ < 10)
        load.bad.push(`${o.kind}: expected "${o.expect}", got "${got.slice(0, 120)}"`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearInterval(sampler);
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** A fresh seed unless SOAK_SEED pins one, for replaying a failed run. */
export function soakSeed(): number {
  const pinned = process.env.SOAK_SEED;
  return pinned === undefined ? randomBytes(4).readUInt32BE(0) : Number(pinned);
}
