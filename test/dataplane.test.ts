// The data plane boundary: which plane runs is said and chosen as documented, the js plane takes over
// when the addon is missing, and relay edge cases (half-close both ways, reset, a backend that does not
// read) behave the same on whichever plane SNI_MUX_DATA_PLANE selects (npm test runs both).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { muxConfig, route } from './helpers/config.js';
import { BIN, connectionLine, fdCount, fdsBackTo, startMux } from './helpers/mux.js';
import { listen, sha256 } from './helpers/servers.js';

const forced = process.env.SNI_MUX_DATA_PLANE;

function version(env: NodeJS.ProcessEnv): string {
  return execFileSync(process.execPath, [BIN, '--version'], { env, encoding: 'utf8' });
}

t.test(
  '--version says which data plane runs: native by default; without the addon js, and why',
  async (t) => {
    t.match(version(process.env), /^sni-mux \d+\.\d+\.\d+ \(data plane: (native|js)/);
    t.match(version({ ...process.env, SNI_MUX_DATA_PLANE: 'js' }), /data plane: js; SNI_MUX_DATA_PLANE=js/);
    const missing: NodeJS.ProcessEnv = {
      ...process.env,
      SNI_MUX_ADDON: '/nonexistent/sni_mux.node',
      SNI_MUX_DATA_PLANE: 'native',
    };
    t.match(version(missing), /data plane: js; \/nonexistent\/sni_mux\.node not found/);
    const unset: NodeJS.ProcessEnv = { ...process.env };
    delete unset.SNI_MUX_DATA_PLANE;
    const built = existsSync(
      process.env.SNI_MUX_ADDON ?? new URL('../build/Release/sni_mux.node', import.meta.url),
    );
    t.match(
      version(unset),
      built ? /data plane: native\)$/m : /data plane: js; /,
      'native by default, where built',
    );
    delete missing.SNI_MUX_DATA_PLANE;
    t.match(version(missing), /data plane: js; \/nonexistent\/sni_mux\.node not found/, 'js without it');
  },
);

t.test('the start log line names the data plane', async (t) => {
  const mux = await startMux(t, muxConfig(route('any', 9)));
  const started = await mux.waitForLog((l) => l.msg === 'sni-mux started');
  if (forced !== undefined) t.equal(started.data_plane, forced);
  else t.match(started.data_plane, /^(native|js)$/);
});

/** A backend whose sockets the test drives by hand. */
async function manualBackend(t: Test): Promise<{ port: number; next: () => Promise<net.Socket> }> {
  const waiting: ((s: net.Socket) => void)[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => waiting.shift()?.(s));
  const port = await listen(server);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { port, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

/** The kernel's largest autotuned TCP buffer, receive or send (Linux). */
function tcpMax(which: 'rmem' | 'wmem'): number {
  try {
    return Number(readFileSync(`/proc/sys/net/ipv4/tcp_${which}`, 'utf8').trim().split(/\s+/)[2]) || 8 << 20;
  } catch {
    return 8 << 20;
  }
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
  });
}

t.test('half-close both ways: each FIN is passed on after the bytes before it', async (t) => {
  const backend = await manualBackend(t);
  const mux = await startMux(t, muxConfig(route('raw', backend.port)));
  const baseline = await fdCount(mux.pid);
  const client = await connect(mux.port);
  const port = client.localPort!;
  const accepted = backend.next();
  client.write(Buffer.from('\xffclient says hello', 'latin1'));
  const b = await accepted;
  const upDone = readAll(b);
  client.end(' and goodbye');
  t.equal(
    (await upDone).toString('latin1'),
    '\xffclient says hello and goodbye',
    'client FIN after its bytes',
  );
  // The other way still flows after the client's FIN.
  const downDone = readAll(client);
  b.end('backend answers after the client half-closed');
  t.equal((await downDone).toString(), 'backend answers after the client half-closed', 'backend FIN too');
  client.destroy();
  const line = await connectionLine(mux, port);
  t.equal(line.end, 'client_closed', 'the client sent the first FIN');
  t.equal(line.bytes_client_to_backend, 30);
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fd count back to baseline');
});

t.test('a backend reset reaches the client as a reset', async (t) => {
  const backend = await manualBackend(t);
  const mux = await startMux(t, muxConfig(route('raw', backend.port)));
  const client = await connect(mux.port);
  const port = client.localPort!;
  const accepted = backend.next();
  client.write(Buffer.from('\xffhello', 'latin1'));
  const b = await accepted;
  const err = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
  b.once('data', () => b.resetAndDestroy());
  t.equal((await err).code, 'ECONNRESET');
  const line = await connectionLine(mux, port);
  t.equal(line.end, 'backend_error');
  t.equal(line.code, 'ECONNRESET');
});

t.test('a backend that does not read holds the client back; once it reads, every byte arrives', async (t) => {
  const backend = await manualBackend(t);
  const mux = await startMux(t, muxConfig(route('raw', backend.port)));
  const client = await connect(mux.port);
  const accepted = backend.next();
  // More than every socket buffer on the way can hold: two receive and two send buffers, each autotuned
  // up to the kernel's tcp_rmem / tcp_wmem maximum (32 MiB receive on some machines).
  const body = Buffer.concat([
    Buffer.from([0xff]),
    Buffer.alloc(2 * (tcpMax('rmem') + tcpMax('wmem')) + (8 << 20), 7),
  ]);
  client.end(body);
  const b = await accepted;
  b.pause();
  // The client cannot finish writing while nothing is read: the relay buffers a bounded amount.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (client.writableLength > 0) resolve();
      else setImmediate(check);
    };
    check();
  });
  t.ok(client.writableLength > 0, 'the client is held back');
  const got = readAll(b);
  b.resume();
  t.equal(sha256(await got), sha256(body), 'every byte, in order');
  b.end();
  client.destroy();
});
