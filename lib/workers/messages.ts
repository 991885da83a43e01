// What the primary and its workers say to each other over node:cluster's IPC channel (structured clone).
import type net from 'node:net';
import type { Config } from '../config/types.js';

/** The reports a worker answers for: lib/status/report.ts, and its registry's metrics as JSON. */
export type StatusQuery = 'status' | 'connections' | 'routes' | 'metrics';

export type ToWorker =
  /** The config in force: the first one starts the worker, later ones are reloads. */
  | { sniMux: 'config'; id: number; config: Config }
  /** Drain; a second one closes every connection now (a second SIGTERM to the primary). */
  | { sniMux: 'stop' }
  /** The primary refused a reload (the file is invalid): the worker counts it as its own. */
  | { sniMux: 'reload-failed'; errors: string[] }
  | { sniMux: 'status'; id: number; query: StatusQuery; limit: number };

/** A bound listener as the start log line shows it. */
export interface ListenerInfo {
  config: string;
  address: string;
  port: number;
}

export type FromWorker =
  /** Asks for the config to start with. */
  | { sniMux: 'ready' }
  | {
      sniMux: 'started';
      dataPlane: string;
      listeners: ListenerInfo[];
    }
  /** Answer to a config: errors empty when it is now in force. */
  | { sniMux: 'config'; id: number; errors: string[] }
  | { sniMux: 'status'; id: number; value: unknown };

/** Messages that are not ours (prom-client's aggregator shares the channel) are ignored. */
export function isOurs<T extends { sniMux: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { sniMux?: unknown }).sniMux === 'string';
}

export function listenerList(addresses: Map<string, net.AddressInfo>): ListenerInfo[] {
  return [...addresses].map(([config, a]) => ({ config, address: a.address, port: a.port }));
}
