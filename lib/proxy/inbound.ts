// Decides what a connection's first bytes mean for the PROXY protocol: a trusted peer's header, or a forged one.
import type { Cidr } from '../config/types.js';
import { anyCidrContains } from '../net/ip.js';
import { matchProxySignature, type ProxyHeader, parseProxyHeader } from './parse.js';

/**
 * - header: a trusted peer's header, `length` bytes, to strip before detection;
 * - none: no header, none allowed: detect on the bytes as they are;
 * - wait: undecided until more bytes arrive;
 * - refuse: close with reject reason proxy_header (reason for the log's `detail`).
 */
export type InboundStep =
  | { kind: 'header'; header: ProxyHeader; length: number }
  | { kind: 'none' }
  | { kind: 'wait' }
  | { kind: 'refuse'; reason: string };

const NONE: InboundStep = Object.freeze({ kind: 'none' });
const WAIT: InboundStep = Object.freeze({ kind: 'wait' });

/** True when [accept_proxy] lists the peer: it may, and must, start with a PROXY header. */
export function isTrustedPeer(from: readonly Cidr[] | undefined, peer: Uint8Array | undefined): boolean {
  return from !== undefined && peer !== undefined && anyCidrContains(from, peer);
}

/**
 * The PROXY step for the bytes a peer sent so far. A trusted peer must start with a valid header. Any
 * other peer must not start with a PROXY signature: passed on, a forged header could name any client
 * to a backend that reads one, so it is refused (even when [accept_proxy] is not configured).
 */
export function inboundStep(buf: Uint8Array, trusted: boolean): InboundStep {
  if (!trusted) {
    const sig = matchProxySignature(buf);
    if (sig.kind === 'no-match') return NONE;
    if (sig.kind === 'need-more') return WAIT;
    return { kind: 'refuse', reason: 'PROXY header from a peer not in accept_proxy.from' };
  }
  const r = parseProxyHeader(buf);
  switch (r.kind) {
    case 'match':
      return { kind: 'header', header: r.header, length: r.length };
    case 'need-more':
      return WAIT;
    case 'no-match':
      return { kind: 'refuse', reason: 'no PROXY header from a peer in accept_proxy.from' };
    case 'invalid':
      return { kind: 'refuse', reason: r.reason };
  }
}
