// The validated configuration: what the rest of sni-mux reads, never the raw TOML.
import type { Protocol } from '../detect/types.js';

/** A host and port as written in the config: an IPv4/IPv6 literal or a DNS name. */
export interface Endpoint {
  host: string;
  port: number;
  /** The text as the user wrote it, for logs and metric labels. */
  text: string;
}

/** An IPv4 or IPv6 network. Addresses are kept as bytes so matching is a byte compare. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

export type ProxyProtocolVersion = 'v1' | 'v2';

export type Balance = 'first' | 'roundrobin';

export interface RouteConfig {
  name: string;
  /** 0-based position in the file: first match wins. */
  index: number;
  /** Line of the [[route]] table in the file, when known, for warnings. */
  line?: number;
  /** Undefined: any protocol. sni/alpn imply tls, host implies http. */
  protocol?: readonly Protocol[];
  /** Lowercased names; "*.example.com" matches any name ending in ".example.com". */
  sni?: readonly string[];
  alpn?: readonly string[];
  host?: readonly string[];
  source?: readonly Cidr[];
  onTimeout: boolean;
  /** Tried in turn when a connect fails; at least one. */
  backends: readonly Endpoint[];
  /** Which backend goes first: always the first listed, or each in turn. */
  balance: Balance;
  /** Overrides timeouts.idle for this route's connections (ms; 0: none). */
  idle?: number;
  proxyProtocol?: ProxyProtocolVersion;
}

export interface Timeouts {
  /** All in milliseconds. */
  detect: number;
  connect: number;
  idle: number;
  drain: number;
  /** A backend whose connect failed is tried after the others for this long; 0 turns that off. */
  backendDown: number;
}

export interface Limits {
  maxConnections: number;
  maxConnectionsPerSource: number;
  maxPeekBytes: number;
}

export interface LogConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  format: 'auto' | 'json' | 'pretty';
}

export interface Config {
  /** Absolute path of the file this came from. */
  file: string;
  listen: readonly Endpoint[];
  timeouts: Timeouts;
  limits: Limits;
  log: LogConfig;
  admin?: { listen: Endpoint };
  acceptProxy?: { from: readonly Cidr[] };
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
