// Whether this process's listeners should be bound with SO_REUSEPORT: only in a worker of `workers > 1`.
import cluster from 'node:cluster';

/** In a worker: each binds its own socket and the kernel spreads connections across them. */
export function reusePortWanted(): boolean {
  return cluster.isWorker;
}

/**
 * net's `reusePort` listen option came in Node 22.12 and 23.1; older Node ignores it, so there the js
 * plane's workers share one socket the primary bound (node:cluster's shared handles) instead.
 */
export function netHasReusePort(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}
