// Test clients: plain TCP exchanges (optionally one byte per write) and node:tls handshakes through the mux.
import net from 'node:net';
import tls from 'node:tls';

export interface Exchange {
  reply: Buffer;
  localPort: number;
  /** True if the connection ended with an error (reset) rather than a FIN. */
  errored: string | undefined;
}

/** Connects, writes `bytes` (in writes of `chunk` bytes, each waited for), half-closes, reads until close. */
export function exchange(
  port: number,
  bytes: Uint8Array,
  opts: { chunk?: number; host?: string; end?: boolean } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: opts.host ?? '127.0.0.1', allowHalfOpen: true, noDelay: true });
    const chunks: Buffer[] = [];
    let localPort = 0;
    let errored: string | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    // The peer is done: finish our side too, or a half-open socket never closes.
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => {
      errored = e.code ?? e.message;
    });
    s.on('close', () => resolve({ reply: Buffer.concat(chunks), localPort, errored }));
    s.on('connect', async () => {
      localPort = s.localPort!;
      const step = opts.chunk ?? bytes.length;
      for (let i = 0; i < bytes.length && !s.destroyed; i += step) {
        await new Promise<void>((done) => s.write(bytes.subarray(i, i + step), () => done()));
      }
      if (opts.end !== false && !s.destroyed) s.end();
    });
  });
}

/** Captures the exact first bytes a client sends, using a throwaway local listener. */
export async function captureFirstBytes(
  connect: (port: number) => net.Socket | tls.TLSSocket,
  minBytes = 1,
): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve) => {
      server.once('connection', (s) => {
        const chunks: Buffer[] = [];
        let total = 0;
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          total += c.length;
          if (total >= minBytes) {
            resolve(Buffer.concat(chunks));
            s.destroy();
          }
        });
      });
      const client = connect(port);
      client.on('error', () => {});
    });
  } finally {
    server.close();
  }
}

export interface TlsReply {
  line: string;
  subjectCN: string | undefined;
  alpn: string | false | null;
  localPort: number;
}

/** A TLS handshake through the mux with a servername; returns the backend's first line and certificate. */
export function tlsThrough(
  port: number,
  servername: string | undefined,
  alpn?: string[],
  host = '127.0.0.1',
): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      port,
      host,
      servername: servername ?? '',
      ALPNProtocols: alpn,
      rejectUnauthorized: false,
    });
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      const cert = s.getPeerCertificate();
      resolve({
        line: buf.slice(0, nl),
        subjectCN: typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined,
        alpn: s.alpnProtocol,
        localPort: s.localPort!,
      });
      s.end();
    });
  });
}

/** How a reader takes its bytes: as they come; one chunk per turn of the loop; one chunk per millisecond. */
export type ReadSpeed = 'fast' | 'slow' | 'slower';

export interface Received {
  bytes: Buffer;
  /** The peer's FIN arrived (not only a close or a reset). */
  ended: boolean;
}

/**
 * Reads `sock` at `speed` until it closes. A slow reader keeps the relay's buffer toward it full, so
 * the relay parks bytes and stops reading the other side. `chunks` fills as bytes come (for a report
 * of how far a stalled exchange got).
 */
export function readUntilClose(sock: net.Socket, speed: ReadSpeed, chunks: Buffer[] = []): Promise<Received> {
  return new Promise((resolve) => {
    let ended = false;
    sock.on('error', () => {});
    sock.on('data', (b: Buffer) => {
      chunks.push(b);
      if (speed === 'fast') return;
      sock.pause();
      if (speed === 'slow') setImmediate(() => sock.resume());
      else setTimeout(() => sock.resume(), 1);
    });
    sock.on('end', () => {
      ended = true;
    });
    sock.on('close', () => resolve({ bytes: Buffer.concat(chunks), ended }));
  });
}
