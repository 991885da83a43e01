// Connection limits of a real sni-mux: per-source and global caps exact, slow clients cut, nothing leaked.
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { captureFirstBytes } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { connectionLine, fdCount, fdsBackTo, type MuxProcess, startMux } from './helpers/mux.js';
import { type Held, holdOpen } from './helpers/ops.js';
import { startEcho, startRecorder } from './helpers/servers.js';

const limitLine = (l: { msg: string }): boolean => l.msg === 'connection refused: limit reached';

async function open(t: Test, mux: MuxProcess, source: string): Promise<Held> {
  const r = await holdOpen(mux.port, source);
  if (r.kind !== 'open')
    t.fail(`a connection from ${source} within the limits was closed: ${JSON.stringify(r)}`);
  return (r as { held: Held }).held;
}

async function refused(t: Test, mux: MuxProcess, source: string, what: string): Promise<number> {
  const r = await holdOpen(mux.port, source);
  t.equal(r.kind, 'closed', what);
  if (r.kind === 'closed') t.equal(r.received, 0, 'nothing relayed to it');
  return r.kind === 'closed' ? r.localPort : 0;
}

/** Closes held connections and waits until the mux has logged each of them. */
async function closeAll(mux: MuxProcess, held: Held[]): Promise<void> {
  for (const h of held) h.socket.end();
  await Promise.all(held.map((h) => connectionLine(mux, h.localPort)));
}

t.test(
  'max_connections_per_source: N open from one address, the N+1th refused; others unaffected',
  async (t) => {
    const echo = await startEcho(t);
    const mux = await startMux(
      t,
      muxConfig(
        table('limits', { max_connections: 100, max_connections_per_source: 3 }),
        route('echo', echo.port),
      ),
    );
    const baseline = await fdCount(mux.pid);
    const held = [
      await open(t, mux, '127.0.0.1'),
      await open(t, mux, '127.0.0.1'),
      await open(t, mux, '127.0.0.1'),
    ];
    const port = await refused(t, mux, '127.0.0.1', 'the 4th from 127.0.0.1 is closed at once');
    t.match(
      await connectionLine(mux, port),
      { reject: 'limit', client: '127.0.0.1' },
      'logged with reason limit',
    );
    t.ok(mux.logs.some(limitLine), 'and a warning that a limit was reached');
    held.push(await open(t, mux, '127.0.0.2'));
    t.pass('another source still gets in');
    for (const h of held)
      t.equal(await h.echo('alive'), 'alive', 'the connections within the limit keep relaying');

    held.shift()!.socket.end();
    await mux.waitForLog((l) => l.end !== undefined && l.client === '127.0.0.1');
    held.push(await open(t, mux, '127.0.0.1'));
    t.pass('once one closed, the next from 127.0.0.1 is let in');
    await refused(t, mux, '127.0.0.1', 'and the one after that is refused again');

    await closeAll(mux, held);
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
  },
);

t.test(
  'max_connections: at the cap, new clients wait (not refused) and are served in order as slots free',
  async (t) => {
    const echo = await startEcho(t);
    const mux = await startMux(
      t,
      muxConfig(
        table('limits', { max_connections: 3, max_connections_per_source: 100 }),
        route('echo', echo.port),
      ),
    );
    const baseline = await fdCount(mux.pid);
    const held = [
      await open(t, mux, '127.0.0.1'),
      await open(t, mux, '127.0.0.2'),
      await open(t, mux, '127.0.0.3'),
    ];
    const order: string[] = [];
    const waiting = ['127.0.0.4', '127.0.0.5'].map((source) =>
      holdOpen(mux.port, source).then((r) => {
        order.push(source);
        return r;
      }),
    );
    // Both have connected and sent their bytes; a round trip on every held connection later, neither
    // has been answered or refused.
    for (const h of held) t.equal(await h.echo('alive'), 'alive', 'the connections at the cap keep relaying');
    t.same(order, [], 'the clients over the cap wait');
    t.equal(mux.logs.filter(limitLine).length, 0, 'nothing refused');

    held.shift()!.socket.end();
    const first = await waiting[0]!;
    t.equal(first.kind, 'open', 'a slot freed: the first waiting client is served');
    t.same(order, ['127.0.0.4'], 'the second still waits');
    held.shift()!.socket.end();
    const second = await waiting[1]!;
    t.equal(second.kind, 'open', 'then the second');
    for (const r of [first, second]) if (r.kind === 'open') held.push(r.held);
    await closeAll(mux, held);
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
  },
);

t.test(
  'a ClientHello trickled byte by byte is cut at timeouts.detect; the backend never sees it',
  async (t) => {
    const rec = await startRecorder(t, 'tls');
    const mux = await startMux(
      t,
      muxConfig(table('timeouts', { detect: '300ms' }), route('tls', rec.port, { protocol: 'tls' })),
    );
    const baseline = await fdCount(mux.pid);
    const hello = await captureFirstBytes((port) =>
      tls.connect({ port, host: '127.0.0.1', servername: 'slow.example', rejectUnauthorized: false }),
    );
    const sent = await new Promise<{ bytes: number; localPort: number }>((resolve) => {
      const s = net.connect(mux.port, '127.0.0.1');
      let bytes = 0;
      let localPort = 0;
      let timer: NodeJS.Timeout | undefined;
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ bytes, localPort });
      });
      // One byte every 20 ms, as a slowloris would: each byte is progress, none is a decision.
      const drip = (): void => {
        if (s.destroyed || bytes >= hello.length) return;
        s.write(hello.subarray(bytes, bytes + 1));
        bytes++;
        timer = setTimeout(drip, 20);
      };
      s.on('connect', () => {
        localPort = s.localPort!;
        drip();
      });
    });
    t.ok(sent.bytes < hello.length, `closed after ${sent.bytes} of ${hello.length} bytes`);
    t.match(await connectionLine(mux, sent.localPort), { reject: 'detect_timeout', route: undefined });
    t.same(rec.received, [], 'nothing reached the backend');
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
  },
);

t.test('folded limit refusals all reach the log: a second after the flood, and at stop', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(table('limits', { max_connections_per_source: 1 }), route('echo', echo.port)),
  );
  // A line with a connection stands for itself and the `suppressed` before it; a folded count alone has none.
  const counted = (): number =>
    mux.logs
      .filter(limitLine)
      .reduce((n, l) => n + (l.conn === undefined ? 0 : 1) + ((l.suppressed as number) ?? 0), 0);
  const held = await open(t, mux, '127.0.0.1');
  for (let i = 0; i < 30; i++) await refused(t, mux, '127.0.0.1', `refusal ${i + 1}`);
  // Bounded: before the fix the count of the last second's refusals was never written.
  await Promise.race([
    mux.waitForLog(() => counted() >= 30),
    new Promise((resolve) => setTimeout(resolve, 5000)),
  ]);
  t.equal(counted(), 30, 'the end of a flood is counted within a second, with no new refusal');
  for (let i = 0; i < 30; i++) await refused(t, mux, '127.0.0.1', `refusal ${i + 31}`);
  held.socket.end();
  t.equal(await mux.stop(), 0, 'stopped');
  t.equal(counted(), 60, 'and at stop, every refusal is in the log');
});
