// `sni-mux reload`: checks the config, then sends SIGHUP to the running sni-mux named by its pid file.
import { formatProblem, loadConfig } from '../config/load.js';
import { pidFilePath, signalPidFile } from './pidfile.js';

export interface ReloadCommandOptions {
  config?: string | undefined;
  pidFile?: string | undefined;
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** Returns the exit code: 0 signalled, 1 not (bad config, no pid file, no such process), 2 usage. */
export async function reloadCommand(o: ReloadCommandOptions, io: Output): Promise<number> {
  if (o.config === undefined && o.pidFile === undefined) {
    io.err('sni-mux reload: give --config FILE (its pid_file names the process) or --pid-file FILE\n');
    return 2;
  }
  let path = o.pidFile;
  if (o.config !== undefined) {
    // The running process would refuse a bad file and keep the old one: say so here, where it is seen.
    const result = await loadConfig(o.config);
    if (result.kind === 'error') {
      for (const p of result.errors) io.err(`error: ${formatProblem(p)}\n`);
      io.err(`sni-mux reload: ${result.errors.length} error(s) in ${o.config}; not reloading\n`);
      return 1;
    }
    for (const p of result.warnings) io.err(`warning: ${formatProblem(p)}\n`);
    path ??= pidFilePath(result.config);
    if (path === undefined) {
      io.err(
        `sni-mux reload: ${o.config} sets no pid_file, so the running process cannot be found; ` +
          'add pid_file = "/run/sni-mux/sni-mux.pid" (and restart), pass --pid-file FILE, ' +
          'or send SIGHUP yourself (systemctl reload sni-mux, kill -HUP PID)\n',
      );
      return 1;
    }
  }
  const sent = signalPidFile(path!, 'SIGHUP');
  if (sent.kind === 'error') {
    io.err(`sni-mux reload: ${sent.message}\n`);
    return 1;
  }
  io.out(
    `sent SIGHUP to sni-mux (pid ${sent.pid}, from ${path}): it re-reads its config now; ` +
      `its log says "config reloaded" or "reload failed" with the reason\n`,
  );
  return 0;
}
