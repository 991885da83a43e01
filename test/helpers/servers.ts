// Real backends for tests, on 127.0.0.1 port 0: recorders, echo servers and TLS servers with their own certs.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Test } from 'tap';

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

/** A port with nothing listening on it (bound then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Cert {
  key: Buffer;
  cert: Buffer;
}

const certDir = mkdtempSync(join(tmpdir(), 'snimux-certs-'));
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
