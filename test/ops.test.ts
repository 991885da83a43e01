// The operations modules without a process: pid files, accounts, the fd limit, what a reload changes, the Reloader.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import t, { type Test } from 'tap';
import { parseConfig } from '../lib/config/load.js';
import { rows } from '../lib/config/schema.js';
import type { Config, ConfigResult } from '../lib/config/types.js';
import { fdLimitWarning, parseOpenFilesLimit } from '../lib/ops/fdlimit.js';
import {
  parsePid,
  pidFilePath,
  readPidFile,
  removePidFile,
  signalPidFile,
  writePidFile,
} from '../lib/ops/pidfile.js';
import { type Account, type Lookup, parseAccount, resolveIdentity } from '../lib/ops/privileges.js';
import { describeChanges, Reloader, type ReloadPart } from '../lib/ops/reload.js';
import { BIN } from './helpers/mux.js';
import { tempDir } from './helpers/programs.js';

function config(text: string, file = '/etc/sni-mux/mux.toml'): Config {
  const r = parseConfig(text, file);
  if (r.kind !== 'ok') throw new Error(JSON.stringify(r.errors));
  return r.config;
}

const BASE = `listen = ["127.0.0.1:443"]
[[route]]
name = "a"
sni = "a.example"
backend = "10.0.0.1:443"
[[route]]
name = "b"
backend = "10.0.0.2:443"
`;

t.test('parsePid reads one positive number and nothing else', async (t) => {
  t.equal(parsePid('1234\n'), 1234);
  t.equal(parsePid('  42  '), 42);
  for (const bad of ['', '0', '-1', '12a', '1 2', '99999999999', '0x10'])
    t.equal(parsePid(bad), undefined, bad);
});

t.test(
  'pid files: written atomically, removed only while they hold our pid, relative to the config',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'snimux-unit-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'x.pid');
    writePidFile(path, 4242);
    t.equal(readFileSync(path, 'utf8'), '4242\n');
    t.same(readPidFile(path), { kind: 'ok', pid: 4242 });
    t.equal(removePidFile(path, 1), undefined, 'not ours: left alone');
    t.same(readPidFile(path), { kind: 'ok', pid: 4242 });
    t.equal(removePidFile(path, 4242), undefined);
    t.match(readPidFile(path), { kind: 'error', code: 'ENOENT', message: /does not exist/ });
    t.throws(() => writePidFile(join(dir, 'no/such/dir.pid')), /cannot write pid_file .*ENOENT/);
    writeFileSync(path, 'garbage');
    t.match(signalPidFile(path, 'SIGHUP'), { kind: 'error', message: /does not hold a process id/ });
    writeFileSync(path, `${process.pid}\n`);
    t.match(
      signalPidFile(path, 'SIGHUP', () => 'nginx: master process'),
      { kind: 'error', message: /is not sni-mux but "nginx: master process"/ },
      'a pid reused by another program is not signalled',
    );
    const cfg = config(BASE.replace('[[route]]', 'pid_file = "run/x.pid"\n[[route]]'));
    t.equal(pidFilePath(cfg), '/etc/sni-mux/run/x.pid');
  },
);

const PASSWD = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
broken:x::1::/:/bin/false
`;
const GROUP = `root:x:0:
daemon:x:1:
snimux:x:998:alice,bob
nogroup:x:65534:
`;
const files: Lookup = (db, key) => parseAccount(db, db === 'passwd' ? PASSWD : GROUP, key);

t.test('parseAccount finds users and groups by name or number, skipping broken lines', async (t) => {
  t.same(parseAccount('passwd', PASSWD, 'nobody'), { name: 'nobody', id: 65534, gid: 65534 });
  t.same(parseAccount('passwd', PASSWD, '1'), { name: 'daemon', id: 1, gid: 1 });
  t.same(parseAccount('group', GROUP, 'snimux'), { name: 'snimux', id: 998, gid: 998 });
  t.same(parseAccount('group', GROUP, 'nogroup'), { name: 'nogroup', id: 65534, gid: 65534 }, 'no members');
  t.equal(parseAccount('passwd', PASSWD, 'broken'), undefined);
  t.equal(parseAccount('passwd', PASSWD, 'nobod'), undefined);
});

t.test('resolveIdentity: whom to become, or why not, before anything is bound', async (t) => {
  const root = { euid: 0, egid: 0 };
  const nobody: Account = { name: 'nobody', id: 65534, gid: 65534 };
  t.same(resolveIdentity({}, files, root), { kind: 'none' });
  t.same(resolveIdentity({ user: 'nobody' }, files, root), {
    kind: 'switch',
    identity: { user: nobody, group: { name: 'nogroup', id: 65534, gid: 65534 } },
  });
  t.match(resolveIdentity({ user: 'nobody', group: 'snimux' }, files, root), {
    kind: 'switch',
    identity: { group: { id: 998 } },
  });
  t.match(resolveIdentity({ user: 'ghost' }, files, root), {
    kind: 'error',
    message: /user "ghost" does not exist; create it \(useradd --system/,
  });
  t.match(resolveIdentity({ user: 'nobody', group: 'ghosts' }, files, root), {
    kind: 'error',
    message: /group "ghosts" does not exist/,
  });
  t.match(resolveIdentity({ user: 'daemon' }, files, { euid: 1000, egid: 1000 }), {
    kind: 'error',
    message: /user = "daemon" is set, but sni-mux runs as uid 1000, not root.*CAP_NET_BIND_SERVICE/,
  });
  t.match(
    resolveIdentity({ user: 'nobody' }, files, { euid: 65534, egid: 65534 }),
    { kind: 'already' },
    'already that user (systemd User=): nothing to do, no error',
  );
});

t.test('the open-file limit is compared with two descriptors per connection', async (t) => {
  const limits =
    'Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 524288               files     \n';
  t.equal(parseOpenFilesLimit(limits), 1024);
  t.equal(parseOpenFilesLimit('Max open files  unlimited  unlimited  files\n'), Number.POSITIVE_INFINITY);
  t.equal(parseOpenFilesLimit('nothing here'), undefined);
  t.match(
    fdLimitWarning({ maxConnections: 10_000 }, () => limits),
    {
      limit: 1024,
      needed: 20_100,
      message: /LimitNOFILE=.*or lower max_connections/,
    },
  );
  t.equal(
    fdLimitWarning({ maxConnections: 400 }, () => limits),
    undefined,
  );
  t.equal(
    fdLimitWarning({ maxConnections: 10 }, () => {
      throw new Error('ENOENT');
    }),
    undefined,
    'no /proc: no warning',
  );
});

t.test('describeChanges names what a reload changes', async (t) => {
  const prev = config(BASE);
  t.same(describeChanges(prev, prev), []);
  const next = config(
    BASE.replace('["127.0.0.1:443"]', '["127.0.0.1:443", "[::1]:443"]')
      .replace('10.0.0.2:443', '10.0.0.3:443')
      .replace('name = "a"', 'name = "c"')
      .replace(
        '[[route]]',
        '[timeouts]\ndetect = "2s"\n[limits]\nmax_connections = 5\n[log]\nlevel = "warn"\n[[route]]',
      ),
  );
  t.same(describeChanges(prev, next), [
    'listen + [::1]:443',
    'route + c',
    'route ~ b',
    'route - a',
    'timeouts.detect 5000ms → 2000ms',
    'limits.max_connections 8000 → 5',
    'log.level info → warn',
  ]);
  const swapped = config(`listen = ["127.0.0.1:443"]
[[route]]
name = "b"
backend = "10.0.0.2:443"
[[route]]
name = "a"
sni = "a.example"
backend = "10.0.0.1:443"
`);
  t.same(describeChanges(prev, swapped), ['route order']);
});

/** A Reloader around a fake mux whose reload can be made to fail, with a load that returns `results`. */
function harness(results: ConfigResult[], opts: { muxFails?: boolean } = {}) {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  let current = config(BASE);
  const applied: Config[] = [];
  const mux = {
    get config() {
      return current;
    },
    addresses: () => new Map(),
    reload: async (c: Config) => {
      if (opts.muxFails) throw new Error('cannot listen on 127.0.0.1:1: EACCES');
      current = c;
      applied.push(c);
    },
  };
  const counts = { success: 0, failure: 0 };
  const metrics = {
    reloadSucceeded: () => {
      counts.success++;
    },
    reloadFailed: () => {
      counts.failure++;
    },
  };
  let loads = 0;
  const load = async (): Promise<ConfigResult> => results[Math.min(loads++, results.length - 1)]!;
  return { lines, mux, applied, counts, metrics, log, load, loads: () => loads };
}

t.test('Reloader: a good config is applied and counted; a bad one is logged and counted', async (t) => {
  const next = parseConfig(BASE.replace('10.0.0.2', '10.0.0.9'), '/etc/sni-mux/mux.toml');
  const bad = parseConfig('listen = 1\n', '/etc/sni-mux/mux.toml');
  const h = harness([next, bad]);
  const r = new Reloader({ mux: h.mux, log: h.log, metrics: h.metrics, load: h.load });
  t.match(await r.reload(), { kind: 'reloaded', changes: ['route ~ b'] });
  t.match(await r.reload(), { kind: 'failed', errors: [/no routes/, /listen: 1 is only a port/] });
  t.same(h.counts, { success: 1, failure: 1 });
  t.equal(h.applied.length, 1, 'the bad one never reached the mux');
  t.match(h.lines.at(-1), { msg: 'reload failed: keeping the old config', errors: [/no routes/, /listen/] });
});

t.test('Reloader: signals while one waits join it; after stop() reloads are ignored', async (t) => {
  const next = parseConfig(BASE, '/etc/sni-mux/mux.toml');
  const h = harness([next]);
  const gates: (() => void)[] = [];
  // Each read of the file waits until the test lets it finish: the first is in progress meanwhile.
  const load = (): Promise<ConfigResult> => {
    void h.load();
    return new Promise((resolve) => gates.push(() => resolve(next)));
  };
  const r = new Reloader({ mux: h.mux, log: h.log, load });
  const first = r.reload();
  await new Promise(setImmediate);
  t.equal(h.loads(), 1, 'the first is reading the file');
  const second = r.reload();
  const third = r.reload();
  t.equal(second, third, 'the 2nd and 3rd wait as one');
  gates.shift()!();
  await first;
  await new Promise(setImmediate);
  gates.shift()!();
  await Promise.all([second, third]);
  t.equal(h.loads(), 2, 'the file was read twice for three signals');
  r.stop();
  t.match(await r.reload(), { kind: 'ignored', reason: 'shutting down' });
  t.equal(h.loads(), 2);
});

t.test(
  'Reloader: parts are prepared first, committed after the mux, rolled back if anything fails',
  async (t) => {
    const next = parseConfig(BASE, '/etc/sni-mux/mux.toml');
    const events: string[] = [];
    const part = (name: string, fail = false): ReloadPart => ({
      name,
      prepare: async () => {
        events.push(`prepare ${name}`);
        if (fail) throw new Error('cannot listen on admin address 127.0.0.1:9: EADDRINUSE');
        return {
          commit: () => void events.push(`commit ${name}`),
          rollback: () => void events.push(`rollback ${name}`),
        };
      },
    });
    const ok = harness([next]);
    await new Reloader({ mux: ok.mux, log: ok.log, load: ok.load, parts: [part('x')] }).reload();
    t.same(events, ['prepare x', 'commit x']);

    events.length = 0;
    const muxFails = harness([next], { muxFails: true });
    const r1 = await new Reloader({
      mux: muxFails.mux,
      log: muxFails.log,
      load: muxFails.load,
      parts: [part('x')],
    }).reload();
    t.same(events, ['prepare x', 'rollback x'], 'the mux could not bind: the part is undone');
    t.match(r1, { kind: 'failed', errors: [/EACCES/] });

    events.length = 0;
    const partFails = harness([next]);
    const r2 = await new Reloader({
      mux: partFails.mux,
      log: partFails.log,
      load: partFails.load,
      parts: [part('x'), part('admin', true)],
    }).reload();
    t.same(events, ['prepare x', 'prepare admin', 'rollback x']);
    t.match(r2, { kind: 'failed', errors: [/^admin: cannot listen on admin address/] });
    t.equal(partFails.applied.length, 0, 'the mux was not switched');
  },
);

/** Starts sni-mux under `ulimit -n n` (soft and hard) and returns its log lines up to "sni-mux started". */
async function startLines(t: Test, n: number, toml: string): Promise<{ msg: string; level: number }[]> {
  const dir = tempDir(t, 'fds');
  const file = join(dir, 'mux.toml');
  writeFileSync(file, toml);
  const proc = spawn(
    '/bin/sh',
    ['-c', `ulimit -n ${n} && exec "$0" "$1" --config "$2"`, process.execPath, BIN, file],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines: { msg: string; level: number }[] = [];
  for await (const text of createInterface({ input: proc.stdout })) {
    const line = JSON.parse(text) as { msg: string; level: number };
    lines.push(line);
    if (line.msg === 'sni-mux started' || line.level >= 60) break;
  }
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
  return lines;
}

const hardNofile = Number(
  /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0,
);

t.test(
  'a default start under ulimit -n 20000 warns of no open-file shortfall; 4096 does',
  {
    skip:
      hardNofile < 20_000 &&
      `the hard open-file limit here is ${hardNofile}; lowering it to 20000 needs at least that`,
  },
  async (t) => {
    const toml = `listen = ["127.0.0.1:0"]\n[log]\nformat = "json"\n[[route]]\nname = "a"\nbackend = "127.0.0.1:9"\n`;
    const at20000 = await startLines(t, 20_000, toml);
    t.equal(at20000.at(-1)?.msg, 'sni-mux started');
    t.same(
      at20000.filter((l) => l.level >= 40),
      [],
      'no warning with the default max_connections',
    );
    const at4096 = await startLines(t, 4096, toml);
    t.match(
      at4096.find((l) => l.level === 40),
      { limit: 4096, needed: 16_100, msg: /^open-file limit 4096 is below the 16100/ },
      'a limit that cannot hold the default still warns',
    );
  },
);

t.test(
  'Reloader: a changed restart-only key is applied at the next start and warned about, once each',
  async (t) => {
    const restartOnly = [...rows()].filter((r) => r.spec.restart === true).map((r) => r.name);
    t.same(
      restartOnly,
      ['user', 'group', 'pid_file', 'data_plane', 'workers', 'log.format'],
      'the rows marked restart-only',
    );
    const text = BASE.replace(
      '[[route]]',
      'user = "snimux"\ngroup = "snimux"\npid_file = "/run/sni-mux.pid"\ndata_plane = "js"\nworkers = 2\n[log]\nformat = "json"\n[[route]]',
    );
    const next = parseConfig(text, '/etc/sni-mux/mux.toml');
    const h = harness([next]);
    const r = new Reloader({ mux: h.mux, log: h.log, load: h.load });
    t.match(await r.reload(), { kind: 'reloaded', changes: [] }, 'the reload goes through');
    t.same(
      h.lines.filter((l) => l.level === 40).map((l) => [l.key, l.msg]),
      restartOnly.map((key) => [
        key,
        `${key} changed: it takes effect when sni-mux is restarted, not on reload`,
      ]),
    );
    h.lines.length = 0;
    t.match(await r.reload(), { kind: 'reloaded', changes: [] });
    t.same(
      h.lines.filter((l) => l.level === 40),
      [],
      'reloading the same file again warns of nothing',
    );
  },
);

t.test('describeChanges: a route whose listen or health_check changed is a changed route', async (t) => {
  const prev = config(BASE);
  const scoped = config(BASE.replace('name = "b"', 'name = "b"\nlisten = "127.0.0.1:443"'));
  t.same(describeChanges(prev, scoped), ['route ~ b']);
  const checked = config(BASE.replace('name = "b"', 'name = "b"\nhealth_check = "connect"'));
  t.same(describeChanges(prev, checked), ['route ~ b']);
});
