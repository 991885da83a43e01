// The native data plane: sockets, accept, connect and the relay live in the addon (native/sni_mux.c);
// this module routes its callbacks to the stages and turns its numbers into the same facts the js plane gives.
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { constants } from 'node:os';
import type { Endpoint } from '../config/types.js';
import { PEEK_MAX } from '../config/validate.js';
import { BackendAttempts, type ConnectHandler } from '../connect/attempts.js';
import type { EndReason } from '../reasons.js';
import { reusePortWanted } from '../workers/reuseport.js';
import { type Addon, NativeEnd } from './addon.js';
import type {
  AcceptHandler,
  ClientSide,
  DataPlane,
  DetectOwner,
  PlaneListener,
  RelayOwner,
  RelayView,
} from './types.js';

/** Room for the head: an outbound PROXY v2 header (TLVs included) and limits.max_peek_bytes. */
const SHARED_BYTES = PEEK_MAX + 64 * 1024;

const END: Record<NativeEnd, EndReason> = {
  [NativeEnd.ClientClosed]: 'client_closed',
  [NativeEnd.BackendClosed]: 'backend_closed',
  [NativeEnd.ClientError]: 'client_error',
  [NativeEnd.BackendError]: 'backend_error',
  [NativeEnd.Idle]: 'idle_timeout',
};

const ERRNO_CODE = new Map<number, string>();
for (const [code, n] of Object.entries(constants.errno)) if (!ERRNO_CODE.has(n)) ERRNO_CODE.set(n, code);
function errnoCode(n: number): string {
  return ERRNO_CODE.get(n) ?? `E${n}`;
}

/** How long a listener out of fds waits before it tries accepting again. */
const ACCEPT_RETRY_MS = 100;

export class NativePlane implements DataPlane {
  readonly name = 'native';
  /** The shared hot buffer: the addon reads client bytes into it, the head is written into it. */
  readonly shared: Uint8Array;
  /** Live clients by the addon's slot number. */
  private readonly clients: (NativeClient | undefined)[] = [];
  private readonly listeners: (NativeListener | undefined)[] = [];

  constructor(readonly addon: Addon) {
    const buf = new ArrayBuffer(SHARED_BYTES);
    this.shared = new Uint8Array(buf);
    addon.init(buf, this.onAccept, this.onData, this.onConnect, this.onEnd, this.onAcceptError);
  }

  async listen(e: Endpoint, onAccept: AcceptHandler): Promise<PlaneListener> {
    let host = e.host;
    if (net.isIP(host) === 0) host = (await lookup(host)).address;
    // ipv6Only so "[::]:443" and "0.0.0.0:443" can both be listed, as nginx and HAProxy allow.
    const id = this.addon.listen(host, e.port, host.includes(':'), 511, reusePortWanted());
    if (id < 0) throw new Error(`cannot listen on ${e.text}: ${errnoCode(-id)}`);
    const l = new NativeListener(this, id, e.text, host, onAccept);
    this.listeners[id] = l;
    return l;
  }

  /** The addon's live connection and listener counts (tests check they return to zero). */
  counts(): [number, number] {
    return this.addon.counts();
  }

  forget(slot: number): void {
    this.clients[slot] = undefined;
  }

  dropListener(id: number): void {
    this.listeners[id] = undefined;
  }

  // Callbacks from the addon, bound once: each runs synchronously inside its poll callback.

  private readonly onAccept = (slot: number, listener: number, address: string, port: number): void => {
    const l = this.listeners[listener];
    const c = new NativeClient(this, slot, address, port);
    this.clients[slot] = c;
    if (l === undefined) c.destroy();
    else l.onAccept(c, l.text);
  };

  private readonly onData = (slot: number, n: number): void => {
    this.clients[slot]?.data(n);
  };

  private readonly onConnect = (slot: number, errno: number): void => {
    this.clients[slot]?.connected(errno);
  };

  private readonly onEnd = (
    slot: number,
    reason: NativeEnd,
    errno: number,
    up: number,
    down: number,
  ): void => {
    const c = this.clients[slot];
    this.clients[slot] = undefined;
    c?.ended(END[reason], errno === 0 ? undefined : errnoCode(errno), up, down);
  };

  private readonly onAcceptError = (listener: number): void => {
    // The addon paused this listener (out of fds): the backlog holds new clients until one closes.
    const l = this.listeners[listener];
    if (l !== undefined) setTimeout(retryAccept, ACCEPT_RETRY_MS, l).unref();
  };
}

function retryAccept(l: NativeListener): void {
  l.resume();
}

class NativeListener implements PlaneListener {
  private open = true;

  constructor(
    private readonly plane: NativePlane,
    private readonly id: number,
    readonly text: string,
    private readonly host: string,
    readonly onAccept: AcceptHandler,
  ) {}

  address(): net.AddressInfo | null {
    if (!this.open) return null;
    return {
      address: this.host,
      family: this.host.includes(':') ? 'IPv6' : 'IPv4',
      port: this.plane.addon.listenerPort(this.id),
    };
  }

  resume(): void {
    if (this.open) this.plane.addon.pauseAccept(this.id, false);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.plane.addon.closeListener(this.id);
    this.plane.dropListener(this.id);
  }
}

enum Stage {
  Detecting,
  Connecting,
  Relaying,
  Closed,
}

class NativeClient implements ClientSide, RelayView {
  reason: EndReason | undefined;
  code: string | undefined;
  private stage = Stage.Detecting;
  private detectOwner: DetectOwner | undefined;
  private relayOwner: RelayOwner | undefined;
  private attempts: NativeAttempts | undefined;
  private finalUp = 0;
  private finalDown = 0;

  constructor(
    private readonly plane: NativePlane,
    readonly slot: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  get bytesUp(): number {
    if (this.stage !== Stage.Relaying) return this.finalUp;
    return Math.max(0, this.plane.addon.bytes(this.slot, 0) - this.headerBytes);
  }

  get bytesDown(): number {
    return this.stage === Stage.Relaying ? this.plane.addon.bytes(this.slot, 1) : this.finalDown;
  }

  /** Milliseconds since the last byte either way, read from the addon (status pages). */
  idleFor(_now: number): number | undefined {
    return this.stage === Stage.Relaying ? this.plane.addon.bytes(this.slot, 2) : undefined;
  }

  private local: [string, number] | undefined;

  get localAddress(): string | undefined {
    this.local ??= this.plane.addon.local(this.slot);
    return this.local[0];
  }

  get localPort(): number | undefined {
    this.local ??= this.plane.addon.local(this.slot);
    return this.local[1];
  }

  /** Bytes a held client sent, replayed when detection starts (the addon keeps reading it). */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private holder: DetectOwner | undefined;

  hold(owner: DetectOwner): void {
    this.holder = owner;
    this.held = [];
  }

  startDetect(owner: DetectOwner): void {
    const held = this.held;
    this.held = undefined;
    this.holder = undefined;
    this.detectOwner = owner;
    if (held !== undefined) for (const chunk of held) owner.onDetectData(chunk);
  }

  /** Client bytes in plane.shared[0..n), or 0 for FIN, or -errno. */
  data(n: number): void {
    if (this.held !== undefined) {
      // Held for a slot: keep what it sends (bounded like a peek), report only its going away.
      if (n > 0 && this.heldBytes + n <= PEEK_MAX) {
        this.held.push(Buffer.from(this.plane.shared.subarray(0, n)));
        this.heldBytes += n;
      } else if (n <= 0 || this.heldBytes + n > PEEK_MAX) {
        this.holder?.onEarlyClose();
      }
      return;
    }
    const owner = this.detectOwner;
    if (owner === undefined) return;
    if (n > 0) {
      // The shared buffer is overwritten by the next read: the owner keeps a copy.
      const chunk = Buffer.allocUnsafe(n);
      chunk.set(this.plane.shared.subarray(0, n));
      owner.onDetectData(chunk);
    } else if (n === 0) {
      owner.onDetectEnd();
    } else {
      owner.onEarlyError({ code: errnoCode(-n) });
    }
  }

  connect(backends: readonly Endpoint[], timeoutMs: number, handler: ConnectHandler): () => void {
    this.stage = Stage.Connecting;
    const a = new NativeAttempts(this, backends, timeoutMs, handler);
    this.attempts = a;
    a.next();
    return a.cancel;
  }

  connected(errno: number): void {
    this.attempts?.answer(errno);
  }

  relay(
    header: Uint8Array | undefined,
    head: Uint8Array,
    clientEnded: boolean,
    idleMs: number,
    owner: RelayOwner,
  ): RelayView {
    this.relayOwner = owner;
    this.attempts = undefined;
    this.stage = Stage.Relaying;
    const shared = this.plane.shared;
    let n = 0;
    if (header !== undefined) {
      shared.set(header, 0);
      n = header.length;
    }
    shared.set(head, n);
    // The addon counts the whole head as client bytes; the header is not the client's.
    this.headerBytes = n;
    const err = this.plane.addon.relay(this.slot, n + head.length, clientEnded, idleMs);
    if (err !== 0) this.ended('backend_error', errnoCode(err), 0, 0);
    return this;
  }

  private headerBytes = 0;

  ended(reason: EndReason, code: string | undefined, up: number, down: number): void {
    if (this.stage === Stage.Closed) return;
    this.stage = Stage.Closed;
    this.plane.forget(this.slot);
    if (this.reason === undefined) {
      this.reason = reason;
      this.code = code;
    }
    this.finalUp = Math.max(0, up - this.headerBytes);
    this.finalDown = down;
    this.relayOwner?.onRelayEnd(this);
  }

  abort(reason: EndReason): void {
    if (this.stage !== Stage.Relaying) return;
    const up = this.bytesUp;
    const down = this.bytesDown;
    this.plane.addon.close(this.slot, false);
    this.ended(reason, undefined, up, down);
  }

  destroy(reply?: Readonly<Uint8Array>): void {
    if (this.stage === Stage.Closed) return;
    if (this.stage === Stage.Relaying) {
      this.abort('shutdown');
      return;
    }
    this.stage = Stage.Closed;
    if (reply !== undefined && reply.length > 0) {
      this.plane.shared.set(reply, 0);
      this.plane.addon.close(this.slot, false, reply.length);
    } else {
      this.plane.addon.close(this.slot, false);
    }
    this.plane.forget(this.slot);
  }

  dropBackend(): void {
    if (this.stage === Stage.Connecting) this.plane.addon.dropBackend(this.slot);
  }

  /** Used by the attempts: starts a connect, 0 or an errno code. */
  startConnect(ip: string, port: number): string | undefined {
    if (this.stage !== Stage.Connecting) return 'ECANCELED';
    const err = this.plane.addon.connect(this.slot, ip, port);
    return err === 0 ? undefined : errnoCode(err);
  }
}

/** The native plane's connect: names resolved here per attempt, the addon dials the address. */
class NativeAttempts extends BackendAttempts {
  constructor(
    private readonly client: NativeClient,
    backends: readonly Endpoint[],
    timeoutMs: number,
    handler: ConnectHandler,
  ) {
    super(backends, timeoutMs, handler);
  }

  protected dial(backend: Endpoint, attempt: number): void {
    if (net.isIP(backend.host) !== 0) {
      this.dialAddress(backend.host, backend.port);
      return;
    }
    lookup(backend.host).then(
      (a) => {
        if (this.current(attempt)) this.dialAddress(a.address, backend.port);
      },
      (err: NodeJS.ErrnoException) => {
        if (this.current(attempt)) this.fail(err.code ?? 'ENOTFOUND');
      },
    );
  }

  private dialAddress(ip: string, port: number): void {
    const code = this.client.startConnect(ip, port);
    if (code !== undefined) this.fail(code);
  }

  protected abandon(): void {
    this.client.dropBackend();
  }

  /** The addon's answer to the connect under way: 0 or an errno. */
  answer(errno: number): void {
    if (this.done) return;
    if (errno !== 0) this.fail(errnoCode(errno));
    else this.succeed();
  }
}
