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
}

/** Installs the handlers; resolves with the exit code once the mux has stopped. */
export function serveUntilStopped(o: SignalOptions): Promise<number> {
  const { mux, log, reloader } = o;
  process.on('SIGHUP', () => {
    void reloader.reload();
  });
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onStop = (signal: NodeJS.Signals): void => {
      if (++signals > 1) {
        log.warn({ signal, live: mux.live.size }, 'second signal: closing every connection now');
        void mux.abortAll().then(() => {
          log.info('stopped');
          resolve(0);
        });
        return;
      }
      reloader.stop();
      o.onDraining?.();
      // stop() closes the listeners before it first waits: once "draining" is logged, connects are refused.
      const stopped = mux.stop();
      log.info({ signal, live: mux.live.size }, 'draining');
      void stopped.then(() => {
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
}
