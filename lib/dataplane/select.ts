// Picks the data plane: the config's data_plane (SNI_MUX_DATA_PLANE overrides it, for the test suite).
// Native by default; when the addon was not built or cannot load, js runs with one warning.
import { loadAddon } from './addon.js';
import { JsPlane } from './js.js';
import { NativePlane } from './native.js';
import type { DataPlane, DataPlaneName } from './types.js';

export interface PlaneChoice {
  plane: DataPlane;
  /** Set when the plane asked for (or the default) could not run: say it once in the log. */
  warning?: string;
}

// One of each per process: the addon holds its sockets and loop handles process-wide.
let native: NativePlane | undefined;
const js = new JsPlane();

export function choosePlane(configured: DataPlaneName | undefined): PlaneChoice {
  const env = process.env.SNI_MUX_DATA_PLANE;
  const wanted = env === 'native' || env === 'js' ? env : configured;
  if (wanted !== 'native') return { plane: js };
  const load = loadAddon();
  if (load.kind === 'missing') {
    return {
      plane: js,
      warning: `native data plane unavailable (${load.reason}); running the js data plane`,
    };
  }
  native ??= new NativePlane(load.addon);
  return { plane: native };
}

/** Which plane runs without a data_plane key (for --version), and why not native when not. */
export function defaultPlane(): { name: DataPlaneName; reason?: string } {
  const env = process.env.SNI_MUX_DATA_PLANE;
  if (env === 'js') return { name: 'js', reason: 'SNI_MUX_DATA_PLANE=js' };
  const load = loadAddon();
  return load.kind === 'loaded' ? { name: 'native' } : { name: 'js', reason: load.reason };
}

/** The native plane if this process started it (tests read its counts). */
export function nativePlane(): NativePlane | undefined {
  return native;
}
