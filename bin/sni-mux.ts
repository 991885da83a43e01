#!/usr/bin/env node
// The sni-mux command: parses arguments and wires config, logs and the mux together; nothing else.
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { AdminServer } from '../lib/admin.js';
import { formatProblem, loadConfig } from '../lib/config/load.js';
import type { Config, Endpoint } from '../lib/config/types.js';
import { createLogger } from '../lib/log.js';
import { Metrics } from '../lib/metrics.js';
import { Mux } from '../lib/mux.js';
import { AdminSlot } from '../lib/ops/admin-slot.js';
import { fdLimitWarning } from '../lib/ops/fdlimit.js';
import { Reloader } from '../lib/ops/reload.js';
import { reloadCommand } from '../lib/ops/reload-command.js';
import { serveUntilStopped } from '../lib/ops/signals.js';
import { claimPidFile, pidFilePath } from '../lib/pidfile.js';
import { dropPrivileges, resolveIdentity } from '../lib/privileges.js';
import { describeRoutes } from '../lib/route/describe.js';
import { VERSION } from '../lib/version.js';

const USAGE = `Usage:
  sni-mux --config FILE          run the mux in the foreground
  sni-mux check --config FILE    validate FILE and print the routes it defines
  sni-mux reload --config FILE   validate FILE, then send SIGHUP to the sni-mux named by its pid_file
  sni-mux reload --pid-file FILE send SIGHUP to the sni-mux whose pid is in FILE
  sni-mux --version | --help

Signals: SIGHUP reloads the config; SIGTERM or SIGINT drain and exit (a second one exits at once).
Docs: docs/configuration.md, docs/operations.md`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`sni-mux: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`sni-mux ${VERSION}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  if (!['run', 'check', 'reload'].includes(command) || positionals.length > 1) {
    process.stderr.write(`sni-mux: unknown command "${positionals.join(' ')}"\n\n${USAGE}\n`);
    return 2;
  }
  if (command === 'reload') {
    const io = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) };
    return reloadCommand({ config: values.config, pidFile: values['pid-file'] }, io);
  }
  if (values.config === undefined) {
    process.stderr.write(`sni-mux: --config FILE is required\n\n${USAGE}\n`);
    return 2;
  }
  const config = await readConfig(values.config);
  if (config === undefined) return 1;
  if (command === 'check') {
    process.stdout.write(
      `${config.file}: OK, ${config.listen.length} listen address(es), ${config.routes.length} route(s)\n` +
        `listen: ${config.listen.map((e) => e.text).join(', ')}\n\n${describeRoutes(config)}\n`,
    );
    return 0;
  }
  return run(config);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'pid-file': { type: 'string' },
      version: { type: 'boolean', short: 'V' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** Loads and validates; prints every problem and warning to stderr. */
async function readConfig(file: string): Promise<Config | undefined> {
  const result = await loadConfig(file);
  if (result.kind === 'error') {
    for (const p of result.errors) process.stderr.write(`error: ${formatProblem(p)}\n`);
    process.stderr.write(`sni-mux: ${result.errors.length} error(s) in ${file}\n`);
    return undefined;
  }
  for (const p of result.warnings) process.stderr.write(`warning: ${formatProblem(p)}\n`);
  return result.config;
}

async function run(config: Config): Promise<number> {
  const log = createLogger(config.log);
  // Who to become is settled before anything is bound: a wrong user must not leave ports taken.
  const identity = resolveIdentity(config);
  if (identity.kind === 'error') {
    log.fatal({ user: config.user, group: config.group }, `cannot start: ${identity.message}`);
    return 1;
  }
  const fd = fdLimitWarning(config.limits);
  if (fd !== undefined) log.warn({ limit: fd.limit, needed: fd.needed }, fd.message);
  // Metrics only cost anything when something can read them: the admin listener.
  const metrics = config.admin === undefined ? undefined : new Metrics(config);
  const onAdminError = (err: Error): void => log.error({ err: err.message }, 'admin listener error');
  const makeAdmin = (e: Endpoint): AdminServer | undefined =>
    metrics && new AdminServer(e, metrics, onAdminError);
  const admin = config.admin && makeAdmin(config.admin.listen);
  const mux = new Mux(config, { logger: log, observer: metrics });
  metrics?.watchBackends((text) => mux.backendDown(text));
  let adminAddress: AddressInfo | undefined;
  const adminSlot = new AdminSlot(admin, makeAdmin, log);
  const reloader = new Reloader({ mux, log, metrics, parts: [adminSlot] });
  let stopped: Promise<number>;
  const pidFile = pidFilePath(config);
  try {
    await mux.start();
    adminAddress = await admin?.listen();
    // Signals are handled before the pid file tells anyone where to send them.
    stopped = serveUntilStopped({ mux, log, reloader, onDraining: () => adminSlot.setDraining() });
    if (pidFile !== undefined) {
      claimPidFile(pidFile, (path, code) => log.warn({ pid_file: path, code }, 'pid file left in place'));
    }
    if (identity.kind === 'switch') {
      const { user, group } = identity.identity;
      dropPrivileges(identity.identity);
      log.info(
        { user: user?.name, uid: process.getuid?.(), group: group.name, gid: process.getgid?.() },
        'dropped privileges',
      );
    }
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot start');
    return 1;
  }
  log.info(
    {
      version: VERSION,
      listeners: [...mux.addresses()].map(([text, a]) => ({
        config: text,
        address: a.address,
        port: a.port,
      })),
      routes: config.routes.length,
      admin: adminAddress && { address: adminAddress.address, port: adminAddress.port },
      config: config.file,
      pid_file: pidFile,
    },
    'sni-mux started',
  );

  return stopped;
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a stopped mux must not be kept alive by a log transport or a stray timer.
  // stdout and stderr are synchronous for files and pipes on Linux, so nothing printed is lost.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sni-mux: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(70);
  },
);
