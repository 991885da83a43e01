// The relay's lean paths: backpressure from the first write on, and idle timeouts kept by one shared sweep.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { exchange, type Received, readUntilClose } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { listen, sha256, startEcho, startRecorder } from './helpers/servers.js';

t.test('a detected head larger than a socket buffer, then a megabyte, all arrive in order', async (t) => {
  const rec = await startRecorder(t, 'web');
  const mux = await startMux(t, muxConfig(route('web', rec.port, { protocol: 'http' })));
  // 40 KB of headers in the first write: the replayed head alone fills the backend socket's buffer.
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(40_000)}\r\n\r\n`);
  const body = randomBytes(1 << 20);
  const all = Buffer.concat([head, body]);
  const r = await exchange(mux.port, all);
  t.equal(r.reply.toString(), `web ${all.length} ${sha256(all)}`, 'every byte, in order, then the FIN');
  t.match(await connectionLine(mux, r.localPort), {
    end: 'client_closed',
    bytes_client_to_backend: all.length,
  });
});

t.test('a slow reader that sent its FIN first still gets the whole reply, then the FIN', async (t) => {
  // The backend's FIN lands while the relay holds bytes the client has not taken yet: the backend
  // socket then reports a hang-up (both ways shut) while the relay is not reading it. It must be read
  // again once the client drains, or the rest of the reply and the FIN are never passed on.
  const reply = randomBytes(8 << 20);
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.on('end', () => s.end(reply));
    s.resume();
  });
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const mux = await startMux(t, muxConfig(route('slow', port)));
  for (let round = 0; round < 5; round++) {
    const c = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
    c.on('connect', () => c.end('\xffsend me the file\n', 'latin1'));
    const got = await readUntilClose(c, 'slow');
    t.equal(got.bytes.length, reply.length, `round ${round}: every byte of the reply`);
    t.equal(sha256(got.bytes), sha256(reply), `round ${round}: in order`);
    t.ok(got.ended, `round ${round}: closed with the backend's FIN`);
  }
});

t.test('a slow backend that sent its FIN first still gets the whole upload, then the FIN', async (t) => {
  // The other way round: the client's FIN lands while the relay holds bytes the backend has not taken
  // yet, after the backend's own FIN was passed on, so the client socket has hung up both ways.
  const upload = randomBytes(8 << 20);
  const received: Promise<Received>[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.end(); // nothing to say: FIN at once
    received.push(readUntilClose(s, 'slow'));
  });
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const mux = await startMux(t, muxConfig(route('slow', port)));
  const head = Buffer.from('\xffhere comes the file\n', 'latin1');
  for (let round = 0; round < 5; round++) {
    await new Promise<void>((resolve) => {
      const c = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
      c.on('error', () => {});
      c.on('connect', () => c.write(head));
      // The backend's FIN has come through: now the upload, then ours.
      c.on('end', () => c.end(upload));
      c.on('close', () => resolve());
      c.resume();
    });
    const got = await received[round]!;
    t.equal(got.bytes.length, head.length + upload.length, `round ${round}: every byte of the upload`);
    t.equal(sha256(got.bytes), sha256(Buffer.concat([head, upload])), `round ${round}: in order`);
    t.ok(got.ended, `round ${round}: closed with the client's FIN`);
  }
});

t.test('traffic either way keeps a relay open past its idle timeout; silence closes it', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(table('timeouts', { idle: '1s' }), route('echo', echo.port, { protocol: 'ssh' })),
  );
  const s = net.connect({ port: mux.port, host: '127.0.0.1' });
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  const localPort = s.localPort!;
  let closedAt = 0;
  const closed = new Promise<void>((resolve) =>
    s.on('close', () => {
      closedAt = Date.now();
      resolve();
    }),
  );
  s.on('error', () => {});
  s.write('SSH-2.0-keepalive\r\n');
  // Fifteen echoed pings 100 ms apart: 1.5 s of traffic, longer than the idle timeout.
  for (let i = 0; i < 15; i++) {
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    t.equal(s.destroyed, false, `open after ping ${i + 1}`);
    s.write('ping');
  }
  const lastPing = Date.now();
  await closed;
  t.ok(closedAt - lastPing >= 900, 'closed only after the idle timeout passed in silence');
  t.match(await connectionLine(mux, localPort), { route: 'echo', end: 'idle_timeout' });
});

t.test("a route's own idle overrides [timeouts] idle for its connections only", async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(
      table('timeouts', { idle: '1h' }),
      route('ssh', echo.port, { protocol: 'ssh', idle: '300ms' }),
      route('web', echo.port, { protocol: 'http' }),
    ),
  );
  const open = async (first: string): Promise<net.Socket> => {
    const s = net.connect({ port: mux.port, host: '127.0.0.1' });
    s.on('error', () => {});
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write(first);
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    return s;
  };
  const ssh = await open('SSH-2.0-quiet\r\n');
  const web = await open('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const sshPort = ssh.localPort!;
  await new Promise<void>((resolve) => ssh.once('close', () => resolve()));
  t.match(await connectionLine(mux, sshPort), { route: 'ssh', end: 'idle_timeout' });
  t.equal(web.destroyed, false, 'the web connection, silent as long, is still open');
  web.write('still here');
  const echoed = await new Promise<string>((resolve) =>
    web.once('data', (d: Buffer) => resolve(d.toString())),
  );
  t.equal(echoed, 'still here', 'and still relays');
  const webPort = web.localPort!;
  web.end();
  t.match(await connectionLine(mux, webPort), { route: 'web', end: 'client_closed' });
});
