// The logs of a real sni-mux process: one JSON line per connection with its fields, the start line, warnings, pretty mode.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, watch, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { exchange, tlsThrough } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { scrape, value } from './helpers/metrics.js';
import { BIN, connectionLine, startMux } from './helpers/mux.js';
import { freePort, hasIpv6Loopback, missing, program, run, tempDir } from './helpers/programs.js';
import { closedPort, listen, startEcho, startRecorder, startTlsBackend } from './helpers/servers.js';

/** A backend that answers each chunk with `onData(socket)`: closes first, or resets. */
async function startBackend(t: Test, onData: (s: net.Socket) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.once('data', () => onData(s));
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: await listen(server) };
}

t.test(
  'one JSON line per connection, with client, listener, protocol, sni, alpn, route, backend, bytes, duration, end',
  async (t) => {
    const tlsBackend = await startTlsBackend(t, 'app.example', ['h2']);
    const rec = await startRecorder(t, 'plain');
    const mux = await startMux(
      t,
      muxConfig(
        route('app', tlsBackend.port, { sni: ['app.example'] }),
        route('plain', rec.port, { protocol: 'http' }),
      ),
    );
    const r = await tlsThrough(mux.port, 'app.example', ['h2']);
    const line = await connectionLine(mux, r.localPort);
    t.match(line, {
      level: 30,
      msg: 'connection closed',
      client: '127.0.0.1',
      client_port: r.localPort,
      listener: '127.0.0.1:0',
      protocol: 'tls',
      sni: 'app.example',
      alpn: ['h2'],
      route: 'app',
      backend: `127.0.0.1:${tlsBackend.port}`,
      bytes_client_to_backend: Number,
      bytes_backend_to_client: Number,
      duration_ms: Number,
      detect_ms: Number,
      connect_ms: Number,
      end: 'client_closed',
    });
    t.ok((line.bytes_client_to_backend as number) > 0 && (line.bytes_backend_to_client as number) > 0);
    t.ok((line.duration_ms as number) >= (line.detect_ms as number));
    t.ok(typeof line.time === 'string' && !Number.isNaN(Date.parse(line.time)), 'ISO time');

    const req = Buffer.from('GET / HTTP/1.1\r\nHost: Plain.Example:80\r\n\r\n');
    const p = await exchange(mux.port, req);
    t.match(await connectionLine(mux, p.localPort), {
      protocol: 'http',
      host: 'plain.example',
      route: 'plain',
      bytes_client_to_backend: req.length,
      bytes_backend_to_client: p.reply.length,
      end: 'client_closed',
    });
  },
);

t.test(
  'the line says why it ended: backend closed, idle timeout, a reset with its code, a refusal',
  async (t) => {
    const closer = await startBackend(t, (s) => s.end('bye'));
    const resetter = await startBackend(t, (s) => s.resetAndDestroy());
    const silent = await startEcho(t);
    const mux = await startMux(
      t,
      muxConfig(
        table('timeouts', { idle: '300ms' }),
        route('closer', closer.port, { protocol: 'ssh' }),
        route('resetter', resetter.port, { protocol: 'http' }),
        route('silent', silent.port, { protocol: 'socks5' }),
      ),
    );
    const a = await exchange(mux.port, Buffer.from('SSH-2.0-x\r\n'), { end: false });
    t.equal(a.reply.toString(), 'bye');
    t.match(await connectionLine(mux, a.localPort), {
      route: 'closer',
      end: 'backend_closed',
      code: undefined,
    });

    const b = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), { end: false });
    t.equal(b.errored, 'ECONNRESET', 'the reset is passed on');
    t.match(await connectionLine(mux, b.localPort), {
      route: 'resetter',
      end: 'backend_error',
      code: 'ECONNRESET',
    });

    // A SOCKS5 greeting, answered by the echo, then silence from both sides.
    const c = await exchange(mux.port, Buffer.from([5, 1, 0]), { end: false });
    t.match(await connectionLine(mux, c.localPort), {
      route: 'silent',
      end: 'idle_timeout',
      bytes_client_to_backend: 3,
    });

    const d = await exchange(mux.port, Buffer.from('\x00\x00\x00\x08\x04\xd2\x16\x2fnothing we route'));
    t.match(await connectionLine(mux, d.localPort), {
      level: 30,
      msg: 'connection refused: no_route',
      reject: 'no_route',
      route: undefined,
      end: undefined,
    });
  },
);

t.test('never more than one line per connection, however many chunks it relays', async (t) => {
  const rec = await startRecorder(t, 'rec');
  const mux = await startMux(t, muxConfig(route('rec', rec.port)));
  const bytes = Buffer.from(`SSH-2.0-x\r\n${'y'.repeat(300)}`);
  const r = await exchange(mux.port, bytes, { chunk: 1 });
  t.equal((await rec.received[0])?.length, bytes.length);
  await connectionLine(mux, r.localPort);
  await mux.stop();
  t.equal(mux.logs.filter((l) => l.client_port === r.localPort).length, 1);
  t.equal(mux.logs.filter((l) => l.conn !== undefined).length, 1, 'no other line about a connection');
});

t.test(
  'the start line lists listeners and the route count; failed backend connects warn',
  { skip: (await hasIpv6Loopback()) ? false : 'no IPv6 loopback ([::1]) on this host' },
  async (t) => {
    const dead = await closedPort();
    const echo = await startEcho(t);
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0", "[::1]:0"]
[[route]]
name = "ha"
backends = ["127.0.0.1:${dead}", "127.0.0.1:${echo.port}"]
[[route]]
name = "spare"
protocol = "ssh"
backend = "127.0.0.1:${echo.port}"
`,
    );
    const started = mux.logs.find((l) => l.msg === 'sni-mux started')!;
    t.match(started, {
      level: 30,
      msg: 'sni-mux started',
      version: String,
      routes: 2,
      listeners: [
        { config: '127.0.0.1:0', address: '127.0.0.1', port: Number },
        { config: '[::1]:0', address: '::1', port: Number },
      ],
    });
    const r = await exchange(mux.port, Buffer.from('anything'));
    t.equal(r.reply.toString(), 'anything', 'the second backend answered');
    const warn = await mux.waitForLog((l) => l.msg === 'backend connect failed');
    t.match(warn, { level: 40, route: 'ha', backend: `127.0.0.1:${dead}`, code: 'ECONNREFUSED', ms: Number });
    t.match(await connectionLine(mux, r.localPort), {
      backend: `127.0.0.1:${echo.port}`,
      end: 'client_closed',
    });
  },
);

/** Runs sni-mux with the given config and collects its stdout lines as text. */
function spawnMux(t: Test, toml: string) {
  const dir = tempDir(t, 'log');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, toml);
  const proc = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const lines: string[] = [];
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred(line)) waiters.splice(i, 1)[0]!.resolve(line);
    }
  });
  const waitFor = (pred: (l: string) => boolean): Promise<string> => {
    const seen = lines.find(pred);
    return seen !== undefined
      ? Promise.resolve(seen)
      : new Promise((resolve) => waiters.push({ pred, resolve }));
  };
  return { proc, lines, waitFor, exited };
}

/** Resolves true once `file` exists (watching its directory), false if the process exits first. */
function appears(file: string, exited: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const watcher = watch(dirname(file));
    const done = (found: boolean): void => {
      watcher.close();
      resolve(found);
    };
    watcher.on('change', () => {
      if (existsSync(file)) done(true);
    });
    void exited.then(() => done(existsSync(file)));
    if (existsSync(file)) done(true);
  });
}

const isJson = (line: string): boolean => {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
};

t.test('format = "pretty" writes readable lines, not JSON, one per event', async (t) => {
  const echo = await startEcho(t);
  const mux = spawnMux(t, muxConfig(table('log', { format: 'pretty' }), route('echo', echo.port)));
  const started = await mux.waitFor((l) => l.includes('sni-mux started'));
  t.match(started, /INFO.*sni-mux started/);
  const port = Number(/"port":\s*(\d+)/.exec(started)?.[1]);
  t.ok(port > 0, 'the bound port is in the start line');
  const r = await exchange(port, Buffer.from('hello'));
  t.equal(r.reply.toString(), 'hello');
  const closed = await mux.waitFor((l) => l.includes('connection closed'));
  t.match(closed, /INFO.*connection closed .*"route":"echo"/);
  t.match(closed, new RegExp(`"client_port":${r.localPort}[,}]`));
  mux.proc.kill('SIGTERM');
  t.equal(await mux.exited, 0);
  t.match(mux.lines.at(-1), /INFO.*stopped/, 'the last line is written before exit');
  t.notOk(mux.lines.some(isJson), 'no JSON lines');
  t.notOk(
    mux.lines.some((l) => l.includes('\x1b[')),
    'no colour codes when stdout is not a terminal',
  );
});

t.test('[log] level = "warn" prints warnings and nothing below', async (t) => {
  const dead = await closedPort();
  const echo = await startEcho(t);
  // At this level there is no start line to learn a port from: pick a free one, and learn that the
  // listener is up from the pid file, written once the listeners are bound.
  const port = await freePort();
  const pidFile = join(tempDir(t, 'pid'), 'mux.pid');
  const mux = spawnMux(
    t,
    `listen = ["127.0.0.1:${port}"]
pid_file = "${pidFile}"
[log]
level = "warn"
format = "json"
[[route]]
name = "ha"
backends = ["127.0.0.1:${dead}", "127.0.0.1:${echo.port}"]
`,
  );
  t.ok(await appears(pidFile, mux.exited), 'the pid file is written: the listener is bound');
  const r = await exchange(port, Buffer.from('ping'));
  t.equal(r.reply.toString(), 'ping', 'relayed by the second backend');
  const warn = JSON.parse(await mux.waitFor((l) => l.includes('backend connect failed'))) as Record<
    string,
    unknown
  >;
  t.match(warn, { level: 40, route: 'ha', code: 'ECONNREFUSED' });
  mux.proc.kill('SIGTERM');
  t.equal(await mux.exited, 0);
  const levels = mux.lines.map((l) => (JSON.parse(l) as { level: number }).level);
  t.ok(levels.length > 0 && levels.every((l) => l >= 40), `only warnings and worse (${levels.join(', ')})`);
});

t.test(
  'a stdout nobody reads costs log lines, never relaying: drops counted in /metrics, then reported in the log',
  async (t) => {
    const echo = await startEcho(t);
    const dir = tempDir(t, 'log');
    const file = join(dir, 'mux.toml');
    writeFileSync(
      file,
      muxConfig(
        table('admin', { listen: '127.0.0.1:0' }),
        table('log', { format: 'json' }),
        route('echo', echo.port),
      ),
    );
    const proc = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
    t.teardown(async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    });
    // Read up to the start line, then stop reading: the pipe and our stream's buffer fill up.
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
    };
    proc.stdout!.on('data', onData);
    const startLine = (): Record<string, unknown> | undefined => {
      const line = text.split('\n').find((l) => l.includes('"sni-mux started"'));
      return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
    };
    while (startLine() === undefined) await new Promise((resolve) => proc.stdout!.once('data', resolve));
    proc.stdout!.removeListener('data', onData);
    proc.stdout!.pause();
    const started = startLine()!;
    const port = (started.listeners as { port: number }[])[0]!.port;
    const admin = (started.admin as { port: number }).port;

    // Fill the log: a connection that closes at once costs the mux little and writes one line. In
    // batches, until lines are being dropped (or a bound: the buffer is 1 MiB, a line ~300 bytes).
    const quick = (): Promise<void> =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.end());
        s.on('error', () => {});
        s.on('close', () => resolve());
      });
    let connections = 0;
    let dropped = 0;
    for (let i = 0; i < 40 && dropped === 0; i++) {
      await Promise.all(Array.from({ length: 250 }, quick));
      connections += 250;
      dropped = value(await scrape(admin), 'snimux_log_lines_dropped_total') ?? 0;
    }
    t.ok(dropped > 0, `snimux_log_lines_dropped_total counts the dropped lines (${dropped})`);

    // Relaying goes on while the log is stuck.
    const N = 200;
    let done = 0;
    let intact = 0;
    const worker = async (): Promise<void> => {
      while (done < N) {
        done++;
        const body = Buffer.from(`\xffround trip ${done}`, 'latin1');
        const r = await exchange(port, body);
        if (r.reply.equals(body)) intact++;
      }
    };
    // A bound, not a threshold: a mux blocked on its log would never finish.
    const all = Promise.all(Array.from({ length: 8 }, worker));
    await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    t.equal(intact, N, `all ${N} round trips completed, bytes intact, while nobody read the log`);
    connections += N;
    dropped = value(await scrape(admin), 'snimux_log_lines_dropped_total') ?? 0;

    // The reader is back: what was kept arrives whole, then one line says how many were dropped.
    proc.stdout!.on('data', onData);
    proc.stdout!.resume();
    const reportLine = (): Record<string, unknown> | undefined => {
      const line = text.split('\n').find((l) => l.includes('"log lines dropped'));
      return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
    };
    while (reportLine() === undefined) await new Promise((resolve) => proc.stdout!.once('data', resolve));
    t.match(reportLine(), { level: 40, dropped, dropped_total: dropped }, 'one warning says how many');
    const lines = text.split('\n').filter((l) => l !== '');
    t.ok(lines.every(isJson), 'every line kept is whole');
    const connLines = lines.filter((l) => l.includes('"conn":')).length;
    t.equal(
      connLines + dropped,
      connections,
      `connection lines ${connLines} + dropped ${dropped} = connections ${connections}`,
    );
    proc.kill('SIGTERM');
    t.equal(await exited, 0, 'exits 0');
  },
);

t.test('a hello with 64 KB of ALPN names makes a short line: names and their count capped', async (t) => {
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(t, muxConfig(route('tls', rec.port, { protocol: 'tls' })));
  const alpn = Array.from({ length: 2000 }, (_, i) => `${'x'.repeat(24)}-${String(i).padStart(5, '0')}`);
  // Records of at most 2^14 bytes, as a real client frames a long hello.
  const hello = buildClientHello({ sni: 'big.example', alpn, recordSplit: [16384, 16384, 16384] });
  t.ok(hello.length > 60_000, `a ${hello.length}-byte hello`);
  const r = await exchange(mux.port, hello);
  const line = await connectionLine(mux, r.localPort);
  t.match(line, { route: 'tls', sni: 'big.example', alpn_count: 2000 });
  t.equal((line.alpn as string[]).length, 8, 'eight names logged');
  const size = JSON.stringify(line).length;
  t.ok(size < 2048, `the line is ${size} bytes`);
});

t.test('with 20 dead backends a connection writes one line for its failed attempts', async (t) => {
  const dead = await Promise.all(Array.from({ length: 20 }, () => closedPort()));
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(route('many', [...dead, echo.port])));
  const r = await exchange(mux.port, Buffer.from('\xffafter twenty', 'latin1'));
  t.equal(r.reply.toString('latin1'), '\xffafter twenty', 'the 21st backend answered');
  const line = await connectionLine(mux, r.localPort);
  const failed = mux.logs.filter((l) => l.msg === 'backend connect failed');
  t.equal(failed.length, 1, 'one line');
  t.match(failed[0], {
    conn: line.conn,
    route: 'many',
    backend: `127.0.0.1:${dead[0]}`,
    code: 'ECONNREFUSED',
  });
  t.same(
    (failed[0]!.failures as { backend: string }[]).map((f) => f.backend),
    dead.map((p) => `127.0.0.1:${p}`),
    'naming every failed attempt in order',
  );
});

t.test('the jq lines in docs/metrics.md run on real log lines', { skip: missing('jq') }, async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(route('blog', echo.port, { protocol: 'ssh' })));
  const a = await exchange(mux.port, Buffer.from('SSH-2.0-x\r\n'));
  const routed = await connectionLine(mux, a.localPort);
  const b = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const refused = await connectionLine(mux, b.localPort);
  const journal = `${[routed, refused].map((l) => JSON.stringify(l)).join('\n')}\n`;

  const docs = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');
  const filters = [...docs.matchAll(/\| jq (-[cr]) '([^']+)'/g)].map((m) => [m[1]!, m[2]!] as const);
  t.equal(filters.length, 2, 'both jq lines found');
  const [blog, reasons] = await Promise.all(
    filters.map(([flag, filter]) => run(program('jq'), [flag, filter], { input: journal })),
  );
  t.equal(blog!.code, 0, blog!.stderr);
  t.same(JSON.parse(blog!.text), {
    client: '127.0.0.1',
    sni: null,
    bytes_backend_to_client: routed.bytes_backend_to_client,
    end: routed.end,
  });
  t.equal(reasons!.code, 0, reasons!.stderr);
  t.equal(reasons!.text, 'no_route\n');
});
