// Checks that the open-file limit can hold limits.max_connections: each relayed connection needs two descriptors.
import { readFileSync } from 'node:fs';
import type { Limits } from '../config/types.js';

/** Descriptors besides connections: listeners, the admin endpoint, stdio, libuv and V8 internals. */
const SPARE_FDS = 100;

/** The soft "Max open files" from /proc/PID/limits text; Infinity for "unlimited". Pure. */
export function parseOpenFilesLimit(text: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (m === null) return undefined;
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

/** Descriptors needed to hold max_connections relayed connections at once. */
export function fdsNeeded(limits: Pick<Limits, 'maxConnections'>): number {
  return limits.maxConnections * 2 + SPARE_FDS;
}

/**
 * A warning when the limit is too low for max_connections, else undefined. Node raises the soft limit to
 * the hard one at start-up, so /proc/self/limits already shows what the process can use.
 */
export function fdLimitWarning(
  limits: Pick<Limits, 'maxConnections'>,
  read: () => string = () => readFileSync('/proc/self/limits', 'utf8'),
): { limit: number; needed: number; message: string } | undefined {
  let limit: number | undefined;
  try {
    limit = parseOpenFilesLimit(read());
  } catch {
    return undefined; // not Linux: nothing to compare with
  }
  const needed = fdsNeeded(limits);
  if (limit === undefined || limit >= needed) return undefined;
  return {
    limit,
    needed,
    message:
      `open-file limit ${limit} is below the ${needed} that limits.max_connections = ${limits.maxConnections} ` +
      'needs (two per connection): past it, connections fail with EMFILE. Raise it (systemd: LimitNOFILE=, ' +
      'docker: --ulimit nofile=, shell: ulimit -n) or lower max_connections',
  };
}
