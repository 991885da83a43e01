// Packaging checks: the systemd unit passes systemd-analyze, the Dockerfile follows hadolint's rules and its runtime layout runs.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import t from 'tap';

const ROOT = new URL('..', import.meta.url).pathname;
/** The oldest Node major package.json's engines allows (">=22" -> 22); the Docker image must not be older. */
const minNode = Number(
  /\d+/.exec(
    (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines
      .node,
  )?.[0],
);
const UNIT = join(ROOT, 'contrib/sni-mux.service');
const BIN = join(ROOT, 'dist/bin/sni-mux.js');

function which(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/bin']) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The unit's [Service] settings; a key given twice keeps every value. */
function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]') {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return out;
}

const analyze = which('systemd-analyze');

t.test(
  'systemd-analyze verify passes on contrib/sni-mux.service',
  { skip: analyze === undefined && 'systemd-analyze not installed (Debian package systemd)' },
  async (t) => {
    // verify wants every Exec path to exist: point them at a wrapper around this checkout's build.
    const dir = mkdtempSync(join(tmpdir(), 'snimux-unit-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const wrapper = join(dir, 'sni-mux');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`, { mode: 0o755 });
    const unit = join(dir, 'sni-mux.service');
    writeFileSync(unit, readFileSync(UNIT, 'utf8').replaceAll('/usr/local/bin/sni-mux', wrapper));
    const r = spawnSync(analyze!, ['verify', '--man=no', unit], { encoding: 'utf8' });
    t.equal(r.status, 0, 'exit status 0');
    t.equal(r.stderr.trim(), '', 'no warning, not even an unknown key');

    const exposure = spawnSync(analyze!, ['security', '--offline=true', '--no-pager', unit], {
      encoding: 'utf8',
    });
    const score = /Overall exposure level for sni-mux\.service: ([\d.]+)/.exec(exposure.stdout)?.[1];
    if (score !== undefined) {
      t.ok(Number(score) <= 2, `systemd-analyze security: exposure ${score} of 10 (2 or less is "OK")`);
    }
  },
);

t.test('the unit reloads with SIGHUP, drains on stop and runs sandboxed without root', async (t) => {
  const s = unitSettings(readFileSync(UNIT, 'utf8'));
  t.match(s.get('Type'), [/^(simple|notify|exec)$/]);
  t.same(s.get('ExecReload')?.at(-1), '/bin/kill -HUP $MAINPID', 'reload is SIGHUP to the main process');
  t.match(s.get('ExecReload')?.[0], /sni-mux check --config/, 'after checking the config');
  t.match(s.get('ExecStart'), [/sni-mux --config \/etc\/sni-mux\/mux\.toml$/]);
  const stop = Number(/^(\d+)s$/.exec(s.get('TimeoutStopSec')?.[0] ?? '')?.[1]);
  t.ok(stop > 30, `TimeoutStopSec (${stop}s) outlasts the default drain of 30s`);
  for (const [key, value] of [
    ['ProtectSystem', 'strict'],
    ['NoNewPrivileges', 'yes'],
    ['PrivateTmp', 'yes'],
    ['CapabilityBoundingSet', 'CAP_NET_BIND_SERVICE'],
    ['AmbientCapabilities', 'CAP_NET_BIND_SERVICE'],
  ]) {
    t.same(s.get(key!), [value], `${key}=${value}`);
  }
  t.ok(s.get('DynamicUser')?.[0] === 'yes' || s.has('User'), 'runs as a user of its own, not root');
  t.notOk(s.has('MemoryDenyWriteExecute'), 'no MemoryDenyWriteExecute: it breaks the V8 JIT');
});

/** A Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { line: number; op: string; args: string }[] {
  const out: { line: number; op: string; args: string }[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = i + 1;
    pending += `${line.replace(/\\$/, '')} `;
    if (line.endsWith('\\')) return;
    const [op, ...rest] = pending.trim().split(/\s+/);
    out.push({ line: start, op: op!.toUpperCase(), args: rest.join(' ') });
    pending = '';
  });
  return out;
}

/** True if .dockerignore leaves `path` (relative to the context) out: plain names and "*.ext" patterns. */
function ignored(path: string, patterns: string[]): boolean {
  const top = path.split('/')[0]!;
  return patterns.some((p) => p === top || p === path || (p.startsWith('*.') && path.endsWith(p.slice(1))));
}

t.test("the Dockerfile follows hadolint's rules that apply and copies only what exists", async (t) => {
  const ins = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const froms = ins.filter((i) => i.op === 'FROM');
  t.ok(froms.length >= 2, 'multi-stage');
  const stages: string[] = [];
  for (const f of froms) {
    const [image, as, name] = f.args.split(/\s+/);
    t.match(image, /^node:(\d+)-slim$/, `line ${f.line}: a node:*-slim base, tagged (DL3006, DL3007)`);
    t.ok(
      Number(/^node:(\d+)/.exec(image!)?.[1]) >= minNode,
      `Node ${minNode} or later, as package.json engines says`,
    );
    if (as?.toUpperCase() === 'AS') stages.push(name!);
  }
  const finalStart = ins.indexOf(froms.at(-1)!);
  const final = ins.slice(finalStart);
  const user = final.filter((i) => i.op === 'USER').at(-1);
  t.ok(user !== undefined && !/^(root|0)(:|$)/.test(user.args), `runs as ${user?.args}, not root (DL3002)`);
  for (const op of ['ENTRYPOINT', 'CMD']) {
    const i = final.find((x) => x.op === op);
    t.doesNotThrow(() => JSON.parse(i!.args), `${op} in JSON form (DL3025)`);
  }
  t.same(
    ins.filter((i) => i.op === 'ADD'),
    [],
    'COPY, not ADD (DL3020)',
  );
  t.same(
    ins.filter((i) => i.op === 'RUN' && /(^|&&|;)\s*cd\s/.test(i.args)),
    [],
    'WORKDIR, not cd (DL3003)',
  );
  const runs = ins.filter((i) => i.op === 'RUN').map((i) => i.args);
  t.ok(
    runs.some((r) => /npm ci\b/.test(r)),
    'installs from the lock file (npm ci)',
  );
  t.ok(
    runs.some((r) => /npm (prune|ci) [^&]*--omit=dev/.test(r)),
    'drops dev dependencies',
  );
  for (const c of ins.filter((i) => i.op === 'COPY')) {
    const parts = c.args.split(/\s+/);
    const from = parts.find((p) => p.startsWith('--from='));
    const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
    if (from !== undefined) {
      t.ok(stages.includes(from.slice(7)), `line ${c.line}: --from names an earlier stage`);
      continue;
    }
    for (const src of sources) {
      t.ok(existsSync(join(ROOT, src)), `line ${c.line}: ${src} exists`);
      t.notOk(ignored(src, ignore), `line ${c.line}: ${src} is not excluded by .dockerignore`);
    }
  }
  for (const must of ['node_modules', 'dist', '.git'])
    t.ok(ignored(must, ignore), `.dockerignore leaves out ${must}`);
  const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  t.same(entry.slice(0, 2), ['node', '/app/dist/bin/sni-mux.js']);
});

t.test('the image layout runs: dist/, package.json and production dependencies only', async (t) => {
  // What the runtime stage holds, rebuilt here: a dev dependency imported at run time would fail.
  const app = mkdtempSync(join(tmpdir(), 'snimux-image-'));
  t.teardown(() => rmSync(app, { recursive: true, force: true }));
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  // npm ls exits 1 over an extraneous or missing package elsewhere in the tree; its list is still right.
  const prod = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' })
    .stdout.split('\n')
    .map((p) => relative(join(ROOT, 'node_modules'), p))
    .filter((p) => p !== '' && !p.startsWith('..') && !p.includes('node_modules'));
  t.ok(prod.includes('pino') && !prod.includes('tap'), `${prod.length} production packages`);
  for (const p of prod) {
    mkdirSync(join(app, 'node_modules', dirname(p)), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', p), join(app, 'node_modules', p));
  }
  const run = (args: string[]) =>
    spawnSync(process.execPath, [join(app, 'dist/bin/sni-mux.js'), ...args], { encoding: 'utf8', cwd: app });
  const version = run(['--version']);
  t.equal(version.status, 0, version.stderr);
  t.match(version.stdout, /^sni-mux \d+\.\d+\.\d+/);
  const check = run(['check', '--config', join(ROOT, 'examples/mux.toml')]);
  t.equal(check.status, 0, check.stderr);
  t.match(check.stdout, /mux\.toml: OK/);
});

t.test('the unit says how to install sni-mux, which is not on the npm registry', async (t) => {
  const unit = readFileSync(UNIT, 'utf8');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  t.notMatch(unit, /npm install -g sni-mux\b(?!-)/, 'not a registry install');
  t.ok(
    unit.includes(`npm install -g ./${pkg.name}-${pkg.version}.tgz`),
    'the tarball npm pack makes, by its real name',
  );
  t.match(unit, /prepare: npm run build/, 'and the install-scripts warning npm 11 prints for it');
});
