// UDP peers for tests: a backend that records datagrams and answers, and a client socket that awaits replies.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { buildHandshake } from './hello-builder.js';
import { buildInitial, cryptoFrame } from './quic-builder.js';

export interface UdpBackend {
  port: number;
  tag: string;
  /** Datagrams received, in order, with the sender's port. */
  received: { data: Buffer; port: number }[];
  /** Resolves once `n` datagrams have arrived in all. */
  until(n: number): Promise<void>;
}

/** A UDP server on 127.0.0.1 that answers each datagram with `tag` followed by the datagram. */
export async function udpBackend(t: Test, tag: string): Promise<UdpBackend> {
  const s = dgram.createSocket('udp4');
  const received: UdpBackend['received'] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  s.on('message', (data, rinfo) => {
    received.push({ data, port: rinfo.port });
    s.send(Buffer.concat([Buffer.from(tag), data]), rinfo.port, rinfo.address);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (received.length >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
    }
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  t.teardown(() => s.close());
  return {
    port: (s.address() as AddressInfo).port,
    tag,
    received,
    until: (n) =>
      received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })),
  };
}

export interface UdpClient {
  port: number;
  send(data: Uint8Array): void;
  /** The next reply not yet taken. */
  reply(): Promise<Buffer>;
  close(): void;
}

/** A client socket on 127.0.0.1 sending to the mux's UDP port. */
export async function udpClient(t: Test, muxPort: number): Promise<UdpClient> {
  const s = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  s.on('message', (b) => {
    const w = waiters.shift();
    if (w) w(b);
    else replies.push(b);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  let closed = false;
  const close = (): void => {
    if (!closed) s.close();
    closed = true;
  };
  t.teardown(close);
  return {
    port: (s.address() as AddressInfo).port,
    send: (data) => s.send(data, muxPort, '127.0.0.1'),
    reply: () => {
      const b = replies.shift();
      return b ? Promise.resolve(b) : new Promise((resolve) => waiters.push(resolve));
    },
    close,
  };
}

/** A WireGuard handshake initiation as wg(8) sends it: type 1, reserved zeros, 144 bytes of keys and MACs. */
export function wgInitiation(): Buffer {
  const d = randomBytes(148);
  d.set([1, 0, 0, 0], 0);
  return d;
}

/** Two Initials carrying one post-quantum-sized hello for `sni`, as Chromium sends it. */
export function splitHello(sni: string): [Buffer, Buffer] {
  const hs = buildHandshake({ sni, alpn: ['h3'], keyShareBytes: 1216, grease: true });
  const dcid = randomBytes(8);
  const a = buildInitial({ dcid, packetNumber: 0, frames: cryptoFrame(0, hs.subarray(0, 900)) });
  const b = buildInitial({ dcid, packetNumber: 1, frames: cryptoFrame(900, hs.subarray(900)) });
  return [Buffer.from(a), Buffer.from(b)];
}

/** A mux config with a TCP and a UDP listener on free loopback ports, [admin], then `extra` and `routes`. */
export function udpMuxConfig(routes: string, extra = ''): string {
  return `listen = ["127.0.0.1:0"]\nlisten_udp = ["127.0.0.1:0"]\n${extra}\n[admin]\nlisten = "127.0.0.1:0"\n${routes}`;
}
