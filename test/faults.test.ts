// Fault injection against a real sni-mux process: backends that reset, stall, refuse, hang or don't resolve;
// clients that reset or half-close mid-detection. The mux must stay up, bounded, and say what happened.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Test } from 'tap';
import t from 'tap';
import { captureFirstBytes, exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, scrape } from './helpers/metrics.js';
import {
  connectionLine,
  fdCount,
  fdsBackTo,
  type LogLine,
  type MuxProcess,
  rssBytes,
  startMux,
} from './helpers/mux.js';
import { closedPort, listen, sha256, startAbrupt, startBlackhole, startRecorder } from './helpers/servers.js';

const MiB = 1024 * 1024;

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** A ClientHello for `name`, as node:tls sends it. */
function helloFor(name: string): Promise<Buffer> {
  return captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: name, rejectUnauthorized: false }),
  );
}

/** Waits until `n` connections have their one closing line; returns the n-th. */
async function finished(mux: MuxProcess, n: number): Promise<LogLine> {
  const closing = (): LogLine[] => mux.logs.filter((l) => l.end !== undefined || l.reject !== undefined);
  await mux.waitForLog(() => closing().length >= n);
  return closing()[n - 1]!;
}

/**
 * A server that waits for `expect` bytes, answers `reply`, and resets the connection when the client
 * acknowledges it (any byte more). Resetting only once the reply has been read matters: an RST that
 * overtakes unread data may be reported by the receiving kernel as a plain end of stream.
 */
async function startResetter(t: Test, expect: number, reply: Buffer): Promise<number> {
  const server = net.createServer((s) => {
    let got = 0;
    s.on('error', () => {});
    s.on('data', (c: Buffer) => {
      const before = got;
      got += c.length;
      if (before < expect && got >= expect) s.write(reply);
      if (got > expect) s.resetAndDestroy();
    });
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return listen(server);
}

/** Sends `sent`, reads `replyLength` bytes, acknowledges with one byte, then waits for the end. */
function sendAndAck(
  port: number,
  sent: Buffer,
  replyLength: number,
): Promise<{ reply: Buffer; errored: string | undefined; localPort: number }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let got = 0;
    let errored: string | undefined;
    let localPort = 0;
    s.on('connect', () => {
      localPort = s.localPort!;
      s.write(sent);
    });
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const before = got;
      got += c.length;
      if (before < replyLength && got >= replyLength) s.write('k');
    });
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => {
      errored = e.code;
    });
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), errored, localPort }));
  });
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

t.test(
  'a backend that resets mid-stream cuts the client off; the mux logs it and keeps serving',
  async (t) => {
    const sent = Buffer.concat([Buffer.from([0xff]), randomBytes(64 * 1024 - 1)]);
    const reply = randomBytes(10_000);
    const resetter = await startResetter(t, sent.length, reply);
    const rec = await startRecorder(t, 'healthy');
    const mux = await startMux(
      t,
      muxConfig(route('fragile', rec.port, { protocol: 'ssh' }), route('resetting', resetter)),
    );
    const ex = await sendAndAck(mux.port, sent, reply.length);
    t.ok(ex.errored, `the client's connection was cut, not finished (${ex.errored})`);
    t.equal(ex.errored, 'ECONNRESET', 'the reset is passed on as a reset');
    t.ok(ex.reply.equals(reply), 'what the backend sent before the reset arrived intact');
    t.match(await connectionLine(mux, ex.localPort), {
      route: 'resetting',
      end: 'backend_error',
      code: 'ECONNRESET',
      bytes_client_to_backend: sent.length + 1,
      bytes_backend_to_client: reply.length,
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
  'backends closing with FIN and RST together while clients send: after the load, active 0 and fds at baseline',
  async (t) => {
    const abrupt = await startAbrupt(t);
    const mux = await startMux(
      t,
      muxConfig(
        table('limits', { max_connections: 8, max_connections_per_source: 8 }),
        table('admin', { listen: '127.0.0.1:0' }),
        route('abrupt', abrupt),
      ),
    );
    const baseline = await fdCount(mux.pid);
    const N = 300;
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < N) {
        started++;
        const steps = Buffer.concat([Buffer.from([0xff]), randomBytes(64 * 1024)]);
        await exchange(mux.port, steps, { chunk: 4096 });
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const last = await Promise.race([
      finished(mux, N),
      // A bound, so a leaked connection (which never logs) fails the test instead of hanging it.
      new Promise<undefined>((resolve) => setTimeout(resolve, 20_000, undefined)),
    ]);
    t.ok(last, `all ${N} connections ended with their line`);
    t.equal(mux.logs.filter((l) => l.reject === 'limit').length, 0, 'no client met the cap');
    const active = (await scrape(adminPort(mux))).filter((x) => x.name === 'snimux_connections_active');
    t.same(
      active.map((x) => x.value),
      [0],
      'snimux_connections_active 0',
    );
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
    const body = Buffer.from('\xffstill serving', 'latin1');
    t.equal((await exchange(mux.port, body)).reply.toString(), 'bye\n', 'a new client is served');
  },
);

/** Writes `total` bytes in 1 MiB chunks with backpressure, as a well-behaved sender does. */
function push(
  socket: net.Socket,
  total: number,
): { acked: () => number; done: Promise<void>; sha: Promise<string> } {
  const block = randomBytes(MiB);
  block[0] = 0xff; // not a probe's first byte: a client sending this goes to the catch-all
  const hash = createHash('sha256');
  let acked = 0;
  let sha!: (h: string) => void;
  const shaDone = new Promise<string>((resolve) => {
    sha = resolve;
  });
  const done = (async () => {
    for (let i = 0; i < total / MiB && !socket.destroyed; i++) {
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(i, 4); // every MiB differs, so a lost or repeated one changes the hash
      hash.update(chunk);
      const more = socket.write(chunk, () => {
        acked += chunk.length;
      });
      if (!more) await new Promise<void>((resolve) => socket.once('drain', () => resolve()));
    }
    sha(hash.digest('hex'));
    socket.end();
  })();
  return { acked: () => acked, done, sha: shaDone };
}

/**
 * Watches a sender until it has not moved for 10 samples 50 ms apart (at most 20 s): nothing signals
 * "every buffer on the way is full". Returns whether it stalled and the mux's peak RSS meanwhile.
 */
async function untilStalled(pid: number, acked: () => number): Promise<{ stalled: boolean; peak: number }> {
  let peak = await rssBytes(pid);
  let last = -1;
  let still = 0;
  for (let i = 0; i < 400 && still < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    peak = Math.max(peak, await rssBytes(pid));
    still = acked() === last ? still + 1 : 0;
    last = acked();
  }
  return { stalled: still === 10, peak };
}

t.test(
  'a backend that never reads pauses the client: mux memory stays bounded while 256 MiB wait',
  async (t) => {
    const stalled = await startStalled(t);
    const mux = await startMux(t, muxConfig(route('stuck', stalled.port)));
    const baseline = await rssBytes(mux.pid);
    const total = 256 * MiB;
    const client = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const sender = push(client, total);
    await stalled.accepted;
    const { stalled: stopped, peak } = await untilStalled(mux.pid, sender.acked);
    t.ok(stopped, 'the sender stalled');
    t.ok(
      sender.acked() < total / 4,
      `the sender was paused after ${mib(sender.acked())} of ${mib(total)} MiB`,
    );
    t.ok(
      peak - baseline < 64 * MiB,
      `mux RSS grew by ${mib(peak - baseline)} MiB while the backend read nothing`,
    );

    stalled.release();
    await sender.done;
    const got = await stalled.done;
    t.equal(got.bytes, total, 'once the backend reads, every byte arrives');
    t.equal(got.sha, await sender.sha, 'in order and intact');
    client.destroy();
    await finished(mux, 1);
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);

t.test(
  'a client that never reads pauses the backend: mux memory stays bounded while 256 MiB wait',
  async (t) => {
    const total = 256 * MiB;
    let sender: ReturnType<typeof push> | undefined;
    let onSending!: () => void;
    const sending = new Promise<void>((resolve) => {
      onSending = resolve;
    });
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.resume();
      sender = push(s, total);
      onSending();
    });
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = await listen(server);
    const mux = await startMux(t, muxConfig(route('flood', port)));
    const baseline = await rssBytes(mux.pid);
    const client = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    client.pause(); // reads nothing until told
    client.write(Buffer.from([0xff]));
    await sending;
    const { stalled: stopped, peak } = await untilStalled(mux.pid, sender!.acked);
    t.ok(stopped, 'the backend stalled');
    t.ok(
      sender!.acked() < total / 4,
      `the backend was paused after ${mib(sender!.acked())} of ${mib(total)} MiB`,
    );
    t.ok(
      peak - baseline < 64 * MiB,
      `mux RSS grew by ${mib(peak - baseline)} MiB while the client read nothing`,
    );

    const hash = createHash('sha256');
    let bytes = 0;
    client.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.resume();
    await ended;
    t.equal(bytes, total, 'once the client reads, every byte arrives');
    t.equal(hash.digest('hex'), await sender!.sha, 'in order and intact');
    client.end();
    await finished(mux, 1);
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);

t.test('a client that sends undecidable bytes without end is cut at max_peek_bytes', async (t) => {
  const rec = await startRecorder(t, 'any');
  const mux = await startMux(
    t,
    muxConfig(table('limits', { max_peek_bytes: 16384 }), route('any', rec.port)),
  );
  // Two full TLS records of a ClientHello that announces 65,000 bytes: the parser wants more, however
  // the mux's reads split them, and 32 KiB is past the limit.
  const record = (fragment: Buffer): Buffer =>
    Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]), fragment]);
  const first = Buffer.alloc(16384);
  first.set([0x01, 0x00, 0xfd, 0xe8]);
  const endless = Buffer.concat([record(first), record(Buffer.alloc(16384))]);
  const ex = await exchange(mux.port, endless, { chunk: 4096 });
  t.equal(ex.reply.length, 0, 'nothing answered');
  t.match(await connectionLine(mux, ex.localPort), { reject: 'peek_limit' });
  t.equal(rec.received.length, 0, 'the backend never saw it');
});

t.test('an HTTP request line that never ends is refused at 16 KiB, whatever max_peek_bytes', async (t) => {
  // Regression: the request target was scanned up to max_peek_bytes (1 MiB at most) on every chunk,
  // O(n²) for a client trickling it; 64 KiB a byte at a time cost 4.7 s of CPU.
  const rec = await startRecorder(t, 'any');
  const mux = await startMux(
    t,
    muxConfig(table('limits', { max_peek_bytes: 1048576 }), route('any', rec.port)),
  );
  const endless = Buffer.concat([Buffer.from('GET /'), Buffer.alloc(MiB, 'a')]);
  const ex = await exchange(mux.port, endless, { chunk: 4096 });
  t.equal(ex.reply.length, 0, 'nothing answered');
  t.match(await connectionLine(mux, ex.localPort), {
    reject: 'malformed',
    protocol: 'http',
    detail: 'request line longer than 16384 bytes',
  });
  t.equal(rec.received.length, 0, 'the backend never saw it');
});

t.test('a client that resets mid-hello is dropped before any backend; fds return to baseline', async (t) => {
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(t, muxConfig(route('tls', rec.port, { protocol: 'tls' })));
  const baseline = await fdCount(mux.pid);
  const hello = await helloFor('reset.example');
  const N = 20;
  for (let i = 0; i < N; i++) {
    const s = net.connect(mux.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    // Part of the hello, flushed, then a reset.
    await new Promise<void>((resolve) => s.write(hello.subarray(0, 20 + i * 5), () => resolve()));
    s.resetAndDestroy();
    // Not by client port: a peer gone before the mux asks its address is logged without one.
    const line = await finished(mux, i + 1);
    // libuv reports an RST that arrives behind unread bytes as data then end of stream, so the mux may
    // see a client that sent a partial hello and half-closed: refused as no_route (no catch-all here).
    t.ok(
      line.reject === 'client_closed' || line.reject === 'no_route',
      `reset after ${20 + i * 5} bytes: ${line.reject} ${line.code ?? ''} ${line.client_port}`,
    );
    if (line.code !== undefined) t.equal(line.code, 'ECONNRESET');
  }
  t.equal(rec.received.length, 0, 'the backend never saw a partial hello');
  await finished(mux, N);
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
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
      muxConfig(route('tls', tlsRec.port, { sni: ['half.example'] }), route('fallback', fallback.port)),
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
  const mux = await startMux(t, muxConfig(route('tls', rec.port, { protocol: 'tls' })));
  const hello = await helloFor('x.example');
  const ex = await exchange(mux.port, hello.subarray(0, 30));
  t.equal(ex.reply.length, 0);
  t.match(await connectionLine(mux, ex.localPort), { reject: 'no_route' });
});

t.test('a backend name that does not resolve is skipped for the next backend', async (t) => {
  const rec = await startRecorder(t, 'second');
  const mux = await startMux(
    t,
    muxConfig(table('timeouts', { connect: '5s' }), route('named', ['nothing.invalid:443', rec.port])),
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
    muxConfig(table('timeouts', { connect: '300ms' }), route('hole-first', [hole, rec.port])),
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

t.test('a blackholed backend costs one client the connect timeout, not every client', async (t) => {
  const hole = await startBlackhole(t);
  const rec = await startRecorder(t, 'standby');
  const mux = await startMux(
    t,
    muxConfig(table('timeouts', { connect: '300ms' }), route('hole-first', [hole, rec.port])),
  );
  const lines: LogLine[] = [];
  for (let i = 0; i < 4; i++) {
    const body = Buffer.from(`\xffclient ${i}`, 'latin1');
    const ex = await exchange(mux.port, body);
    t.equal(
      ex.reply.toString(),
      `standby ${body.length} ${sha256(body)}`,
      `client ${i} served by the standby`,
    );
    lines.push(await connectionLine(mux, ex.localPort));
  }
  const failures = mux.logs.filter((l) => l.msg === 'backend connect failed');
  t.equal(failures.length, 1, 'only the first client waited for the blackholed backend');
  t.match(failures[0], { backend: `127.0.0.1:${hole}`, code: 'ETIMEDOUT' });
  t.same(
    lines.map((l) => l.backend),
    Array(4).fill(`127.0.0.1:${rec.port}`),
  );
});

t.test(
  'balance = "roundrobin" spreads connections over the backends and steps over a dead one',
  async (t) => {
    const recs = await Promise.all(['a', 'b', 'c'].map((n) => startRecorder(t, n)));
    const dead = await closedPort();
    const mux = await startMux(
      t,
      muxConfig(
        route(
          'spread',
          recs.map((r) => r.port),
          { protocol: 'http', balance: 'roundrobin' },
        ),
        route('with-dead', [recs[0]!.port, dead, recs[2]!.port], { balance: 'roundrobin' }),
      ),
    );
    const answered = async (bytes: string): Promise<string> => {
      const ex = await exchange(mux.port, Buffer.from(bytes, 'latin1'));
      // Its line comes after any connect failure's: once it is in, so is every failure line of this client.
      await connectionLine(mux, ex.localPort);
      return ex.reply.toString().split(' ')[0]!;
    };
    const http: string[] = [];
    for (let i = 0; i < 6; i++) http.push(await answered(`GET /${i} HTTP/1.0\r\n\r\n`));
    t.same(http, ['a', 'b', 'c', 'a', 'b', 'c'], 'each backend in turn');
    const other: string[] = [];
    for (let i = 0; i < 6; i++) other.push(await answered(`\xffbinary ${i}`));
    // Rotation a, dead, c: the dead one's first turn fails over to c; once marked, its turns pass to the next up.
    t.same(other, ['a', 'c', 'c', 'a', 'c', 'a'], 'every client served; the dead backend never answered');
    const failures = mux.logs.filter((l) => l.msg === 'backend connect failed');
    t.equal(failures.length, 1, 'the dead backend was tried once, then kept last');
    t.match(failures[0], { route: 'with-dead', backend: `127.0.0.1:${dead}`, code: 'ECONNREFUSED' });
  },
);

t.test('routes whose backends are down or hanging fail alone; the others keep serving', async (t) => {
  const hole = await startBlackhole(t);
  const dead = await closedPort();
  const rec = await startRecorder(t, 'up');
  const mux = await startMux(
    t,
    muxConfig(
      table('timeouts', { connect: '3s' }),
      route('hanging', hole, { sni: ['hang.example'] }),
      route('down', dead, { protocol: 'ssh' }),
      route('up', rec.port),
    ),
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
  const served = (await Promise.all(ups)).filter(
    ({ reply, body }) => reply.toString() === `up ${body.length} ${sha256(body)}`,
  );
  t.equal(served.length, 30, 'every client of the healthy route got its bytes through intact');
  const downLines = await Promise.all(
    (await Promise.all(downs)).map((ex) => connectionLine(mux, ex.localPort)),
  );
  t.ok(
    downLines.every((l) => l.route === 'down' && l.reject === 'backend_unavailable'),
    'every client of the down route was refused as backend_unavailable',
  );
  t.equal(
    mux.logs.filter((l) => l.route === 'hanging' && l.reject !== undefined).length,
    0,
    'meanwhile the hanging route is still waiting on its connects',
  );
  const hangLines = await Promise.all(
    (await Promise.all(hanging)).map((ex) => connectionLine(mux, ex.localPort)),
  );
  t.ok(
    hangLines.every((l) => l.route === 'hanging' && l.reject === 'backend_unavailable'),
    'then its clients are refused as backend_unavailable',
  );
  const refused = mux.logs.filter((l) => l.msg === 'backend connect failed');
  t.equal(refused.filter((l) => l.code === 'ECONNREFUSED').length, 30, 'each down connect reported');
  t.equal(refused.filter((l) => l.code === 'ETIMEDOUT').length, 5, 'each hanging connect reported');
  await finished(mux, 65);
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
  t.equal(mux.proc.exitCode, null, 'alive');
});

const prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));

t.test(
  'out of file descriptors, the mux refuses what it cannot serve and recovers',
  {
    skip: prlimit === undefined ? 'prlimit (util-linux) not installed' : false,
  },
  async (t) => {
    const echo = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    t.teardown(() => new Promise<void>((resolve) => echo.close(() => resolve())));
    const echoPort = await listen(echo);
    const mux = await startMux(t, muxConfig(table('timeouts', { detect: '300ms' }), route('echo', echoPort)));
    const baseline = await fdCount(mux.pid);
    // Room for a dozen relayed connections, then EMFILE on accept and on backend connects.
    execFileSync(prlimit!, ['--pid', String(mux.pid), `--nofile=${baseline + 24}:${baseline + 24}`]);
    const held: net.Socket[] = [];
    for (let i = 0; i < 100; i++) {
      const s = net.connect(mux.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('\xffhold');
      held.push(s);
    }
    const failed = await mux.waitForLog((l) => l.reject === 'fd_limit');
    t.match(
      failed,
      { route: 'echo', code: 'EMFILE' },
      'a backend connect without a free descriptor is refused as fd_limit, its own reason',
    );
    t.equal(
      mux.logs.filter((l) => l.msg === 'backend connect failed').length,
      0,
      'not counted as a backend failure: the backend is not marked down for a local shortage',
    );
    t.equal(mux.proc.exitCode, null, 'alive at the limit');
    for (const s of held) s.destroy();
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
    const body = Buffer.from('\xffstill serving', 'latin1');
    const ex = await exchange(mux.port, body);
    t.ok(ex.reply.equals(body), 'a new client is served once descriptors are free');
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);
