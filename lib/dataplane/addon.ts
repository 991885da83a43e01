// Loads the native data plane (native/sni_mux.c) and types its boundary; see the header comment there.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** Why a relay ended, as the addon numbers it (native/sni_mux.c: END_*). */
export enum NativeEnd {
  ClientClosed = 1,
  BackendClosed = 2,
  ClientError = 3,
  BackendError = 4,
  Idle = 5,
}

export interface Addon {
  init(
    shared: ArrayBuffer,
    onAccept: (slot: number, listener: number, address: string, port: number) => void,
    onData: (slot: number, n: number) => void,
    onConnect: (slot: number, errno: number) => void,
    onEnd: (slot: number, reason: NativeEnd, errno: number, bytesUp: number, bytesDown: number) => void,
    onAcceptError: (listener: number, errno: number) => void,
  ): void;
  /** A listener id >= 0, or -errno. */
  listen(host: string, port: number, ipv6Only: boolean, backlog: number, reusePort: boolean): number;
  listenerPort(listener: number): number;
  closeListener(listener: number): void;
  pauseAccept(listener: number, paused: boolean): void;
  /** 0, or the errno of a connect that failed at once; else onConnect answers. */
  connect(slot: number, ip: string, port: number): number;
  /** Abandons a connect attempt (timed out), so a late answer cannot come. */
  dropBackend(slot: number): void;
  /** Starts relaying after shared[0..headLen) is sent to the backend. */
  relay(slot: number, headLen: number, clientEnded: boolean, idleMs: number): number;
  /** Ends a connection in any stage; replyLen > 0 first sends shared[0..replyLen) to the client, then FIN. */
  close(slot: number, reset: boolean, replyLen?: number): void;
  /** 0: bytes client->backend, 1: backend->client, 2: ms since the last byte either way. */
  bytes(slot: number, direction: 0 | 1 | 2): number;
  /** [address, port] of the client's local end. */
  local(slot: number): [string, number];
  /** [connections, listeners] the addon holds. */
  counts(): [number, number];
}

export type AddonLoad = { kind: 'loaded'; addon: Addon; path: string } | { kind: 'missing'; reason: string };

let loaded: AddonLoad | undefined;

/**
 * The addon built by npm install (build/Release), or the one SNI_MUX_ADDON names (the sanitizer build in
 * CI). Loaded once; a missing or unloadable addon is a value, not an exception.
 */
export function loadAddon(): AddonLoad {
  if (loaded !== undefined) return loaded;
  // Compiled to dist/lib/dataplane/addon.js: the package root is three folders up.
  const path =
    process.env.SNI_MUX_ADDON ?? new URL('../../../build/Release/sni_mux.node', import.meta.url).pathname;
  if (!existsSync(path)) {
    loaded = { kind: 'missing', reason: `${path} not found (npm install builds it)` };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as Addon;
    loaded = { kind: 'loaded', addon, path };
  } catch (err) {
    loaded = { kind: 'missing', reason: `${path}: ${(err as Error).message}` };
  }
  return loaded;
}
