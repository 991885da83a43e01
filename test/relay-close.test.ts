// Every way a relay ends closes both sockets: the bare mechanism (end() then a reset on one socket), and a
// real nginx that fails a handshake and closes with unread data (FIN and RST together) under load.
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { closeNow } from '../lib/relay/relay.js';
import { captureFirstBytes } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { fdCount, fdsBackTo, type LogLine, type MuxProcess, startMux } from './helpers/mux.js';
import { freePorts, missing, program, startDaemon, tempDir } from './helpers/programs.js';
import { certFiles, listen } from './helpers/servers.js';

/** A connected pair on loopback: our client socket and the server's side of it. */
async function pair(t: Test): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listen(server);
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((resolve) => c.once('connect', () => resolve()));
  const s = await accepted;
  t.teardown(() => {
    s.destroy();
  });
  s.on('error', () => {});
  s.resume();
  return [c, s];
}

/**
 * Resolves with the errors a socket emitted before 'close', or with "no close" if none came within 5 s:
 * a bound so that the test fails rather than hangs on a handle that is never closed.
 */
function closing(s: net.Socket): Promise<string[]> {
  const errors: string[] = [];
  s.on('error', (e: NodeJS.ErrnoException) => errors.push(`${e.code} ${e.syscall ?? ''}`.trim()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve([...errors, 'no close']), 5000);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(errors);
    });
  });
}

/** How the peer saw the close: 'reset' or 'fin'. */
function peerSaw(s: net.Socket): Promise<'reset' | 'fin'> {
  return new Promise((resolve) => {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') resolve('reset');
    });
    s.on('end', () => resolve('fin'));
    s.on('close', () => resolve('fin'));
  });
}

t.test('closeNow closes the handle whatever the socket is doing', async (t) => {
  const states: [string, (c: net.Socket) => void][] = [
    ['open', () => {}],
    ['end() just called (shutdown pending)', (c) => c.end()],
    ['end() with writes queued', (c) => c.end(randomBytes(4 << 20))],
    ['writes queued', (c) => c.write(randomBytes(4 << 20))],
    ['already destroyed', (c) => c.destroy()],
  ];
  for (const [name, before] of states) {
    for (const reset of [true, false]) {
      const [c] = await pair(t);
      const closed = closing(c);
      before(c);
      closeNow(c, reset);
      t.same(await closed, [], `${name}, reset ${reset}: 'close' comes, no error`);
    }
  }
  // Where a reset is possible it is what the peer sees: the stream was cut, not finished.
  const [c, s] = await pair(t);
  const saw = peerSaw(s);
  const closed = closing(c);
  closeNow(c, true);
  t.same(await closed, [], 'a reset on an open socket closes it');
  t.equal(await saw, 'reset', 'and the peer sees a reset');
});

const skip = missing('nginx');

/** nginx serving TLS for `name` on a free port, answering every request with "<name> ok". */
async function startNginxTls(t: Test, name: string): Promise<number> {
  const dir = tempDir(t, 'nginx');
  chmodSync(dir, 0o755);
  const [port] = await freePorts(1);
  const c = certFiles(name);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'error_log stderr notice;',
      `pid ${join(dir, 'nginx.pid')};`,
      'worker_processes 1;',
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${dir};`),
      `  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${c.certFile};`,
      `    ssl_certificate_key ${c.keyFile}; location / { return 200 "${name} ok\\n"; } }`,
      '}',
      '',
    ].join('\n'),
  );
  await startDaemon(t, program('nginx'), ['-p', dir, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'], {
    ready: /start worker process/,
  });
  return port!;
}

/** A ClientHello for `name` then garbage: nginx fails the handshake and closes with unread data. */
function helloThenGarbage(port: number, hello: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => resolve());
    s.on('connect', () => {
      s.write(hello);
      // Garbage in several writes, so some reaches nginx after it has answered the hello.
      let n = 0;
      const more = (): void => {
        if (s.destroyed || n++ >= 16) return;
        s.write(randomBytes(4096), more);
      };
      more();
    });
  });
}

/** A whole HTTPS request through the mux; resolves with the body, or the error code. */
function httpsGet(port: number, name: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: name, rejectUnauthorized: false });
    let body = '';
    s.setEncoding('utf8');
    s.on('secureConnect', () => s.write(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d: string) => {
      body += d;
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.on('close', () => resolve(body.slice(body.indexOf('\r\n\r\n') + 4)));
  });
}

async function closedLines(mux: MuxProcess, n: number, ms: number): Promise<LogLine[]> {
  const lines = (): LogLine[] => mux.logs.filter((l) => l.end !== undefined || l.reject !== undefined);
  // A bound, not a threshold: a leaked connection never logs, and the test must fail rather than hang.
  await Promise.race([
    mux.waitForLog(() => lines().length >= n),
    new Promise((resolve) => setTimeout(resolve, ms)),
  ]);
  return lines();
}

t.test(
  'nginx failing handshakes (FIN and RST together) leaks no slot: active 0, fds back, a new client served',
  { skip },
  async (t) => {
    const name = 'leak.test';
    const nginx = await startNginxTls(t, name);
    const cap = 16;
    const mux = await startMux(
      t,
      muxConfig(
        table('limits', { max_connections: cap, max_connections_per_source: cap }),
        table('admin', { listen: '127.0.0.1:0' }),
        route('site', nginx, { sni: [name] }),
      ),
    );
    const admin = adminPort(mux);
    const baseline = await fdCount(mux.pid);
    const hello = await captureFirstBytes((port) =>
      tls.connect({ port, host: '127.0.0.1', servername: name, rejectUnauthorized: false }),
    );
    const N = 400;
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < N) {
        started++;
        await helloThenGarbage(mux.port, hello);
      }
    };
    // Half the cap at once, so only a leaked slot can make an attacker meet the limit.
    await Promise.all(Array.from({ length: cap / 2 }, worker));
    const lines = await closedLines(mux, N, 20_000);
    t.equal(lines.length, N, `every one of ${N} connections ended with its line`);
    t.equal(lines.filter((l) => l.reject === 'limit').length, 0, 'none met the cap');
    const samples = await scrape(admin);
    t.equal(value(samples, 'snimux_connections_active', { route: 'site' }), 0, 'snimux_connections_active 0');
    t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'mux fds back to baseline');
    for (let i = 0; i < cap + 4; i++) {
      t.equal(await httpsGet(mux.port, name), `${name} ok\n`, `HTTPS request ${i + 1} served`);
    }
    t.equal(mux.proc.exitCode, null, 'alive');
  },
);
