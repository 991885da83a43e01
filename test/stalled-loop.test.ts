// A mux whose event loop stalls (a loaded box, a long GC) judges its detect timeout only after reading
// what arrived in the meantime: Node runs expired timers before it polls for I/O, so without care a
// client whose hello arrived in time was refused for silence. The soak saw it at load 14.
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import t from 'tap';
import { muxConfig, route, table } from './helpers/config.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { sha256, startRecorder } from './helpers/servers.js';

const DETECT_MS = 100;

t.test(
  'a hello that arrives while the mux is stopped past its detect deadline is still routed',
  async (t) => {
    const ssh = await startRecorder(t, 'ssh');
    const mux = await startMux(
      t,
      muxConfig(
        table('timeouts', { detect: `${DETECT_MS}ms` }),
        // trace: the 'socket: accepted' line says the detect timer is running.
        table('log', { level: 'trace' }),
        route('ssh', ssh.port, { protocol: 'ssh' }),
      ),
    );
    const client = net.connect({ port: mux.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    client.on('end', () => client.end());
    const closed = new Promise((resolve) => client.on('close', resolve));
    await new Promise((resolve) => client.on('connect', resolve));
    const localPort = client.localPort!;
    await mux.waitForLog((l) => l.msg === 'socket: accepted');

    // Stopped, the mux cannot read; its detect deadline passes in wall time, which is the condition
    // itself (there is no event to wait for), and the hello waits in its socket buffer.
    process.kill(mux.pid, 'SIGSTOP');
    t.teardown(() => {
      if (mux.proc.exitCode === null) process.kill(mux.pid, 'SIGCONT');
    });
    const hello = Buffer.from('SSH-2.0-OpenSSH_9.2p1 stalled\r\n');
    await new Promise<void>((resolve) => client.write(hello, () => resolve()));
    client.end();
    await delay(3 * DETECT_MS);
    process.kill(mux.pid, 'SIGCONT');

    await closed;
    t.equal(Buffer.concat(chunks).toString(), `ssh ${hello.length} ${sha256(hello)}`, 'the backend answered');
    t.match(await connectionLine(mux, localPort), { route: 'ssh', end: 'client_closed' });
    t.notOk(
      mux.logs.some((l) => l.reject !== undefined),
      'nothing refused',
    );
  },
);
