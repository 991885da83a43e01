// Lets several side observers (metrics, the status page) hear the mux's and the reloader's events.
import type { ConnectFailure } from './connect/attempts.js';
import type { Connection } from './connection.js';
import type { MuxObserver } from './mux.js';
import type { ReloadMetrics } from './ops/reload.js';

/** One observer that tells each of `list` in turn; per connection event, never per chunk. */
export function fanOut(list: readonly MuxObserver[]): MuxObserver {
  // UDP flows are watched by metrics alone (the status page does not count them): its observer as is.
  const udp = list.find((o) => o.udp !== undefined)?.udp;
  const out: MuxObserver = {
    onAccepted(c: Connection): void {
      for (const o of list) o.onAccepted?.(c);
    },
    onRouted(c: Connection): void {
      for (const o of list) o.onRouted(c);
    },
    onConnectFailure(c: Connection, f: ConnectFailure): void {
      for (const o of list) o.onConnectFailure(c, f);
    },
    onConnected(c: Connection): void {
      for (const o of list) o.onConnected(c);
    },
    onProxyHeader(c: Connection): void {
      for (const o of list) o.onProxyHeader?.(c);
    },
    onClosed(c: Connection): void {
      for (const o of list) o.onClosed(c);
    },
  };
  return udp === undefined ? out : { ...out, udp };
}

/** The same for reload results. */
export function fanOutReloads(list: readonly ReloadMetrics[]): ReloadMetrics {
  return {
    reloadSucceeded(config): void {
      for (const o of list) o.reloadSucceeded?.(config);
    },
    reloadFailed(errors): void {
      for (const o of list) o.reloadFailed?.(errors);
    },
  };
}
