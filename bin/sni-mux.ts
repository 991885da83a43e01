#!/usr/bin/env node
// The sni-mux command: parses arguments and wires config, logs and the mux together; nothing else.
import { parseArgs } from 'node:util';
import { formatProblem, loadConfig } from '../lib/config/load.js';
import type { Config } from '../lib/config/types.js';
import { createLogger } from '../lib/log.js';
import { Mux } from '../lib/mux.js';
import { describeRoutes } from '../lib/route/describe.js';
import { VERSION } from '../lib/version.js';

const USAGE = `Usage:
  sni-mux --config FILE          run the mux in the foreground
  sni-mux check --config FILE    validate FILE and print the routes it defines
  sni-mux --version | --help

Signals: SIGHUP reloads the config; SIGTERM or SIGINT drain and exit (a second one exits at once).
Docs: docs/configuration.md`;

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
  if (!['run', 'check'].includes(command) || positionals.length > 1) {
    process.stderr.write(`sni-mux: unknown command "${positionals.join(' ')}"\n\n${USAGE}\n`);
    return 2;
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
  const mux = new Mux(config, { logger: log });
  try {
    await mux.start();
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
      config: config.file,
    },
    'sni-mux started',
  );

  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(async () => {
      const result = await loadConfig(config.file);
      if (result.kind === 'error') {
        log.error({ errors: result.errors.map(formatProblem) }, 'reload failed: keeping the old config');
        return;
      }
      try {
        await mux.reload(result.config);
        log.info({ routes: result.config.routes.length }, 'config reloaded');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reload failed: keeping the old config');
      }
    });
  });

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onStop = (signal: NodeJS.Signals): void => {
      if (++signals > 1) {
        log.warn({ signal }, 'second signal: closing every connection now');
        mux.abortAll();
        resolve(0);
        return;
      }
      log.info({ signal, live: mux.live.size }, 'draining');
      void mux.stop().then(() => {
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
  });
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
