// One active health check of one backend: a TCP connect, or a ClientHello that must be answered by a ServerHello.
import net from 'node:net';
import type { Endpoint, HealthCheck } from '../config/types.js';
import { healthClientHello, serverHelloVerdict } from './hello.js';

/** Undefined: passed; otherwise why it failed (an errno code, "ETIMEDOUT", or what the server said). */
export type CheckResult = string | undefined;

/** Runs one check; always settles within timeoutMs, and leaves no socket behind. */
export function checkBackend(
  backend: Endpoint,
  kind: HealthCheck,
  sni: string | undefined,
  timeoutMs: number,
): Promise<CheckResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host: backend.host, port: backend.port, noDelay: true });
    let got = Buffer.alloc(0);
    const done = (result: CheckResult): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(result);
    };
    const timer = setTimeout(done, timeoutMs, 'ETIMEDOUT');
    s.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'EUNKNOWN'));
    s.on('close', () => done('closed before a ServerHello'));
    s.on('connect', () => {
      if (kind === 'connect') return done(undefined);
      s.write(healthClientHello(sni ?? ''));
    });
    s.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const v = serverHelloVerdict(got);
      if (v === 'server-hello') done(undefined);
      else if (v === 'not-tls')
        done(got[0] === 0x15 ? `TLS alert ${got[6] ?? '?'}` : 'not a TLS ServerHello');
    });
  });
}
