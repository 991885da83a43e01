// Relays bytes both ways between a client and a backend, with backpressure, half-close and an idle timeout.
import type net from 'node:net';
import type { EndReason } from '../reasons.js';

export interface RelayOwner {
  /** Called once, after both sockets have closed. */
  onRelayEnd(relay: Relay): void;
}

export class Relay {
  /** client → backend, including the bytes peeked during detection. */
  bytesUp = 0;
  /** backend → client. */
  bytesDown = 0;
  reason: EndReason | undefined;
  /** errno code when reason is client_error or backend_error. */
  code: string | undefined;

  private firstFin: 'client' | 'backend' | undefined;
  private open = 2;

  constructor(
    readonly client: net.Socket,
    readonly backend: net.Socket,
    private readonly owner: RelayOwner,
  ) {}

  /**
   * Sends the peeked bytes, then relays. clientEnded: the client sent FIN during detection,
   * so the backend gets FIN right after the peeked bytes.
   */
  start(head: Uint8Array, clientEnded: boolean, idleMs: number): void {
    const { client, backend } = this;
    client.on('data', this.onClientData);
    backend.on('data', this.onBackendData);
    client.on('end', this.onClientEnd);
    backend.on('end', this.onBackendEnd);
    client.on('error', this.onClientError);
    backend.on('error', this.onBackendError);
    client.on('close', this.onClose);
    backend.on('close', this.onClose);
    backend.on('drain', this.onBackendDrain);
    client.on('drain', this.onClientDrain);
    // Reads and writes both refresh a socket's timer, so the client's alone sees traffic either way.
    client.setTimeout(idleMs, this.onIdle);

    if (head.length > 0) {
      this.bytesUp += head.length;
      if (!backend.write(head)) client.pause();
    }
    if (clientEnded) this.onClientEnd();
    else client.resume();
    backend.resume();
  }

  /** Closes both sides now (drain deadline passed). */
  abort(reason: EndReason): void {
    if (this.reason === undefined) this.reason = reason;
    this.client.destroy();
    this.backend.destroy();
  }

  private readonly onClientData = (chunk: Buffer): void => {
    this.bytesUp += chunk.length;
    if (!this.backend.write(chunk)) this.client.pause();
  };

  private readonly onBackendData = (chunk: Buffer): void => {
    this.bytesDown += chunk.length;
    if (!this.client.write(chunk)) this.backend.pause();
  };

  private readonly onBackendDrain = (): void => {
    this.client.resume();
  };

  private readonly onClientDrain = (): void => {
    this.backend.resume();
  };

  private readonly onClientEnd = (): void => {
    if (this.firstFin === undefined) this.firstFin = 'client';
    this.backend.end();
  };

  private readonly onBackendEnd = (): void => {
    if (this.firstFin === undefined) this.firstFin = 'backend';
    this.client.end();
  };

  private readonly onClientError = (err: NodeJS.ErrnoException): void => {
    this.fail('client_error', err, this.backend);
  };

  private readonly onBackendError = (err: NodeJS.ErrnoException): void => {
    this.fail('backend_error', err, this.client);
  };

  private fail(reason: EndReason, err: NodeJS.ErrnoException, other: net.Socket): void {
    if (this.reason === undefined) {
      this.reason = reason;
      this.code = err.code ?? 'EUNKNOWN';
    }
    // Pass a reset on as a reset, so the other peer learns the stream was cut, not finished.
    if (err.code === 'ECONNRESET' && !other.destroyed) other.resetAndDestroy();
    else other.destroy();
  }

  private readonly onIdle = (): void => {
    if (this.reason === undefined) this.reason = 'idle_timeout';
    this.client.destroy();
    this.backend.destroy();
  };

  private readonly onClose = (): void => {
    if (--this.open > 0) return;
    if (this.reason === undefined)
      this.reason = this.firstFin === 'backend' ? 'backend_closed' : 'client_closed';
    this.client.setTimeout(0);
    this.owner.onRelayEnd(this);
  };
}
