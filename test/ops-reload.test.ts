// Reload of a running sni-mux: under load nothing is dropped or refused, a bad config changes nothing, `sni-mux reload`.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { fdCount, fdsBackTo, type LogLine, startMux } from './helpers/mux.js';
import { nthLog, rewriteAndReload, runCli } from './helpers/ops.js';
import { freePort } from './helpers/programs.js';
import { listen, startEcho, startRecorder } from './helpers/servers.js';

const PROBE = Buffer.from('\xffprobe', 'latin1');

const reloaded = (l: LogLine): boolean => l.msg === 'config reloaded';
const failed = (l: LogLine): boolean => l.msg === 'reload failed: keeping the old config';

/** Which recorder answered a probe ("old 6 <sha>" → "old"), or the error. */
async function probe(port: number): Promise<string> {
  const ex = await exchange(port, PROBE);
  if (ex.errored !== undefined) return `error ${ex.errored}`;
  return ex.reply.toString().split(' ')[0] || 'closed without a reply';
}

/**
 * One long relayed connection: an SSH banner (so it routes to the echo backend), then random chunks
 * on demand, hashing what was sent and what came back.
 */
class Streamer {
  readonly socket: net.Socket;
  sentBytes = 0;
  receivedBytes = 0;
  chunks = 0;
  private readonly sent = createHash('sha256');
  private readonly received = createHash('sha256');
  private readonly closed: Promise<void>;
  private queue: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    this.socket.on('data', (d: Buffer) => {
      this.receivedBytes += d.length;
      this.received.update(d);
    });
    this.socket.on('end', () => this.socket.end());
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.queue = new Promise<void>((resolve) => this.socket.once('connect', () => resolve())).then(() =>
      this.write(Buffer.from('SSH-2.0-streamer\r\n')),
    );
  }

  /** Queues `n` chunks of 16 KiB, written as fast as backpressure allows; resolves when all are written. */
  send(n: number): Promise<void> {
    this.queue = this.queue.then(async () => {
      for (let i = 0; i < n && !this.socket.destroyed; i++) {
        this.chunks++;
        await this.write(randomBytes(16 * 1024));
      }
    });
    return this.queue;
  }

  async result(): Promise<{ sent: string; received: string; bytes: number; receivedBytes: number }> {
    await this.queue;
    this.socket.end();
    await this.closed;
    return {
      sent: this.sent.digest('hex'),
      received: this.received.digest('hex'),
      bytes: this.sentBytes,
      receivedBytes: this.receivedBytes,
    };
  }

  private write(b: Buffer): Promise<void> {
    this.sentBytes += b.length;
    this.sent.update(b);
    if (this.socket.write(b)) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('drain', resolve));
  }
}

t.test(
  'reload under load: the live stream is intact, no attempt is refused, the next one uses the new route',
  async (t) => {
    const echo = await startEcho(t);
    const oldRec = await startRecorder(t, 'old');
    const newRec = await startRecorder(t, 'new');
    const removed = await freePort();
    const added = await freePort();
    const config = (
      listen: number,
      backend: number,
    ): string => `listen = ["127.0.0.1:0", "127.0.0.1:${listen}"]
[[route]]
name = "stream"
protocol = "ssh"
backend = "127.0.0.1:${echo.port}"
[[route]]
name = "probe"
backend = "127.0.0.1:${backend}"
`;
    const mux = await startMux(t, config(removed, oldRec.port));
    const baseline = await fdCount(mux.pid);
    t.equal(await probe(removed), 'old', 'the listen address about to be removed serves');

    const streamer = new Streamer(mux.port);
    await streamer.send(20);
    // Six clients probe at once, each one connection after another, until the reloads are done.
    let logged = 0; // reloads the test has seen logged
    let signalled = 0; // SIGHUPs sent
    let done = false;
    const outcomes = new Map<string, number>();
    const served: { logged: number; signalled: number; who: string }[] = [];
    const waiters: { logged: number; left: number; resolve: () => void }[] = [];
    const loop = async (): Promise<void> => {
      for (let i = 0; i < 500 && !done; i++) {
        const started = logged;
        const who = await probe(mux.port);
        outcomes.set(who, (outcomes.get(who) ?? 0) + 1);
        served.push({ logged: started, signalled, who });
        for (const w of waiters) if (started >= w.logged && --w.left === 0) w.resolve();
      }
    };
    const probing = Promise.all(Array.from({ length: 6 }, loop));
    /** Resolves once five probes begun after reload n was logged have been answered. */
    const servedSince = (n: number): Promise<void> =>
      new Promise((resolve) => waiters.push({ logged: n, left: 5, resolve }));

    // Odd reloads switch to the new backend and the added address, even ones back; the last is odd.
    // Each is sent while 40 chunks of the stream are in flight, and probes are running.
    const RELOADS = 9;
    const routeOf = (k: number): string => (k % 2 === 1 ? 'new' : 'old');
    let line: LogLine | undefined;
    for (let k = 1; k <= RELOADS; k++) {
      const flowing = streamer.send(40);
      signalled = k;
      rewriteAndReload(mux, k % 2 === 1 ? config(added, newRec.port) : config(removed, oldRec.port));
      line = await nthLog(mux, k, reloaded);
      logged = k;
      await servedSince(k);
      await flowing;
    }
    done = true;
    await probing;
    await streamer.send(20);
    const result = await streamer.result();

    t.equal(
      result.receivedBytes,
      result.bytes,
      `the stream got back every byte it sent (${result.bytes} bytes)`,
    );
    t.equal(result.received, result.sent, 'identical bytes (sha256)');
    const bad = [...outcomes].filter(([who]) => who !== 'old' && who !== 'new');
    t.same(
      bad,
      [],
      `no probe was refused, reset or left unanswered (${served.length} probes, ${RELOADS} reloads)`,
    );
    // A probe begun after reload k was logged, and answered before reload k+1 was signalled, saw config k.
    const certain = served.filter((s) => s.logged > 0 && s.signalled === s.logged);
    t.ok(certain.length >= RELOADS, `at least one such probe per reload (${certain.length})`);
    t.same(
      certain.filter((s) => s.who !== routeOf(s.logged)),
      [],
      "every connection made after a reload was logged used that reload's route",
    );
    t.match(line!.changes, [`listen + 127.0.0.1:${added}`, `listen - 127.0.0.1:${removed}`, 'route ~ probe']);
    t.equal(await probe(added), 'new', 'the added listen address is open');
    t.equal(await probe(removed), 'error ECONNREFUSED', 'the removed one is closed');
    const streamLine = await mux.waitForLog((l) => l.route === 'stream' && l.end !== undefined);
    t.equal(
      streamLine.bytes_client_to_backend,
      result.bytes,
      'the mux logged the whole stream as one connection',
    );
    // Every connection has closed: the probes, the stream, one probe before the reloads and one after.
    const total = served.length + 3;
    await mux.waitForLog(
      () => mux.logs.filter((l) => l.end !== undefined || l.reject !== undefined).length >= total,
    );
    t.equal(
      await fdsBackTo(mux.pid, baseline),
      baseline,
      'fd count back to baseline (same number of listeners)',
    );
    const ms = mux.logs.filter(reloaded).map((l) => l.ms as number);
    t.comment(`probes: ${JSON.stringify(Object.fromEntries(outcomes))}; reloads took ${ms.join(', ')} ms`);
  },
);

t.test('a config that cannot be applied on SIGHUP changes nothing, and the log says why', async (t) => {
  const oldRec = await startRecorder(t, 'old');
  const newRec = await startRecorder(t, 'new');
  const busy = net.createServer();
  const busyPort = await listen(busy);
  t.teardown(() => busy.close());
  const spare = await freePort();
  const good = `listen = ["127.0.0.1:0"]
[[route]]
name = "probe"
backend = "127.0.0.1:${oldRec.port}"
`;
  const mux = await startMux(t, good);
  const attempts: [string, string, RegExp][] = [
    ['TOML syntax', 'listen = ["127.0.0.1:0"\n', /TOML syntax/],
    [
      'a key with a typo',
      `listen = ["127.0.0.1:0"]\n[[route]]\nname = "probe"\nbakend = "127.0.0.1:${newRec.port}"\n`,
      /did you mean `backend`/,
    ],
    [
      'an address already in use (with another that is free)',
      `listen = ["127.0.0.1:0", "127.0.0.1:${spare}", "127.0.0.1:${busyPort}"]
[[route]]
name = "probe"
backend = "127.0.0.1:${newRec.port}"
`,
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busyPort}: EADDRINUSE`),
    ],
  ];
  let n = 0;
  for (const [what, toml, why] of attempts) {
    rewriteAndReload(mux, toml);
    const line = await nthLog(mux, ++n, failed);
    t.match((line.errors as string[]).join('\n'), why, `${what}: the reason is logged`);
    t.equal(await probe(mux.port), 'old', `${what}: the old route still serves`);
  }
  t.equal(
    await probe(spare),
    'error ECONNREFUSED',
    'the free address of the failed reload was not left open',
  );
  t.notOk(mux.logs.some(reloaded), 'no reload took effect');
  rewriteAndReload(mux, good.replace(String(oldRec.port), String(newRec.port)));
  await mux.waitForLog(reloaded);
  t.equal(await probe(mux.port), 'new', 'a good config after bad ones applies');
  t.equal(mux.proc.exitCode, null, 'alive throughout');
});

t.test(
  '`sni-mux reload` signals the process named by pid_file; the pid file is removed at exit',
  async (t) => {
    const oldRec = await startRecorder(t, 'old');
    const newRec = await startRecorder(t, 'new');
    const dir = mkdtempSync(join(tmpdir(), 'snimux-pid-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const pidFile = join(dir, 'sni-mux.pid');
    const toml = (backend: number): string => `listen = ["127.0.0.1:0"]
pid_file = "${pidFile}"
[[route]]
name = "probe"
backend = "127.0.0.1:${backend}"
`;
    const mux = await startMux(t, toml(oldRec.port));
    t.equal(readFileSync(pidFile, 'utf8'), `${mux.pid}\n`, 'the pid file holds the pid');

    writeFileSync(mux.configFile, toml(newRec.port));
    const run = await runCli(['reload', '--config', mux.configFile]);
    t.equal(run.code, 0, run.stderr);
    t.match(run.stdout, new RegExp(`sent SIGHUP to sni-mux \\(pid ${mux.pid}, from ${pidFile}\\)`));
    await nthLog(mux, 1, reloaded);
    t.equal(await probe(mux.port), 'new', 'the reload took effect');

    writeFileSync(mux.configFile, toml(oldRec.port));
    const byPid = await runCli(['reload', '--pid-file', pidFile]);
    t.equal(byPid.code, 0, byPid.stderr);
    await nthLog(mux, 2, reloaded);
    t.equal(await probe(mux.port), 'old', '--pid-file works too');

    writeFileSync(mux.configFile, `${toml(newRec.port)}\nbogus = 1\n`);
    const bad = await runCli(['reload', '--config', mux.configFile]);
    t.equal(bad.code, 1, 'an invalid config is not sent');
    t.match(bad.stderr, /bogus: unknown key[\s\S]*not reloading/);

    t.equal(await mux.stop(), 0);
    t.notOk(existsSync(pidFile), 'the pid file is gone after exit');
    t.notOk(mux.logs.some(failed), 'the running process never saw the bad file');
  },
);

t.test('`sni-mux reload` does not signal a pid that is not sni-mux, nor a missing one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'snimux-pid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'stale.pid');
  // A stale pid file whose number now belongs to another program: SIGHUP would kill it.
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => {
    other.kill('SIGKILL');
  });
  writeFileSync(pidFile, `${other.pid}\n`);
  const run = await runCli(['reload', '--pid-file', pidFile]);
  t.equal(run.code, 1);
  t.match(run.stderr, new RegExp(`pid ${other.pid} .* is not sni-mux .*stale; not signalled`));
  t.match(readFileSync(`/proc/${other.pid}/status`, 'utf8'), /State:\s+S/, 'the other program still sleeps');

  const none = await runCli(['reload', '--pid-file', join(dir, 'missing.pid')]);
  t.equal(none.code, 1);
  t.match(none.stderr, /does not exist: is sni-mux running/);

  const conf = join(dir, 'mux.toml');
  writeFileSync(conf, 'listen = ["127.0.0.1:0"]\n[[route]]\nname = "a"\nbackend = "127.0.0.1:1"\n');
  const noPidFile = await runCli(['reload', '--config', conf]);
  t.equal(noPidFile.code, 1);
  t.match(noPidFile.stderr, /sets no pid_file.*systemctl reload sni-mux/);
});

t.test('a reload that moves [admin] binds the new address and closes the old one', async (t) => {
  const rec = await startRecorder(t, 'r');
  const [a, b] = [await freePort(), await freePort()];
  const toml = (admin: number): string =>
    muxConfig(table('admin', { listen: `127.0.0.1:${admin}` }), route('any', rec.port));
  const health = async (port: number): Promise<string> => {
    try {
      return String((await fetch(`http://127.0.0.1:${port}/healthz`)).status);
    } catch (err) {
      return String(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code);
    }
  };
  const mux = await startMux(t, toml(a));
  t.equal(await health(a), '200');
  rewriteAndReload(mux, toml(b));
  await mux.waitForLog(reloaded);
  t.match(
    mux.logs.find((l) => l.msg === 'admin endpoint moved'),
    { admin: { port: b }, was: `127.0.0.1:${a}` },
  );
  t.equal(await health(b), '200', 'the new address answers');
  t.equal(await health(a), 'ECONNREFUSED', 'the old one is closed');
});
