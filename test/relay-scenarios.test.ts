// Random relays through a real mux, both ways at once: who sends FIN first and when, how much each side
// sends, how fast each reads. Every byte must arrive both ways, in order, and each side must see the
// other's FIN. The stall fixed in 9ca7022 (a FIN landing while the relay held bytes for a slow peer)
// was one such scenario, met about once in 100; this looks for the next. RELAY_SCENARIOS=N plays more.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { type ReadSpeed, type Received, readUntilClose } from './helpers/clients.js';
import { muxConfig, route } from './helpers/config.js';
import { fdCount, fdsBackTo, startMux } from './helpers/mux.js';
import { listen, sha256 } from './helpers/servers.js';

/** When a side sends its bytes and its FIN: at once; after the peer's FIN; bytes at once, FIN after. */
type Fin = 'first' | 'after-peer' | 'write-then-wait';
interface Side {
  size: number;
  fin: Fin;
  speed: ReadSpeed;
  /** Reads nothing for this long at the start: the relay's buffers toward it fill up. */
  stallMs: number;
}

const SCENARIOS = Number(process.env.RELAY_SCENARIOS ?? 150);
/** A guard against a hang, not a timing check: the scenario is reported instead of tap's timeout. */
const GUARD_MS = 60_000;

const side: fc.Arbitrary<Side> = fc.record({
  size: fc.constantFrom(0, 1, 1000, 70_000, 1 << 20, 4 << 20),
  fin: fc.constantFrom<Fin>('first', 'after-peer', 'write-then-wait'),
  speed: fc.constantFrom<ReadSpeed>('fast', 'slow', 'slower'),
  stallMs: fc.constantFrom(0, 0, 20, 200),
});
// Someone has to finish first, or both wait for the other's FIN by design.
const scenario = fc
  .record({ client: side, backend: side })
  .map((s) =>
    s.client.fin === 'first' || s.backend.fin === 'first'
      ? s
      : { ...s, backend: { ...s.backend, fin: 'first' as const } },
  );

/** Plays one side on a connected socket; resolves with what it received once the socket closes. */
function play(sock: net.Socket, spec: Side, body: Buffer, received: Buffer[]): Promise<Received> {
  const seen = readUntilClose(sock, spec.speed, received);
  sock.on('end', () => {
    if (spec.fin === 'after-peer') sock.end(body);
    else if (spec.fin === 'write-then-wait') sock.end();
  });
  if (spec.fin === 'first') sock.end(body);
  else if (spec.fin === 'write-then-wait') sock.write(body);
  if (spec.stallMs > 0) {
    sock.pause();
    setTimeout(() => sock.resume(), spec.stallMs);
  }
  return seen;
}

t.test('random relays: every byte both ways, in order, then both FINs', async (t) => {
  let accepted: ((s: net.Socket) => void) | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (s) => accepted?.(s));
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const mux = await startMux(t, muxConfig(route('any', port)));
  const baseline = await fdCount(mux.pid);
  let played = 0;

  await fc.assert(
    fc.asyncProperty(scenario, async ({ client, backend }) => {
      const head = Buffer.from([0xff]); // no protocol's first byte: the catch-all route at once
      const up = randomBytes(client.size);
      const down = randomBytes(backend.size);
      const atBackend: Buffer[] = [];
      const atClient: Buffer[] = [];
      const socks: net.Socket[] = [];
      const backendSeen = new Promise<Received>((resolve) => {
        accepted = (s) => {
          socks.push(s);
          resolve(play(s, backend, down, atBackend));
        };
      });
      const c = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
      socks.push(c);
      const clientSeen = new Promise<Received>((resolve) =>
        c.once('connect', () => {
          c.write(head);
          resolve(play(c, client, up, atClient));
        }),
      );
      let guard: NodeJS.Timeout | undefined;
      const stalled = new Promise<'stalled'>((resolve) => {
        guard = setTimeout(() => resolve('stalled'), GUARD_MS);
      });
      const result = await Promise.race([Promise.all([clientSeen, backendSeen]), stalled]);
      clearTimeout(guard);
      if (result === 'stalled') {
        for (const s of socks) s.destroy();
        const got = (b: Buffer[]): number => b.reduce((n, x) => n + x.length, 0);
        throw new Error(
          `stalled: the backend got ${got(atBackend)} of ${1 + up.length} bytes, the client ${got(atClient)} of ${down.length}`,
        );
      }
      const [toClient, toBackend] = result;
      played++;
      return (
        sha256(toBackend.bytes) === sha256(Buffer.concat([head, up])) &&
        sha256(toClient.bytes) === sha256(down) &&
        toBackend.ended &&
        toClient.ended
      );
    }),
    // A failure is a hang or lost bytes: report it as found rather than shrink through more of them.
    { numRuns: SCENARIOS, endOnFailure: true },
  );
  t.equal(played, SCENARIOS, `${SCENARIOS} random relays, every byte both ways and both FINs`);
  t.equal(mux.proc.exitCode, null, 'the mux is alive');
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
});
