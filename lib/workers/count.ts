// How many worker processes a config asks for, "auto" counted against this machine's cores.
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';
import { MAX_WORKERS } from '../config/validate.js';

export function workerCount(config: Pick<Config, 'workers'>): number {
  if (config.workers !== 'auto') return config.workers;
  return Math.min(availableParallelism(), MAX_WORKERS);
}
