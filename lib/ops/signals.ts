// Process signals for a running mux: SIGHUP reloads; SIGTERM or SIGINT drains, and a second one closes everything.
import type { Logger } from '../log.js';
import type { Mux } from '../mux.js';
import type { Reloader } from './reload.js';

export interface SignalOptions {
  mux: Pick<Mux, 'live' | 'stop' | 'abortAll'>;
  log: Logger;
  reloader: Pick<Reloader, 'reload' | 'stop'>;
  /** Called once, as the drain starts (the admin endpoint's /healthz turns 503). */
  onDraining?: () => void;
  /** Where the signals come from: the process, or a worker's primary (lib/workers/worker.ts). */
  signals?: Pick<NodeJS.EventEmitter, 'on'>;
}

/** Installs the handlers; resolves with the exit code once the mux has stopped. */
export function serveUntilStopped(o: SignalOptions): Promise<number> {
  const { mux, log, reloader } = o;
  const source = o.signals ?? process;
  source.on('SIGHUP', () => {
    void reloader.reload();
  });
  return new Promise<number>((resolve) => {
    let signals = 0;
    let stopped = false;
    // After a second signal both the drain and abortAll() resolve (the abort empties what the drain
    // waits for): whichever is first logs "stopped", once.
    const done = (): void => {
      if (stopped) return;
      stopped = true;
      log.info('stopped');
      resolve(0);
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (++signals > 1) {
        log.warn({ signal, live: mux.live.size }, 'second signal: closing every connection now');
        void mux.abortAll().then(done);
        return;
      }
      reloader.stop();
      o.onDraining?.();
      // stop() closes the listeners before it first waits: once "draining" is logged, connects are refused.
      const draining = mux.stop();
      log.info({ signal, live: mux.live.size }, 'draining');
      void draining.then(done);
    };
    source.on('SIGTERM', onStop);
    source.on('SIGINT', onStop);
  });
}
