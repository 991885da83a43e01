// Graceful shutdown of a real sni-mux: SIGTERM stops accepting and drains, timeouts.drain bounds it, a second signal cuts.
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { captureFirstBytes, exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { holdOpen } from './helpers/ops.js';
import { sha256, startEcho, startRecorder } from './helpers/servers.js';

const draining = (l: { msg: string }): boolean => l.msg === 'draining';

t.test('SIGTERM: new connections are refused, accepted ones finish, exit code 0', async (t) => {
  const echo = await startEcho(t);
  const rec = await startRecorder(t, 'tls');
  const mux = await startMux(
    t,
    muxConfig(route('tls', rec.port, { protocol: 'tls' }), route('echo', echo.port)),
  );
  const hello = await captureFirstBytes((port) =>
    tls.connect({ port, host: '127.0.0.1', servername: 'late.example', rejectUnauthorized: false }),
  );
  // A client that has sent half its ClientHello when the signal comes: still detecting.
  const midway = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
  const reply: Buffer[] = [];
  midway.on('data', (d: Buffer) => reply.push(d));
  const midwayClosed = new Promise((resolve) => midway.once('close', resolve));
  await new Promise((resolve) => midway.once('connect', resolve));
  midway.write(hello.subarray(0, 10));
  // Accepted in order: once this later client is relayed, the earlier one has been accepted too.
  const live = await holdOpen(mux.port);
  if (live.kind !== 'open') throw new Error(`not relayed: ${JSON.stringify(live)}`);

  mux.proc.kill('SIGTERM');
  await mux.waitForLog(draining);
  const refused = await exchange(mux.port, Buffer.from('\xffnew', 'latin1'));
  t.equal(refused.errored, 'ECONNREFUSED', 'a new connection is refused while draining');

  t.equal(await live.held.echo('still here'), 'still here', 'the relayed connection keeps flowing');
  midway.end(hello.subarray(10));
  await midwayClosed;
  const got = Buffer.concat(reply).toString();
  t.equal(
    got,
    `tls ${hello.length} ${sha256(hello)}`,
    'the client caught mid-detection was routed and relayed',
  );
  t.equal(mux.proc.exitCode, null, 'still running while a connection is open');
  live.held.socket.end();
  t.equal(await mux.exited, 0, 'exit code 0 once the last one closed');
  t.ok(
    mux.logs.some((l) => l.msg === 'stopped'),
    'logged "stopped"',
  );
  t.notOk(
    mux.logs.some((l) => l.msg.startsWith('drain timeout')),
    'nothing had to be cut',
  );
});

t.test('past timeouts.drain the remaining connections are closed and the process exits 0', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(table('timeouts', { drain: '200ms' }), route('echo', echo.port)));
  const live = await holdOpen(mux.port);
  if (live.kind !== 'open') throw new Error('not relayed');
  mux.proc.kill('SIGTERM');
  await live.held.closed;
  t.pass('the idle connection was closed by the mux');
  t.equal(await mux.exited, 0);
  t.match(await connectionLine(mux, live.held.localPort), { end: 'shutdown', route: 'echo' });
  t.match(
    mux.logs.find((l) => l.msg.startsWith('drain timeout')),
    { live: 1, drain_ms: 200 },
  );
});

t.test('a second signal closes everything and exits at once; SIGHUP while draining is ignored', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(t, muxConfig(table('timeouts', { drain: '1h' }), route('echo', echo.port)));
  const live = await holdOpen(mux.port);
  if (live.kind !== 'open') throw new Error('not relayed');
  mux.proc.kill('SIGTERM');
  await mux.waitForLog(draining);
  mux.proc.kill('SIGHUP');
  await mux.waitForLog((l) => l.msg === 'reload ignored');
  t.equal(await live.held.echo('ping'), 'ping', 'still relaying after the ignored reload');
  mux.proc.kill('SIGINT');
  t.equal(await mux.exited, 0, 'exited without waiting for the 1h drain');
  await live.held.closed;
  t.match(
    mux.logs.find((l) => l.msg.startsWith('second signal')),
    { signal: 'SIGINT', live: 1 },
  );
  t.match(
    await connectionLine(mux, live.held.localPort),
    { end: 'shutdown' },
    'its line was written before exit',
  );
});

t.test('exactly one "stopped" line after a second signal (TERM+TERM, TERM+HUP+TERM, INT+INT)', async (t) => {
  const echo = await startEcho(t);
  const sequences: NodeJS.Signals[][] = [
    ['SIGTERM', 'SIGTERM'],
    ['SIGTERM', 'SIGHUP', 'SIGTERM'],
    ['SIGINT', 'SIGINT'],
  ];
  for (const signals of sequences) {
    const mux = await startMux(t, muxConfig(table('timeouts', { drain: '1h' }), route('echo', echo.port)));
    const live = await holdOpen(mux.port);
    if (live.kind !== 'open') throw new Error('not relayed');
    const [first, ...rest] = signals;
    mux.proc.kill(first);
    await mux.waitForLog(draining);
    for (const s of rest) {
      if (s === 'SIGHUP') {
        mux.proc.kill(s);
        await mux.waitForLog((l) => l.msg === 'reload ignored');
      } else mux.proc.kill(s);
    }
    t.equal(await mux.exited, 0, `${signals.join('+')}: exit 0`);
    t.equal(
      mux.logs.filter((l) => l.msg === 'stopped').length,
      1,
      `${signals.join('+')}: one "stopped" line`,
    );
  }
});
