// Live connections per source, for limits.max_connections_per_source. Counted per process: with
// `workers = N`, each worker counts its own connections.
import type { Connection } from '../connection.js';
import { sourceKey } from '../net/ip.js';

export class SourceCounts {
  private readonly counts = new Map<string, number>();

  /** Counts one more live connection from `key`; returns how many are live from it now. */
  add(key: string): number {
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n;
  }

  /** One connection from `key` closed. */
  remove(key: string): void {
    const n = this.counts.get(key)! - 1;
    if (n === 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }
}

/**
 * The key a connection counts under: the peer's address; for a trusted PROXY peer (a load balancer
 * carrying many clients), the client its header names, once read, and nothing before.
 */
export function countedKey(c: Connection): string | undefined {
  if (c.trustedPeer && c.proxyHeader?.command !== 'proxy') return undefined;
  return sourceKey(c.source);
}
