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
] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** What detection learned about a connection: the protocol and, where it has them, routing keys. */
export interface Detection {
  protocol: Protocol;
  /** TLS server_name, lowercased, without trailing dot. */
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
