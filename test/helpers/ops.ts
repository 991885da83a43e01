// Helpers for the operations tests: free ports, clients held open through the mux, rewriting a running mux's config.
import { spawn } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { BIN, type LogLine, type MuxProcess } from './mux.js';

export interface Held {
  socket: net.Socket;
  localPort: number;
  /** Resolves when the socket has closed, with the error code if it ended with one. */
  closed: Promise<string | undefined>;
  /** Sends text and resolves with what comes back first (an echo backend sends it back). */
  echo(text: string): Promise<string>;
}

export type HoldResult =
  | { kind: 'open'; held: Held }
  | { kind: 'closed'; localPort: number; error: string | undefined; received: number };

/**
 * Connects from `localAddress` (127.0.0.x are all loopback on Linux: distinct sources for limits),
 * sends unrecognisable bytes and waits for their echo: 'open' once relayed to an echo backend,
 * 'closed' if the mux closed or refused the connection first.
 */
export function holdOpen(port: number, localAddress = '127.0.0.1'): Promise<HoldResult> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: false });
    const hello = Buffer.from('\xffhello\n', 'latin1');
    let received = 0;
    let localPort = 0;
    let error: string | undefined;
    const closed = new Promise<string | undefined>((r) => s.once('close', () => r(error)));
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    const onData = (d: Buffer): void => {
      received += d.length;
      if (received < hello.length) return;
      s.removeListener('data', onData);
      s.removeListener('close', onClose);
      const echo = (text: string): Promise<string> =>
        new Promise((done) => {
          s.once('data', (b: Buffer) => done(b.toString('latin1')));
          s.write(text);
        });
      resolve({ kind: 'open', held: { socket: s, localPort, closed, echo } });
    };
    const onClose = (): void => resolve({ kind: 'closed', localPort, error, received });
    s.on('data', onData);
    s.once('close', onClose);
    s.on('connect', () => {
      localPort = s.localPort!;
      s.write(hello);
    });
  });
}

/**
 * Connects, sends `bytes` (a ClientHello, a banner) and resolves once an echo backend has sent them all
 * back: the connection is routed, relayed and held open until the caller closes it.
 */
export function holdBytes(
  port: number,
  bytes: Uint8Array,
): Promise<{ socket: net.Socket; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = 0;
    s.on('error', reject);
    s.on('connect', () => s.write(bytes));
    const onData = (d: Buffer): void => {
      got += d.length;
      if (got < bytes.length) return;
      s.removeListener('data', onData);
      resolve({ socket: s, localPort: s.localPort! });
    };
    s.on('data', onData);
  });
}

/** Replaces the config file the way editors and deploy tools do (write aside, rename over), then SIGHUPs. */
export function rewriteAndReload(mux: MuxProcess, toml: string): void {
  const tmp = `${mux.configFile}.new`;
  writeFileSync(tmp, toml);
  renameSync(tmp, mux.configFile);
  mux.proc.kill('SIGHUP');
}

/** Waits for the n-th (1-based) log line that satisfies pred. */
export function nthLog(mux: MuxProcess, n: number, pred: (l: LogLine) => boolean): Promise<LogLine> {
  return mux.waitForLog((l) => pred(l) && mux.logs.filter(pred).indexOf(l) === n - 1);
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the sni-mux CLI (`reload`, `check`…) to completion. */
export function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    p.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
