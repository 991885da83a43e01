// One UDP flow (a client address:port on one listen socket): detecting, then relaying through its own backend socket.

import type dgram from 'node:dgram';
import type { Endpoint, RouteConfig } from '../config/types.js';
import type { Protocol } from '../detect/types.js';

/** Why datagrams were dropped instead of forwarded; metric label and log word. */
export const UDP_REJECT_REASONS = [
  'no_route', // detected (or not), but no UDP route matches
  'invalid', // a malformed QUIC Initial, or one that fails authentication
  'undecided', // still undecided after timeouts.detect, or its held datagrams outgrew the queue
  'flow_limit', // limits.max_udp_flows, or max_connections_per_source, reached
  'shutdown', // a new flow while the mux drains
] as const;
export type UdpRejectReason = (typeof UDP_REJECT_REASONS)[number];

/** Why a routed flow ended. */
export type FlowEnd = 'idle_timeout' | 'backend_error' | 'shutdown';

/** Datagrams held while a flow is undecided: enough for a post-quantum hello over several Initials. */
export const MAX_QUEUED_DATAGRAMS = 8;
export const MAX_QUEUED_BYTES = 16384;

export enum FlowState {
  Detecting,
  Relaying,
  Closed,
}

export class Flow {
  state = FlowState.Detecting;
  readonly startedAt = performance.now();
  /** Set by each datagram either way, cleared by the idle sweep: no clock read per datagram. */
  active = true;
  /** When the sweep last saw the flow active. */
  lastActive = this.startedAt;
  /** Datagrams held until the flow is decided, in arrival order. */
  queue: Buffer[] = [];
  queuedBytes = 0;
  protocol: Protocol | undefined;
  sni: string | undefined;
  alpn: readonly string[] | undefined;
  route: RouteConfig | undefined;
  backend: Endpoint | undefined;
  backendSocket: dgram.Socket | undefined;
  detectMs: number | undefined;
  datagramsUp = 0;
  datagramsDown = 0;
  bytesUp = 0;
  bytesDown = 0;
  end: FlowEnd | undefined;
  reject: UdpRejectReason | undefined;
  code: string | undefined;
  closedAt: number | undefined;

  constructor(
    readonly id: number,
    /** Key in the flow table: listener, client address and port. */
    readonly key: string,
    readonly listener: string,
    /** The listen socket: replies leave from it, so the client sees the address it sent to. */
    readonly socket: dgram.Socket,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly source: Uint8Array | undefined,
    /** udp_idle of the config in force when the flow started (ms). */
    readonly idleMs: number,
  ) {}
}
