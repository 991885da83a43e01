// Real backends for tests, on 127.0.0.1 port 0: recorders, echo servers and TLS servers with their own certs.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import type { Test } from 'tap';
import { freePort } from './programs.js';

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function closeOnTeardown(t: Test, server: net.Server): void {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
}

export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

export interface Recorder {
  name: string;
  port: number;
  /** Every connection's received bytes, resolved when the client half-closes or closes. */
  received: Buffer[];
  /** Resolves with the next connection's bytes once it has ended. */
  next(): Promise<Buffer>;
}

/**
 * A backend that keeps everything it receives and, after the client's FIN, answers
 * "<name> <byte count> <sha256>" and closes: proof of which backend got what.
 */
export async function startRecorder(t: Test, name: string, host = '127.0.0.1'): Promise<Recorder> {
  const received: Buffer[] = [];
  const pending: ((b: Buffer) => void)[] = [];
  const queued: Buffer[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('end', () => {
      const all = Buffer.concat(chunks);
      received.push(all);
      s.end(`${name} ${all.length} ${sha256(all)}`);
      const waiter = pending.shift();
      if (waiter) waiter(all);
      else queued.push(all);
    });
  });
  closeOnTeardown(t, server);
  const port = await listen(server, host);
  return {
    name,
    port,
    received,
    next: () => {
      const q = queued.shift();
      return q ? Promise.resolve(q) : new Promise((resolve) => pending.push(resolve));
    },
  };
}

/** A backend that says its name first (like an SSH server's banner), then echoes. */
export async function startGreeter(t: Test, name: string): Promise<{ port: number }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  closeOnTeardown(t, server);
  return { port: await listen(server) };
}

/** An echo backend: everything back, FIN answered with FIN. */
export async function startEcho(t: Test): Promise<{ port: number }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  closeOnTeardown(t, server);
  return { port: await listen(server) };
}

/**
 * A backend that answers the first chunk with "bye", sends FIN, and closes with the client's later bytes
 * unread, so a reset follows the FIN at once (as from nginx failing a TLS handshake).
 */
export async function startAbrupt(t: Test): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.once('data', () => {
      s.pause();
      s.end('bye\n', () => s.destroy());
    });
  });
  closeOnTeardown(t, server);
  return listen(server);
}

/**
 * A local address whose connects hang: a listener in a stopped child process, its accept queue
 * (backlog 1) filled by connections nobody accepts. New SYNs are dropped, as a firewall's blackhole does.
 */
export async function startBlackhole(t: Test): Promise<number> {
  const script =
    "const s=require('net').createServer();" +
    "s.listen({host:'127.0.0.1',port:0,backlog:1},()=>console.log(s.address().port));";
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const fillers: net.Socket[] = [];
  t.teardown(() => {
    for (const s of fillers) s.destroy();
    child.kill('SIGKILL'); // a stopped process still dies of SIGKILL
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  );
  const port = Number(line);
  process.kill(child.pid!, 'SIGSTOP');
  // Linux queues backlog + 1 handshaken connections; more fillers than that leave nothing for the mux.
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
  }
  await new Promise<void>((resolve) => fillers[1]!.once('connect', () => resolve()));
  return port;
}

/**
 * A port with nothing listening on it (bound then closed), outside the ephemeral range: a server of
 * another test binding port 0 cannot be given it and answer for the dead backend.
 */
export async function closedPort(): Promise<number> {
  return freePort();
}

export interface Cert {
  key: Buffer;
  cert: Buffer;
}

const certDir = mkdtempSync(join(tmpdir(), 'snimux-certs-'));
process.once('exit', () => rmSync(certDir, { recursive: true, force: true }));
const certs = new Map<string, Cert>();

/** A self-signed certificate for one name, made with the openssl command line. */
export function makeCert(name: string): Cert {
  const cached = certs.get(name);
  if (cached) return cached;
  const key = join(certDir, `${name}.key`);
  const crt = join(certDir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
    ],
    { stdio: 'ignore' },
  );
  const c = { key: readFileSync(key), cert: readFileSync(crt), keyFile: key, certFile: crt };
  certs.set(name, c);
  return c;
}

export function certFiles(name: string): { keyFile: string; certFile: string } {
  makeCert(name);
  return { keyFile: join(certDir, `${name}.key`), certFile: join(certDir, `${name}.crt`) };
}

/**
 * A TLS backend with its own certificate for `name`: after the handshake it writes
 * "<name> <negotiated alpn>\n" and echoes, so a client can tell which backend it reached.
 */
export async function startTlsBackend(
  t: Test,
  name: string,
  alpn: string[] = ['h2', 'http/1.1'],
): Promise<{ port: number }> {
  const server = tls.createServer({ ...makeCert(name), ALPNProtocols: alpn }, (s) => {
    s.on('error', () => {});
    s.write(`${name} ${s.alpnProtocol || '-'}\n`);
    s.pipe(s);
  });
  closeOnTeardown(t, server);
  return { port: await listen(server) };
}
