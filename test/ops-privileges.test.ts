// Dropping root after binding: the running process is the configured user; a user that cannot be had stops the start.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { exchange } from './helpers/clients.js';
import { BIN, startMux } from './helpers/mux.js';
import { rewriteAndReload } from './helpers/ops.js';
import { startRecorder } from './helpers/servers.js';

const isRoot = process.getuid?.() === 0;
const NOT_ROOT = 'needs root (CI runs as root): switching users is only possible from root';

/** The Uid:, Gid: and Groups: lines of /proc/PID/status, as numbers. */
function ids(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number[] =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

/** Runs sni-mux to its exit (it is expected to refuse to start); its output and exit code. */
function runToExit(
  config: string,
  opts: { uid?: number; gid?: number } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p: ChildProcess = spawn(process.execPath, [BIN, '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    let out = '';
    p.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    p.stderr!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    p.on('close', (code) => resolve({ code, out }));
  });
}

/** A config file any user can read, in a folder any user can enter. */
function publicConfig(t: Test, toml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'snimux-priv-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const file = join(dir, 'mux.toml');
  writeFileSync(file, toml, { mode: 0o644 });
  return file;
}

t.test(
  'run as root with user/group: after start the process is that user, and still relays',
  { skip: !isRoot && NOT_ROOT },
  async (t) => {
    const a = await startRecorder(t, 'a');
    const b = await startRecorder(t, 'b');
    const toml = (backend: number): string => `listen = ["127.0.0.1:0"]
user = "nobody"
group = "nogroup"
[[route]]
name = "any"
backend = "127.0.0.1:${backend}"
`;
    const mux = await startMux(t, toml(a.port));
    const got = ids(mux.pid);
    t.same(got.uid, [65534, 65534, 65534, 65534], 'real, effective, saved and fs uid are nobody');
    t.same(got.gid, [65534, 65534, 65534, 65534], 'all gids are nogroup');
    t.notOk(
      got.groups.includes(0),
      `no root group left among the supplementary groups (${got.groups.join(' ')})`,
    );
    t.match(
      mux.logs.find((l) => l.msg === 'dropped privileges'),
      { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 },
    );
    const ex = await exchange(mux.port, Buffer.from('\xffhi', 'latin1'));
    t.match(ex.reply.toString(), /^a 3 /, 'relays as nobody');

    // The config must be readable by the new user for a reload: make it so, as an operator would.
    chmodSync(dirname(mux.configFile), 0o755);
    chmodSync(mux.configFile, 0o644);
    rewriteAndReload(mux, toml(b.port));
    await mux.waitForLog((l) => l.msg === 'config reloaded');
    t.match(
      (await exchange(mux.port, Buffer.from('\xffhi', 'latin1'))).reply.toString(),
      /^b 3 /,
      'reloads as nobody',
    );

    // A new port below 1024 cannot be bound without root: the reload fails, says why, changes nothing.
    rewriteAndReload(
      mux,
      toml(a.port).replace('listen = ["127.0.0.1:0"]', 'listen = ["127.0.0.1:0", "127.0.0.1:1023"]'),
    );
    const failed = await mux.waitForLog((l) => l.msg === 'reload failed: keeping the old config');
    t.match((failed.errors as string[])[0], /127\.0\.0\.1:1023: EACCES.*CAP_NET_BIND_SERVICE/);
    t.match(
      (await exchange(mux.port, Buffer.from('\xffhi', 'latin1'))).reply.toString(),
      /^b 3 /,
      'unchanged',
    );
  },
);

t.test('a user that does not exist stops the start, before anything is bound', async (t) => {
  const file = publicConfig(
    t,
    `listen = ["127.0.0.1:0"]
user = "no-such-user-snimux"
[[route]]
name = "any"
backend = "127.0.0.1:1"
`,
  );
  const r = await runToExit(file);
  t.equal(r.code, 1);
  t.match(r.out, /cannot start: user \\"no-such-user-snimux\\" does not exist; create it \(useradd/);
  t.notMatch(r.out, /sni-mux started/);
});

// As root the test runs sni-mux as nobody, which needs every folder above dist/ to be world-readable.
const asNobody =
  isRoot && spawnSync(process.execPath, [BIN, '--version'], { uid: 65534, gid: 65534 }).status !== 0
    ? `nobody cannot run ${BIN}: a folder above it is not world-readable`
    : false;

t.test(
  'not root but a user is set: refuses to start and says what to do instead',
  { skip: asNobody },
  async (t) => {
    const file = publicConfig(
      t,
      `listen = ["127.0.0.1:0"]
user = "daemon"
[[route]]
name = "any"
backend = "127.0.0.1:1"
`,
    );
    // As root, start it as nobody to be the unprivileged user; otherwise it already is one.
    const r = await runToExit(file, isRoot ? { uid: 65534, gid: 65534 } : {});
    t.equal(r.code, 1);
    t.match(r.out, /user = \\"daemon\\" is set, but sni-mux runs as uid \d+, not root.*CAP_NET_BIND_SERVICE/);
  },
);
