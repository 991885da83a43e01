// Shared result types for the pure probes that look at a connection's first bytes.

/** Every protocol sni-mux can recognise; one name used in config, logs, metrics and docs. */
export const PROTOCOLS = [
  'tls',
  'ssh',
  'openvpn',
  'http',
  'xmpp',
  'socks5',
  'tinc',
  'adb',
  'rdp',
  'postgres',
  'mqtt',
  'quic', // UDP only: QUIC v1/v2 client Initials
  'wireguard', // UDP only: handshake initiation
] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Protocols that only exist over UDP: a route naming one is a UDP route without saying `transport`. */
export const UDP_ONLY_PROTOCOLS: readonly Protocol[] = Object.freeze(['quic', 'wireguard']);

/** What detection learned about a connection: the protocol and, where it has them, routing keys. */
export interface Detection {
  protocol: Protocol;
  /** TLS server_name (of a TCP or a QUIC ClientHello), lowercased, without trailing dot. */
  sni?: string;
  /** TLS ALPN protocol names offered by the client, in client order. */
  alpn?: readonly string[];
  /** HTTP/1.x Host header value, lowercased, port and trailing dot removed. */
  host?: string;
}

/**
 * A probe's verdict on the bytes seen so far.
 * - match: the bytes are this protocol;
 * - need-more: a prefix of this protocol, more bytes could decide;
 * - no-match: not this protocol (reason for logs);
 * - invalid: this protocol beyond doubt, but malformed (e.g. a ClientHello whose lengths overrun):
 *   the connection is refused rather than handed to a catch-all.
 */
export type ProbeResult =
  | { kind: 'match'; detection: Detection }
  | { kind: 'need-more' }
  | { kind: 'no-match'; reason: string }
  | { kind: 'invalid'; protocol: Protocol; reason: string };

/** A probe is pure: bytes in, verdict out; no I/O, no clocks, no state between calls. */
export type Probe = (buf: Uint8Array) => ProbeResult;

// Verdicts are built once, at module load, and frozen: a probe returns them without allocating, and no
// caller can change one that every connection shares.

/** More bytes could decide; the one shared value. */
export const NEED_MORE: ProbeResult = Object.freeze({ kind: 'need-more' });

/** Not this protocol, and why (for logs). */
export function noMatch(reason: string): ProbeResult {
  return Object.freeze({ kind: 'no-match', reason });
}

/** This protocol; a probe whose protocol carries no routing keys returns one such value every time. */
export function matched(protocol: Protocol): ProbeResult {
  return Object.freeze({ kind: 'match', detection: Object.freeze({ protocol }) });
}

/** This protocol beyond doubt, but malformed: the connection is refused. */
export function invalid(protocol: Protocol, reason: string): ProbeResult & { kind: 'invalid' } {
  return Object.freeze({ kind: 'invalid', protocol, reason });
}
