// The sni-mux command line as a new user meets it: the README's sample output, and a config file given without --config.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { BIN } from './helpers/mux.js';
import { tempDir } from './helpers/programs.js';

const exec = promisify(execFile);

/** Runs sni-mux in `cwd` and returns its exit code and output, whatever the code. */
async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { cwd });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

t.test(
  "the README's sample check error is what check prints for its example with the vpn port left out",
  async (t) => {
    const example = /## Configuration[\s\S]*?```toml\n([\s\S]*?)```/.exec(README)?.[1];
    const sample = /npx sni-mux check --config mux\.toml\n```\n```\n([\s\S]*?)```/.exec(README)?.[1];
    if (example === undefined || sample === undefined) throw new Error('README sections not found');
    const dir = tempDir(t, 'cli');
    const broken = example.replace('backend = "192.168.0.130:1194"', 'backend = "192.168.0.130"');
    t.not(broken, example, 'the vpn backend is where the README says');
    writeFileSync(join(dir, 'mux.toml'), broken);
    const r = await cli(['check', '--config', 'mux.toml'], dir);
    t.equal(r.code, 1);
    t.equal(r.stderr, sample);

    writeFileSync(join(dir, 'mux.toml'), example);
    const ok = await cli(['check', '--config', 'mux.toml'], dir);
    t.equal(ok.code, 0, 'and the example itself is fine');
  },
);

t.test('a config file given without --config: the fix is suggested', async (t) => {
  const dir = tempDir(t, 'cli');
  const check = await cli(['check', 'mux.toml'], dir);
  t.equal(check.code, 2);
  t.match(
    check.stderr,
    /^sni-mux: the config file comes after --config: did you mean `sni-mux check --config mux\.toml`\?\n/,
  );
  const reload = await cli(['reload', '/etc/sni-mux/mux.toml'], dir);
  t.match(reload.stderr, /did you mean `sni-mux reload --config \/etc\/sni-mux\/mux\.toml`\?/);
  const explain = await cli(['explain', 'mux.toml', '--sni', 'a.test'], dir);
  t.match(explain.stderr, /did you mean `sni-mux explain --config mux\.toml`\?/);
  const runIt = await cli(['mux.toml'], dir);
  t.match(runIt.stderr, /did you mean `sni-mux --config mux\.toml`\?/);
  const unknown = await cli(['frobnicate'], dir);
  t.match(unknown.stderr, /^sni-mux: unknown command "frobnicate"/, 'other words are still unknown commands');
});
