// The validated configuration: what the rest of sni-mux reads, never the raw TOML.
import type { BackendTemplate } from '../connect/template.js';
import type { Protocol } from '../detect/types.js';
import type { SCHEMA } from './schema.js';

/** The values a schema enum row accepts, as a type. */
type Values<
  T extends keyof typeof SCHEMA,
  K extends keyof (typeof SCHEMA)[T]['keys'],
> = (typeof SCHEMA)[T]['keys'][K] extends { values: readonly (infer V)[] } ? V : never;

/** A host and port as written in the config: an IPv4/IPv6 literal or a DNS name. */
export interface Endpoint {
  host: string;
  port: number;
  /** The text as the user wrote it, for logs and metric labels. */
  text: string;
  /** A backend with placeholders ("{sni.1}.lxd:443"): host is expanded per connection. */
  template?: BackendTemplate;
  /** On an endpoint expanded from a template: the configured text, the metric label. */
  origin?: string;
}

/** An IPv4 or IPv6 network. Addresses are kept as bytes so matching is a byte compare. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

export type ProxyProtocolVersion = Values<'route', 'proxy_protocol'>;

export type Balance = Values<'route', 'balance'>;

/** Which listeners a route takes clients from: `listen` (TCP connections) or `listen_udp` (UDP flows). */
export type Transport = Values<'route', 'transport'>;

export interface RouteConfig {
  name: string;
  /** 0-based position in the file: first match wins. */
  index: number;
  /** Line of the [[route]] table in the file, when known, for warnings. */
  line?: number;
  /**
   * 'udp' when the route says transport = "udp" or names UDP-only protocols (quic, wireguard);
   * absent means tcp, so TCP-only code and tests need not mention it.
   */
  transport?: 'udp';
  /** Undefined: any protocol. sni/alpn imply tls (quic on a udp route), host implies http. */
  protocol?: readonly Protocol[];
  /** Lowercased names; "*.example.com" matches any name ending in ".example.com". */
  sni?: readonly string[];
  alpn?: readonly string[];
  host?: readonly string[];
  source?: readonly Cidr[];
  /** The top-level listen addresses (their config text) this route takes connections from; undefined: all. */
  listen?: readonly string[];
  onTimeout: boolean;
  /** Tried in turn when a connect fails; at least one. */
  backends: readonly Endpoint[];
  /** Some backend has placeholders: the list is expanded per connection. */
  templated?: boolean;
  /** Which backend goes first: always the first listed, or each in turn. */
  balance: Balance;
  /** Overrides timeouts.idle for this route's connections (ms; 0: none). */
  idle?: number;
  proxyProtocol?: ProxyProtocolVersion;
  /** Active checks of the configured backends: a TCP connect, or a ClientHello answered by a ServerHello. */
  healthCheck?: HealthCheck;
}

export type HealthCheck = Values<'route', 'health_check'>;

/** [health]: how often backends with health_check are checked, and how many results flip their state. */
export interface HealthConfig {
  /** Milliseconds. */
  interval: number;
  timeout: number;
  /** Consecutive passes that bring a down backend up, failures that take an up one down. */
  rise: number;
  fall: number;
}

export interface Timeouts {
  /** All in milliseconds. */
  detect: number;
  connect: number;
  idle: number;
  drain: number;
  /** A backend whose connect failed is tried after the others for this long; 0 turns that off. */
  backendDown: number;
  /** A UDP flow with no datagram either way this long is forgotten. */
  udpIdle: number;
}

export interface Limits {
  maxConnections: number;
  maxConnectionsPerSource: number;
  maxPeekBytes: number;
  /** UDP flows held at once; past it, datagrams of new flows are dropped and counted. */
  maxUdpFlows: number;
}

export interface LogConfig {
  level: Values<'log', 'level'>;
  format: Values<'log', 'format'>;
}

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  listen: readonly Endpoint[];
  /** Addresses to receive UDP datagrams on; empty: no UDP. */
  listenUdp: readonly Endpoint[];
  timeouts: Timeouts;
  limits: Limits;
  log: LogConfig;
  /** allow: the peers the admin listener answers; undefined: any peer that can reach it. */
  admin?: { listen: Endpoint; allow?: readonly Cidr[] };
  acceptProxy?: { from: readonly Cidr[] };
  /** Which data plane moves the bytes (read at start; a reload keeps the one running). */
  dataPlane?: Values<'', 'data_plane'>;
  /** Processes that accept and relay (lib/workers); 1: this process alone, as before. Read at start. */
  workers: number | 'auto';
  health: HealthConfig;
  /** Drop privileges to these after binding. */
  user?: string;
  group?: string;
  pidFile?: string;
  routes: readonly RouteConfig[];
}

/** A problem in the user's file: where it is and what is wrong, ready to print. */
export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** Key path, like "route[3].backend" (1-based route index as users count). */
  key?: string;
  message: string;
}

export type ConfigResult =
  | { kind: 'ok'; config: Config; warnings: ConfigProblem[] }
  | { kind: 'error'; errors: ConfigProblem[] };
