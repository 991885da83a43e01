// Relays bytes both ways between a client and a backend, with backpressure, half-close and an idle timeout.
import type net from 'node:net';
import type { EndReason } from '../reasons.js';

export interface RelayOwner {
  /** Called once, after both sockets have closed. */
  onRelayEnd(relay: Relay): void;
}

/**
 * Each socket points back to its relay, so one set of module-level listeners serves every connection:
 * closures per connection would cost memory for as long as it stays open (docs/performance.md).
 */
const RELAY = Symbol('sni-mux.relay');
type Side = net.Socket & { [RELAY]?: Relay };

const BACKEND_DRAIN = 1;
const CLIENT_DRAIN = 2;

export class Relay {
  /** client → backend, including the bytes peeked during detection. */
  bytesUp = 0;
  /** backend → client. */
  bytesDown = 0;
  reason: EndReason | undefined;
  /** errno code when reason is client_error or backend_error. */
  code: string | undefined;
  /** 0: no idle timeout. */
  idleMs = 0;

  private firstFin: 'client' | 'backend' | undefined;
  private open = 2;
  /** Which 'drain' listeners are on (added at the first backpressure only). */
  private watching = 0;
  /** Set by every chunk either way, cleared by the idle sweep: a store per chunk, not a timer refresh. */
  private active = true;
  private activeAt = 0;

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
    const client = this.client as Side;
    const backend = this.backend as Side;
    client[RELAY] = this;
    backend[RELAY] = this;
    client.on('data', onClientData);
    backend.on('data', onBackendData);
    client.on('end', onClientEnd);
    backend.on('end', onBackendEnd);
    client.on('error', onClientError);
    backend.on('error', onBackendError);
    client.on('close', onClose);
    backend.on('close', onClose);
    if (idleMs > 0) {
      this.idleMs = idleMs;
      idleSweep.add(this);
    }

    let full = false;
    if (head.length > 0) {
      this.bytesUp += head.length;
      full = !backend.write(head);
      if (full) this.backendFull();
    }
    if (clientEnded) this.clientEnded();
    else if (!full) client.resume(); // else the backend's 'drain' resumes it
    backend.resume();
  }

  /**
   * How long the relay has been silent, for status pages: 0 if a chunk passed since the last idle sweep,
   * else since that sweep saw one (so up to one sweep period short). Undefined without an idle timeout,
   * as nothing is tracked then: the data path pays nothing for this.
   */
  idleFor(now: number): number | undefined {
    if (this.idleMs === 0) return undefined;
    return this.active ? 0 : Math.round(now - this.activeAt);
  }

  /** Closes both sides now (drain deadline passed). */
  abort(reason: EndReason): void {
    if (this.reason === undefined) this.reason = reason;
    this.client.destroy();
    this.backend.destroy();
  }

  // The methods below are called by the socket listeners at the end of this file.

  fromClient(chunk: Buffer): void {
    this.bytesUp += chunk.length;
    this.active = true;
    if (!this.backend.write(chunk)) this.backendFull();
  }

  fromBackend(chunk: Buffer): void {
    this.bytesDown += chunk.length;
    this.active = true;
    if (!this.client.write(chunk)) this.clientFull();
  }

  clientEnded(): void {
    if (this.firstFin === undefined) this.firstFin = 'client';
    this.backend.end();
  }

  backendEnded(): void {
    if (this.firstFin === undefined) this.firstFin = 'backend';
    this.client.end();
  }

  fail(reason: EndReason, err: NodeJS.ErrnoException, other: net.Socket): void {
    if (this.reason === undefined) {
      this.reason = reason;
      this.code = err.code ?? 'EUNKNOWN';
    }
    // Pass a reset on as a reset, so the other peer learns the stream was cut, not finished.
    closeNow(other, err.code === 'ECONNRESET');
  }

  sideClosed(): void {
    if (--this.open > 0) return;
    if (this.reason === undefined)
      this.reason = this.firstFin === 'backend' ? 'backend_closed' : 'client_closed';
    if (this.idleMs > 0) idleSweep.delete(this);
    this.owner.onRelayEnd(this);
  }

  /** Called by the idle sweep: closes the relay once it has been silent for idleMs. */
  checkIdle(now: number): void {
    if (this.active) {
      this.active = false;
      this.activeAt = now;
      return;
    }
    if (now - this.activeAt < this.idleMs) return;
    if (this.reason === undefined) this.reason = 'idle_timeout';
    this.client.destroy();
    this.backend.destroy();
  }

  // Backpressure: stop reading the side that feeds a full socket until that socket drains. The 'drain'
  // listener is added at the first backpressure, so a connection that never fills a socket never has one.
  private backendFull(): void {
    this.client.pause();
    if ((this.watching & BACKEND_DRAIN) === 0) {
      this.watching |= BACKEND_DRAIN;
      this.backend.on('drain', onBackendDrain);
    }
  }

  private clientFull(): void {
    this.backend.pause();
    if ((this.watching & CLIENT_DRAIN) === 0) {
      this.watching |= CLIENT_DRAIN;
      this.client.on('drain', onClientDrain);
    }
  }
}

/**
 * Closes a socket now, with a reset when asked and still possible. Node's reset fails once end() has
 * been called (libuv refuses SO_LINGER 0 while a shutdown is pending): it emits EINVAL and never closes
 * the handle, so the fd, the connection's slots and its 'close' are lost for good. Then a plain close
 * is what is left; the peer has its FIN already, or will get a reset from the unread data.
 */
export function closeNow(s: net.Socket, reset: boolean): void {
  if (reset && !s.destroyed && !s.writableEnded && !s.connecting) s.resetAndDestroy();
  else s.destroy();
}

// Socket listeners, shared by every relay: `this` is the socket that emitted the event.

function onClientData(this: Side, chunk: Buffer): void {
  this[RELAY]!.fromClient(chunk);
}

function onBackendData(this: Side, chunk: Buffer): void {
  this[RELAY]!.fromBackend(chunk);
}

function onBackendDrain(this: Side): void {
  this[RELAY]!.client.resume();
}

function onClientDrain(this: Side): void {
  this[RELAY]!.backend.resume();
}

function onClientEnd(this: Side): void {
  this[RELAY]!.clientEnded();
}

function onBackendEnd(this: Side): void {
  this[RELAY]!.backendEnded();
}

function onClientError(this: Side, err: NodeJS.ErrnoException): void {
  const r = this[RELAY]!;
  r.fail('client_error', err, r.backend);
}

function onBackendError(this: Side, err: NodeJS.ErrnoException): void {
  const r = this[RELAY]!;
  r.fail('backend_error', err, r.client);
}

function onClose(this: Side): void {
  this[RELAY]!.sideClosed();
}

/**
 * Idle timeouts for every relay, checked by one timer rather than a timer per socket: a per-socket timer
 * costs a Timeout and a bound function per connection and a refresh on every read and write. A relay is
 * closed between idleMs and idleMs + one period after its last chunk; the period is a tenth of the
 * shortest idle timeout, from 10 ms to 1 s, so the default 15 minutes is checked every second.
 */
class IdleSweep {
  private readonly relays = new Set<Relay>();
  private timer: NodeJS.Timeout | undefined;
  private period = Number.POSITIVE_INFINITY;

  add(r: Relay): void {
    this.relays.add(r);
    const period = Math.min(1000, Math.max(10, Math.floor(r.idleMs / 10)));
    if (period < this.period) {
      this.period = period;
      clearInterval(this.timer);
      this.timer = setInterval(this.sweep, period).unref();
    }
  }

  delete(r: Relay): void {
    this.relays.delete(r);
    if (this.relays.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.period = Number.POSITIVE_INFINITY;
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    for (const r of this.relays) r.checkIdle(now);
  };
}

const idleSweep = new IdleSweep();
