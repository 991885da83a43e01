// Fault injection against a real sni-mux process: backends that reset, stall, refuse, hang or don't resolve;
// clients that reset or half-close mid-detection. The mux must stay up, bounded, and say what happened.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import type { Test } from 'tap';
import t from 'tap';
import { captureFirstBytes, exchange } from './helpers/clients.js';
import { connectionLine, fdCount, type LogLine, type MuxProcess, startMux } from './helpers/mux.js';
import { closedPort, listen, sha256, startRecorder } from './helpers/servers.js';

const MiB = 1024 * 1024;

/** Resident memory of a process (Linux /proc), in bytes. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** A ClientHello for `name`, as node:tls sends it. */
function helloFor(name: string): Promise<Buffer> {
  return captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: name, rejectUnauthorized: false }),
  );
}

/** Waits until `n` connections have their one closing line. */
function finished(mux: MuxProcess, n: number): Promise<LogLine> {
  return mux.waitForLog(
    () => mux.logs.filter((l) => l.end !== undefined || l.reject !== undefined).length >= n,
  );
}

/** A server that accepts, waits for `expect` bytes, answers `reply`, then resets the connection. */
async function startResetter(t: Test, expect: number, reply: Buffer): Promise<number> {
  const server = net.createServer((s) => {
    let got = 0;
    s.on('error', () => {});
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= expect) s.write(reply, () => s.resetAndDestroy());
    });
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return listen(server);
}

/**
 * A backend that accepts and reads nothing until release(): the way a stuck application behaves.
 * Once released it hashes all it gets and, at the client's FIN, resolves `done` with count and sha256.
 */
async function startStalled(t: Test): Promise<{
  port: number;
  accepted: Promise<void>;
  release(): void;
  done: Promise<{ bytes: number; sha: string }>;
}> {
  let socket: net.Socket | undefined;
  let onAccept!: () => void;
  const accepted = new Promise<void>((resolve) => {
    onAccept = resolve;
  });
  let onDone!: (r: { bytes: number; sha: string }) => void;
  const done = new Promise<{ bytes: number; sha: string }>((resolve) => {
    onDone = resolve;
  });
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    socket = s;
    s.on('error', () => {});
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    s.on('end', () => {
      onDone({ bytes, sha: hash.digest('hex') });
      s.end();
    });
    onAccept();
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        socket?.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: await listen(server), accepted, release: () => socket?.resume(), done };
}

/**
 * A local address whose connects hang: a listener in a stopped child process, its accept queue
 * (backlog 1) filled by connections nobody accepts. New SYNs are dropped, as a firewall's blackhole does.
 */
async function startBlackhole(t: Test): Promise<number> {
  const script =
    "const s=require('net').createServer();" +
    "s.listen({host:'127.0.0.1',port:0,backlog:1},()=>console.log(s.address().port));";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  t.teardown(() => {
    for (const s of fillers) s.destroy();
    child.kill('SIGKILL'); // a stopped process still dies of SIGKILL
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  );
  const port = Number(line);
  process.kill(child.pid!, 'SIGSTOP');
  // Linux queues backlog + 1 handshaken connections; more fillers than that leave nothing for the mux.
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise<void>((resolve) => fillers[1]!.once('connect', () => resolve()));
  return port;
}

t.test(
  'a backend that resets mid-stream cuts the client off; the mux logs it and keeps serving',
  async (t) => {
    const sent = Buffer.concat([Buffer.from([0xff]), randomBytes(64 * 1024 - 1)]);
    const reply = randomBytes(10_000);
    const resetter = await startResetter(t, sent.length, reply);
    const rec = await startRecorder(t, 'healthy');
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
[[route]]
name = "fragile"
protocol = "ssh"
backend = "127.0.0.1:${rec.port}"
[[route]]
name = "resetting"
backend = "127.0.0.1:${resetter}"
`,
    );
    const ex = await exchange(mux.port, sent, { end: false });
    t.ok(ex.errored, `the client's connection was cut, not finished (${ex.errored})`);
    t.equal(ex.errored, 'ECONNRESET', 'the reset is passed on as a reset');
    t.ok(reply.subarray(0, ex.reply.length).equals(ex.reply), 'what arrived before the reset is intact');
    t.match(await connectionLine(mux, ex.localPort), {
      route: 'resetting',
      end: 'backend_error',
      code: 'ECONNRESET',
      bytes_client_to_backend: sent.length,
    });
    const banner = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n');
    t.equal(
      (await exchange(mux.port, banner)).reply.toString(),
      `healthy ${banner.length} ${sha256(banner)}`,
    );
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);

t.test(
  'a backend that never reads pauses the client: mux memory stays bounded while 256 MiB wait',
  async (t) => {
    const stalled = await startStalled(t);
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
[[route]]
name = "stuck"
backend = "127.0.0.1:${stalled.port}"
`,
    );
    const baseline = rss(mux.pid);
    const total = 256 * MiB;
    const block = randomBytes(MiB);
    block[0] = 0xff; // not a probe's first byte: goes straight to the catch-all
    const hash = createHash('sha256');
    const client = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    let acked = 0;
    // Writes with backpressure, as a well-behaved sender does; `acked` is what the kernel took.
    const pushed = (async () => {
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      for (let i = 0; i < total / MiB; i++) {
        const chunk = Buffer.from(block);
        chunk.writeUInt32BE(i, 4); // every MiB differs, so a lost or repeated one changes the hash
        hash.update(chunk);
        const more = client.write(chunk, () => {
          acked += chunk.length;
        });
        if (!more) await new Promise<void>((resolve) => client.once('drain', () => resolve()));
      }
      client.end();
    })();
    await stalled.accepted;
    // Nothing signals "every buffer on the way is full": watch the sender until it stops moving.
    let peak = rss(mux.pid);
    let last = -1;
    let still = 0;
    for (let i = 0; i < 400 && still < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      peak = Math.max(peak, rss(mux.pid));
      still = acked === last ? still + 1 : 0;
      last = acked;
    }
    t.equal(still, 10, 'the sender stalled');
    t.ok(acked < total / 4, `the sender was paused after ${(acked / MiB).toFixed(1)} MiB of ${total / MiB}`);
    t.ok(
      peak - baseline < 64 * MiB,
      `mux RSS grew by ${((peak - baseline) / MiB).toFixed(1)} MiB while the backend read nothing`,
    );
    t.comment(
      `stalled after ${(acked / MiB).toFixed(1)} MiB; mux RSS ${(baseline / MiB).toFixed(0)} → ${(peak / MiB).toFixed(0)} MiB`,
    );

    stalled.release();
    await pushed;
    const got = await stalled.done;
    t.equal(got.bytes, total, 'once the backend reads, every byte arrives');
    t.equal(got.sha, hash.digest('hex'), 'in order and intact');
    client.destroy();
    t.match(await finished(mux, 1), {});
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);

t.test('a client that resets mid-hello is dropped as client_closed; fds return to baseline', async (t) => {
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[[route]]
name = "tls"
protocol = "tls"
backend = "127.0.0.1:${rec.port}"
`,
  );
  const baseline = await fdCount(mux.pid);
  const hello = await helloFor('reset.example');
  const N = 20;
  for (let i = 0; i < N; i++) {
    const s = net.connect(mux.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    // Part of the hello, flushed, then a reset.
    await new Promise<void>((resolve) => s.write(hello.subarray(0, 20 + i * 5), () => resolve()));
    const port = s.localPort!;
    s.resetAndDestroy();
    const line = await connectionLine(mux, port);
    t.equal(line.reject, 'client_closed', `reset after ${20 + i * 5} bytes`);
    if (line.code !== undefined) t.equal(line.code, 'ECONNRESET');
  }
  t.equal(rec.received.length, 0, 'the backend never saw a partial hello');
  await finished(mux, N);
  t.equal(await fdCount(mux.pid), baseline, 'fd count back to baseline');
  const ex = await exchange(mux.port, hello);
  t.match(ex.reply.toString(), /^tls /, 'a whole hello still routes');
});

t.test(
  'a client that half-closes during detection: its bytes go to the catch-all and the reply comes back',
  async (t) => {
    const tlsRec = await startRecorder(t, 'tls');
    const fallback = await startRecorder(t, 'fallback');
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
[[route]]
name = "tls"
sni = ["half.example"]
backend = "127.0.0.1:${tlsRec.port}"
[[route]]
name = "fallback"
backend = "127.0.0.1:${fallback.port}"
`,
    );
    const hello = await helloFor('half.example');
    const partial = hello.subarray(0, 50);
    const ex = await exchange(mux.port, partial); // writes, then FIN while detection still wants more
    t.equal(
      ex.reply.toString(),
      `fallback ${partial.length} ${sha256(partial)}`,
      'the catch-all got the bytes',
    );
    t.equal(ex.errored, undefined, 'closed with FIN');
    t.match(await connectionLine(mux, ex.localPort), {
      route: 'fallback',
      protocol: undefined,
      end: 'client_closed',
    });

    const empty = await exchange(mux.port, Buffer.alloc(0)); // FIN with nothing sent
    t.equal(empty.reply.length, 0);
    t.match(await connectionLine(mux, empty.localPort), { reject: 'client_closed' });
    t.equal(tlsRec.received.length, 0, 'an undecided hello never reaches the SNI route');
  },
);

t.test('without a catch-all, a half-closed undecided client is refused as no_route', async (t) => {
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[[route]]
name = "tls"
protocol = "tls"
backend = "127.0.0.1:${rec.port}"
`,
  );
  const hello = await helloFor('x.example');
  const ex = await exchange(mux.port, hello.subarray(0, 30));
  t.equal(ex.reply.length, 0);
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_route' });
});

t.test('a backend name that does not resolve is skipped for the next backend', async (t) => {
  const rec = await startRecorder(t, 'second');
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[timeouts]
connect = "5s"
[[route]]
name = "named"
backends = ["nothing.invalid:443", "127.0.0.1:${rec.port}"]
`,
  );
  const body = Buffer.from('\xffafter a failed lookup', 'latin1');
  const ex = await exchange(mux.port, body);
  t.equal(ex.reply.toString(), `second ${body.length} ${sha256(body)}`);
  const failed = await mux.waitForLog((l) => l.msg === 'backend connect failed');
  t.match(failed, { backend: 'nothing.invalid:443', route: 'named' });
  t.ok(
    failed.code === 'ENOTFOUND' || failed.code === 'EAI_AGAIN',
    `a lookup failure, not a timeout (${failed.code})`,
  );
  t.match(await connectionLine(mux, ex.localPort), { backend: `127.0.0.1:${rec.port}` });
});

t.test('a blackholed backend hits timeouts.connect and the next backend serves', async (t) => {
  const hole = await startBlackhole(t);
  const rec = await startRecorder(t, 'after-timeout');
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[timeouts]
connect = "300ms"
[[route]]
name = "hole-first"
backends = ["127.0.0.1:${hole}", "127.0.0.1:${rec.port}"]
`,
  );
  const body = Buffer.from('\xffwaited for the timeout', 'latin1');
  const ex = await exchange(mux.port, body);
  t.equal(
    ex.reply.toString(),
    `after-timeout ${body.length} ${sha256(body)}`,
    'every byte reached the second',
  );
  const failed = await mux.waitForLog((l) => l.msg === 'backend connect failed');
  t.match(failed, { backend: `127.0.0.1:${hole}`, code: 'ETIMEDOUT' });
  t.ok((failed.ms as number) >= 290, `gave up after timeouts.connect (${failed.ms} ms)`);
  t.match(await connectionLine(mux, ex.localPort), { route: 'hole-first', end: 'client_closed' });
});

t.test('routes whose backends are down or hanging fail alone; the others keep serving', async (t) => {
  const hole = await startBlackhole(t);
  const dead = await closedPort();
  const rec = await startRecorder(t, 'up');
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[timeouts]
connect = "3s"
[[route]]
name = "hanging"
sni = ["hang.example"]
backend = "127.0.0.1:${hole}"
[[route]]
name = "down"
protocol = "ssh"
backend = "127.0.0.1:${dead}"
[[route]]
name = "up"
backend = "127.0.0.1:${rec.port}"
`,
  );
  const baseline = await fdCount(mux.pid);
  const hangHello = await helloFor('hang.example');
  // Several clients wait on the hanging backend while the others come and go.
  const hanging = Array.from({ length: 5 }, () => exchange(mux.port, hangHello));
  const ups: Promise<{ reply: Buffer; body: Buffer }>[] = [];
  const downs: Promise<{ reply: Buffer; localPort: number }>[] = [];
  for (let i = 0; i < 30; i++) {
    const body = Buffer.concat([Buffer.from([0xff]), randomBytes(1000 + i)]);
    ups.push(exchange(mux.port, body).then((ex) => ({ reply: ex.reply, body })));
    downs.push(exchange(mux.port, Buffer.from(`SSH-2.0-client${i}\r\n`)));
  }
  for (const { reply, body } of await Promise.all(ups))
    t.equal(reply.toString(), `up ${body.length} ${sha256(body)}`, 'served while another route hangs');
  for (const ex of await Promise.all(downs)) {
    t.equal(ex.reply.length, 0);
    t.match(await connectionLine(mux, ex.localPort), { route: 'down', reject: 'backend_unavailable' });
  }
  t.equal(
    mux.logs.filter((l) => l.route === 'hanging' && l.reject !== undefined).length,
    0,
    'the hanging route is still waiting on its connect',
  );
  for (const ex of await Promise.all(hanging)) {
    t.equal(ex.reply.length, 0);
    t.match(await connectionLine(mux, ex.localPort), { route: 'hanging', reject: 'backend_unavailable' });
  }
  const refused = mux.logs.filter((l) => l.msg === 'backend connect failed');
  t.equal(refused.filter((l) => l.code === 'ECONNREFUSED').length, 30, 'each down connect reported');
  t.equal(refused.filter((l) => l.code === 'ETIMEDOUT').length, 5, 'each hanging connect reported');
  await finished(mux, 65);
  t.equal(await fdCount(mux.pid), baseline, 'fd count back to baseline');
  t.equal(mux.proc.exitCode, null, 'alive');
});
