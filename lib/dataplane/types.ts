// The boundary between the stages (detect, route, limits: TypeScript) and whatever moves the bytes.
import type { AddressInfo } from 'node:net';
import type { Endpoint } from '../config/types.js';
import type { ConnectHandler } from '../connect/attempts.js';
import type { EndReason } from '../reasons.js';

export type DataPlaneName = 'native' | 'js';

/** Hears the client while detection is undecided (Connection implements it). */
export interface DetectOwner {
  /** The client's next bytes; the chunk is the owner's to keep. */
  onDetectData(chunk: Uint8Array): void;
  /** FIN before a decision. */
  onDetectEnd(): void;
  /** The client failed (reset...) before relaying. */
  onEarlyError(err: { code?: string | undefined }): void;
  /** The client closed before relaying. */
  onEarlyClose(): void;
}

export interface RelayOwner {
  /** Called once, after both sides have closed. */
  onRelayEnd(relay: RelayView): void;
}

/** What observers read of a relay: bytes each way (live), and once ended, why. */
export interface RelayView {
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly reason: EndReason | undefined;
  /** errno code when reason is client_error or backend_error. */
  readonly code: string | undefined;
  /** How long the relay has been silent, for status pages; undefined when not tracked. */
  idleFor(now: number): number | undefined;
  /** Closes both sides now (drain deadline passed). */
  abort(reason: EndReason): void;
}

/** One accepted client, whichever plane holds its socket. */
export interface ClientSide {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The address and port the client connected to (for an outbound PROXY header). */
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /**
   * Holds the client unread (waiting for a slot at max_connections); only its going away is reported, as
   * owner.onEarlyClose. startDetect ends the hold.
   */
  hold(owner: DetectOwner): void;
  /** Starts reading for detection; the owner hears every chunk and the end. */
  startDetect(owner: DetectOwner): void;
  /**
   * Stops reading the client (a route was chosen) and connects to the backends in turn. Returns a
   * cancel function for when the client goes away mid-connect.
   */
  connect(backends: readonly Endpoint[], timeoutMs: number, handler: ConnectHandler): () => void;
  /**
   * Relays: sends `header` (an outbound PROXY header, not counted as client bytes) and `head` (the
   * peeked bytes) to the backend, then bytes both ways until both are done. clientEnded: the client sent
   * FIN during detection.
   */
  relay(
    header: Uint8Array | undefined,
    head: Uint8Array,
    clientEnded: boolean,
    idleMs: number,
    owner: RelayOwner,
  ): RelayView;
  /**
   * Closes the client now (a refusal before relaying). A reply, if given, is sent first and the close is
   * a FIN; bytes the client sends after it are dropped unread.
   */
  destroy(reply?: Readonly<Uint8Array>): void;
}

export type AcceptHandler = (client: ClientSide, listener: string) => void;

/** One listening address. */
export interface PlaneListener {
  address(): AddressInfo | null;
  close(): void;
}

export interface DataPlane {
  readonly name: DataPlaneName;
  /** Binds and listens; rejects with the address and errno. */
  listen(e: Endpoint, onAccept: AcceptHandler): Promise<PlaneListener>;
}
