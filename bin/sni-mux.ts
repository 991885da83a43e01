#!/usr/bin/env node
// The sni-mux command: parses arguments and wires config, logs and the mux together; nothing else.
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { AdminServer } from '../lib/admin/server.js';
import { AdminSlot } from '../lib/admin/slot.js';
import { formatProblem, loadConfig } from '../lib/config/load.js';
import type { Config, Endpoint } from '../lib/config/types.js';
import { defaultPlane } from '../lib/dataplane/select.js';
import { createLogger, LogOutput } from '../lib/log.js';
import { Metrics } from '../lib/metrics.js';
import { Mux } from '../lib/mux.js';
import { fanOut, fanOutReloads } from '../lib/observers.js';
import { explainCommand } from '../lib/ops/explain-command.js';
import { fdLimitWarning } from '../lib/ops/fdlimit.js';
import { claimPidFile, pidFilePath } from '../lib/ops/pidfile.js';
import { dropPrivileges, resolveIdentity } from '../lib/ops/privileges.js';
import { Reloader } from '../lib/ops/reload.js';
import { reloadCommand } from '../lib/ops/reload-command.js';
import { serveUntilStopped } from '../lib/ops/signals.js';
import { describeRoutes } from '../lib/route/describe.js';
import { StatusReports } from '../lib/status/report.js';
import { StatusTally } from '../lib/status/tally.js';
import { VERSION } from '../lib/version.js';
import { workerCount } from '../lib/workers/count.js';
import { listenerList } from '../lib/workers/messages.js';
import { runPrimary } from '../lib/workers/primary.js';
import { WorkerLink } from '../lib/workers/worker.js';

const USAGE = `Usage:
  sni-mux --config FILE          run the mux in the foreground
  sni-mux check --config FILE    validate FILE and print the routes it defines
  sni-mux reload --config FILE   validate FILE, then send SIGHUP to the sni-mux named by its pid_file
  sni-mux reload --pid-file FILE send SIGHUP to the sni-mux whose pid is in FILE
  sni-mux explain --config FILE --sni NAME [--alpn ID] | --host NAME | --protocol NAME
                  | --first-bytes FILE  [--source IP] [--listener ADDR]
                                 say which route and backends a connection would get, and why
  sni-mux --version | --help

Signals: SIGHUP reloads the config; SIGTERM or SIGINT drain and exit (a second one exits at once).
Docs: docs/configuration.md, docs/operations.md`;

const COMMANDS = ['run', 'check', 'reload', 'explain'];

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
    const plane = defaultPlane();
    const why = plane.reason === undefined ? '' : `; ${plane.reason}`;
    process.stdout.write(`sni-mux ${VERSION} (data plane: ${plane.name}${why})\n`);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  const file = configPositional(positionals, values.config);
  if (file !== undefined) {
    const fix = ['check', 'reload', 'explain'].includes(command)
      ? `sni-mux ${command} --config ${file}`
      : `sni-mux --config ${file}`;
    process.stderr.write(
      `sni-mux: the config file comes after --config: did you mean \`${fix}\`?\n\n${USAGE}\n`,
    );
    return 2;
  }
  if (!COMMANDS.includes(command) || positionals.length > 1) {
    process.stderr.write(`sni-mux: unknown command "${positionals.join(' ')}"\n\n${USAGE}\n`);
    return 2;
  }
  const io = { out: (s: string) => process.stdout.write(s), err: (s: string) => process.stderr.write(s) };
  if (command === 'reload') return reloadCommand({ config: values.config, pidFile: values['pid-file'] }, io);
  if (command === 'explain') {
    const { config, sni, alpn, protocol, host, source, listener } = values;
    return explainCommand(
      { config, sni, alpn, protocol, host, source, listener, firstBytes: values['first-bytes'] },
      io,
    );
  }
  if (values.config === undefined) {
    process.stderr.write(`sni-mux: --config FILE is required\n\n${USAGE}\n`);
    return 2;
  }
  // A worker of `workers > 1` runs the config its primary validated and sends, never the file itself.
  if (cluster.isWorker) {
    const link = await WorkerLink.connect();
    return run(link.config, link);
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

/** A config file given without --config (`sni-mux check mux.toml`, `sni-mux mux.toml`), or undefined. */
function configPositional(positionals: string[], config: string | undefined): string | undefined {
  if (config !== undefined) return undefined;
  const [first, second] = positionals;
  if (positionals.length === 2 && COMMANDS.includes(first!)) return second;
  if (positionals.length === 1 && !COMMANDS.includes(first!) && /\.toml$|\//.test(first!)) return first;
  return undefined;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'pid-file': { type: 'string' },
      sni: { type: 'string' },
      alpn: { type: 'string', multiple: true },
      protocol: { type: 'string' },
      host: { type: 'string' },
      source: { type: 'string' },
      listener: { type: 'string' },
      'first-bytes': { type: 'string' },
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

/** Log lines are written asynchronously: what is still buffered is flushed before the process exits. */
let logOutput: LogOutput | undefined;
/** How long the exit waits for a stalled log reader before giving up on the buffered lines. */
const EXIT_FLUSH_MS = 2000;

async function run(config: Config, link?: WorkerLink): Promise<number> {
  const output = new LogOutput();
  logOutput = output;
  const base = createLogger(config.log, output);
  const log = link === undefined ? base : base.child({ worker: link.index });
  // Who to become is settled before anything is bound: a wrong user must not leave ports taken.
  const identity = resolveIdentity(config);
  if (identity.kind === 'error') {
    log.fatal({ user: config.user, group: config.group }, `cannot start: ${identity.message}`);
    return 1;
  }
  const workers = workerCount(config);
  if (link === undefined && workers > 1) return runPrimary({ config, workers, log, output });
  const fd = fdLimitWarning(config.limits);
  if (fd !== undefined) log.warn({ limit: fd.limit, needed: fd.needed }, fd.message);
  // Metrics only cost anything when something can read them: the admin listener.
  const metrics = config.admin === undefined ? undefined : new Metrics(config);
  const tally = metrics && new StatusTally();
  const mux = new Mux(config, { logger: log, observer: tally && fanOut([metrics!, tally]) });
  const pages = tally && new StatusReports({ mux, tally, health: (r, b) => mux.health.state(r, b) });
  const onAdminError = (err: Error): void => log.error({ err: err.message }, 'admin listener error');
  // A worker's metrics and pages are read by its primary, which holds the one admin listener.
  const makeAdmin = (e: Endpoint): AdminServer | undefined =>
    link === undefined ? metrics && new AdminServer(e, metrics, onAdminError, pages) : undefined;
  const admin = config.admin && makeAdmin(config.admin.listen);
  metrics?.watchBackends((text) => mux.backendDown(text));
  metrics?.watchLog(() => output.dropped);
  metrics?.watchHealth((route, backend) => mux.health.state(route, backend));
  let adminAddress: AddressInfo | undefined;
  const adminSlot = new AdminSlot(admin, makeAdmin, log);
  const reloadMetrics = tally && fanOutReloads([metrics!, tally]);
  const reloader = new Reloader({
    mux,
    log,
    metrics: reloadMetrics,
    parts: link === undefined ? [adminSlot] : [],
    ...(link && { load: link.load }),
  });
  let stopped: Promise<number>;
  const pidFile = link === undefined ? pidFilePath(config) : undefined;
  try {
    await mux.start();
    adminAddress = await admin?.listen();
    // Signals are handled before the pid file tells anyone where to send them.
    stopped = serveUntilStopped({
      mux,
      log,
      reloader,
      onDraining: () => adminSlot.setDraining(),
      ...(link && { signals: link }),
    });
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
      data_plane: mux.plane.name,
      listeners: [...mux.addresses()].map(([text, a]) => ({
        config: text,
        address: a.address,
        port: a.port,
      })),
      udp_listeners: [...mux.udp.addresses()].map(([text, a]) => ({
        config: text,
        address: a.address,
        port: a.port,
      })),
      routes: config.routes.length,
      admin: adminAddress && { address: adminAddress.address, port: adminAddress.port },
      config: config.file,
      pid_file: pidFile,
    },
    link === undefined ? 'sni-mux started' : 'worker started',
  );
  link?.serve(
    { reloader, pages, reloadMetrics, registry: metrics?.registry },
    mux.plane.name,
    listenerList(mux.addresses()),
  );

  return stopped;
}

main(process.argv.slice(2)).then(
  // Exit explicitly: a stopped mux must not be kept alive by a stray timer. Log lines still buffered
  // are written first (the drain, a second signal, a failed start all end here); stderr is synchronous.
  async (code) => {
    await logOutput?.flush(EXIT_FLUSH_MS);
    process.exit(code);
  },
  async (err: unknown) => {
    await logOutput?.flush(EXIT_FLUSH_MS);
    process.stderr.write(`sni-mux: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(70);
  },
);
