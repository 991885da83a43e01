// Coverage-guided mutational fuzzer for the parsers: keeps inputs that reach new blocks, saves any that break a check.
//
//   npm run fuzz -- <target|all> [--minutes N] [--runs N] [--seed N] [--minimize]
//
// Not part of CI (test/fuzz-regressions.test.ts replays what it found). See test/fuzz/README.md.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Coverage } from './coverage.js';
import { mutate, Rng } from './mutate.js';
import { type FuzzTarget, starts } from './target.js';

const HERE = new URL('./', import.meta.url);
/** A pure parser taking this long on one input is a finding too: a stranger could make it spin. */
const SLOW_MS = 50;

export interface FuzzReport {
  target: string;
  execs: number;
  seconds: number;
  corpus: number;
  added: number;
  features: number;
  crashes: number;
  slow: number;
  /** Slowest single execution, ms (coverage collection excluded). */
  maxMs: number;
}

export function corpusDir(target: string): URL {
  return new URL(`corpus/${target}/`, HERE);
}

/** What fuzz runs add, git-ignored: `--minimize` folds it into corpus/. */
export function workDir(target: string): URL {
  return new URL(`work/${target}/`, HERE);
}

export function crashDir(target: string): URL {
  return new URL(`crashes/${target}/`, HERE);
}

function readEntries(dir: URL): { name: string; data: Uint8Array }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, data: new Uint8Array(readFileSync(new URL(name, dir))) }));
}

function save(dir: URL, data: Uint8Array, prefix = ''): string {
  mkdirSync(dir, { recursive: true });
  const name = prefix + createHash('sha1').update(data).digest('hex').slice(0, 16);
  writeFileSync(new URL(name, dir), data);
  return name;
}

/**
 * Runs one target until the time or run budget is spent. `cov` must have been started before the
 * target's modules were imported: V8 only counts blocks in functions compiled after that.
 */
export function fuzz(
  target: FuzzTarget,
  cov: Coverage,
  opts: { ms: number; runs: number; seed: number; current?: string },
): FuzzReport {
  const rng = new Rng(opts.seed);
  const corpus: Uint8Array[] = [];
  const crashKinds = new Set<string>();
  let crashes = 0;
  let slow = 0;
  let added = 0;
  let maxMs = 0;
  let execs = 0;

  /** Runs one input; returns the number of new coverage features, or -1 if it broke a check. */
  const run = (data: Uint8Array): number => {
    // A hang cannot be caught here: the parent kills this process and saves what this file holds.
    if (opts.current !== undefined) writeFileSync(opts.current, data);
    const t0 = performance.now();
    try {
      target.check(data);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const kind = `${e.name}: ${e.message.replace(/\d+/g, 'N')}`;
      crashes++;
      if (!crashKinds.has(kind)) {
        crashKinds.add(kind);
        const name = save(crashDir(target.name), data);
        console.log(`[${target.name}] FINDING ${name}: ${e.stack ?? e.message}`);
      }
      return -1;
    } finally {
      execs++;
      const ms = performance.now() - t0;
      if (ms > maxMs) maxMs = ms;
      // A GC pause or a JIT tier-up also takes that long once: only an input slow every time counts.
      if (ms > SLOW_MS && slowEveryTime(target, data)) {
        slow++;
        const name = save(crashDir(target.name), data, 'slow-');
        console.log(`[${target.name}] SLOW ${name}: ${ms.toFixed(1)} ms for ${data.length} bytes`);
      }
    }
    return cov.collect();
  };

  cov.reset();
  const dir = workDir(target.name);
  const stored = [...readEntries(corpusDir(target.name)), ...readEntries(dir)].map((e) => e.data);
  for (const data of [...stored, ...starts(target)]) {
    const d = data.length > target.maxLen ? data.subarray(0, target.maxLen) : data;
    if (run(d) > 0 || stored.includes(data)) corpus.push(d);
  }
  if (corpus.length === 0) corpus.push(new Uint8Array(0));

  const start = performance.now();
  let lastReport = start;
  while (execs < opts.runs && performance.now() - start < opts.ms) {
    // Favour recent finds: they sit at the frontier of what has been reached.
    const i =
      rng.below(2) === 0
        ? corpus.length - 1 - rng.below(Math.min(corpus.length, 64))
        : rng.below(corpus.length);
    const input = mutate(corpus[i]!, rng.pick(corpus), target.dictionary, target.maxLen, rng);
    if (run(input) > 0) {
      corpus.push(input);
      save(dir, input);
      added++;
    }
    const now = performance.now();
    if (now - lastReport > 60_000) {
      lastReport = now;
      console.log(
        `[${target.name}] ${Math.round((now - start) / 1000)}s execs=${execs} corpus=${corpus.length} features=${cov.features} crashes=${crashes}`,
      );
    }
  }
  return {
    target: target.name,
    execs,
    seconds: Math.round((performance.now() - start) / 1000),
    corpus: corpus.length,
    added,
    features: cov.features,
    crashes,
    slow,
    maxMs: Math.round(maxMs * 10) / 10,
  };
}

/**
 * Shrinks a target's corpus to the fewest inputs that, with the seeds and generated inputs, still run every part of lib/ the
 * whole corpus ran (plain block coverage, what a coverage report counts): a greedy set cover, the
 * input adding most first, shorter on ties. Takes the stored corpus and what fuzz runs added in
 * `work/`, writes the result to `corpus/` and empties `work/`. Returns [before, after].
 */
export function minimize(target: FuzzTarget, cov: Coverage): [number, number] {
  const files = [...readEntries(corpusDir(target.name)), ...readEntries(workDir(target.name))];
  const ran = (data: Uint8Array): Map<string, [number, number][]> => {
    try {
      target.check(data);
    } catch {
      // A corpus entry that breaks a check is a finding: keep what it reaches, the regression test will say so.
    }
    return cov.covered();
  };
  cov.covered();
  const seedRuns = starts(target).map(ran);
  const runs = files.map((f) => ran(f.data));
  const ids = new ElementaryIntervals([...seedRuns, ...runs]);
  const done = new Uint8Array(ids.size);
  for (const r of seedRuns) for (const id of ids.of(r)) done[id] = 1;
  const gain = (set: Int32Array): number => set.reduce((n, id) => n + (done[id] === 0 ? 1 : 0), 0);
  // Lazy greedy: a gain only shrinks as more is covered, so a stale gain is an upper bound.
  const pending = runs.map((r, i) => {
    const set = ids.of(r);
    return { i, set, gain: gain(set) };
  });
  const chosen = new Set<number>();
  const better = (a: (typeof pending)[0], b: (typeof pending)[0]): number =>
    b.gain - a.gain || files[a.i]!.data.length - files[b.i]!.data.length || a.i - b.i;
  pending.sort(better);
  while (pending.length > 0 && pending[0]!.gain > 0) {
    const top = pending[0]!;
    top.gain = gain(top.set);
    if (pending.length > 1 && better(top, pending[1]!) > 0) {
      pending.sort(better);
      continue;
    }
    if (top.gain === 0) break;
    for (const id of top.set) done[id] = 1;
    chosen.add(top.i);
    pending.shift();
  }
  rmSync(corpusDir(target.name), { recursive: true, force: true });
  rmSync(workDir(target.name), { recursive: true, force: true });
  for (const i of chosen) save(corpusDir(target.name), files[i]!.data);
  return [files.length, chosen.size];
}

/**
 * Numbers the pieces source offsets fall into once every covered segment's ends are cut points, so
 * "what an input ran" becomes a set of small integers that can be unioned and counted.
 */
class ElementaryIntervals {
  private readonly cuts = new Map<string, { base: number; points: number[] }>();
  readonly size: number;

  constructor(runs: readonly Map<string, [number, number][]>[]) {
    const points = new Map<string, Set<number>>();
    for (const run of runs)
      for (const [url, segments] of run) {
        const p = points.get(url) ?? new Set<number>();
        for (const [s, e] of segments) p.add(s).add(e);
        points.set(url, p);
      }
    let base = 0;
    for (const [url, p] of points) {
      const sorted = [...p].sort((a, b) => a - b);
      this.cuts.set(url, { base, points: sorted });
      base += sorted.length;
    }
    this.size = base;
  }

  of(run: Map<string, [number, number][]>): Int32Array {
    const out: number[] = [];
    for (const [url, segments] of run) {
      const { base, points } = this.cuts.get(url)!;
      for (const [s, e] of segments) {
        for (let k = lowerBound(points, s); points[k]! < e; k++) out.push(base + k);
      }
    }
    return Int32Array.from(out);
  }
}

function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function slowEveryTime(target: FuzzTarget, data: Uint8Array): boolean {
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    try {
      target.check(data);
    } catch {
      // Reported by the first run.
    }
    if (performance.now() - t0 <= SLOW_MS) return false;
  }
  return true;
}

/** Where a child writes the input it is running, so a hang can be saved by its parent. */
function currentFile(target: string): string {
  return join(tmpdir(), `snimux-fuzz-${target}.current`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      minutes: { type: 'string', default: '5' },
      runs: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
      seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
      list: { type: 'boolean', default: false },
      minimize: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
    },
  });
  // Coverage first, then the code under test: see fuzz().
  const cov = values.child ? new Coverage('/lib/') : undefined;
  const { TARGETS } = await import('./targets/index.js');
  if (values.list || positionals.length === 0) {
    for (const t of TARGETS) console.log(`${t.name.padEnd(12)} ${t.about}`);
    return;
  }
  if (cov === undefined) {
    // One child process per target: coverage stopped and restarted in one process misses code already
    // compiled. The parent is also the watchdog: a child still running a minute past its time is hung.
    const names = positionals[0] === 'all' ? TARGETS.map((t) => t.name) : positionals;
    for (const name of names) {
      const args = [...process.execArgv, process.argv[1]!, name, '--child'];
      args.push('--minutes', values.minutes, '--runs', values.runs, '--seed', values.seed);
      if (values.minimize) args.push('--minimize');
      const timeout = Number(values.minutes) * 60_000 + 60_000;
      const r = spawnSync(process.execPath, args, { stdio: 'inherit', timeout, killSignal: 'SIGKILL' });
      if (r.error !== undefined || r.signal !== null) {
        const current = currentFile(name);
        const saved = existsSync(current) ? save(crashDir(name), readFileSync(current), 'hang-') : 'nothing';
        console.log(`[${name}] HANG: killed after ${timeout / 1000} s; the input it was running: ${saved}`);
        process.exitCode = 1;
      } else if (r.status !== 0) process.exitCode = r.status ?? 1;
    }
    return;
  }
  const name = positionals[0]!;
  const target = TARGETS.find((t) => t.name === name);
  if (target === undefined) {
    console.error(`unknown target ${name}; try --list`);
    process.exitCode = 2;
    return;
  }
  if (values.minimize) {
    const [before, after] = minimize(target, cov);
    cov.stop();
    console.log(`[${name}] corpus minimized: ${before} → ${after} inputs`);
    return;
  }
  const seed = Number(values.seed);
  console.log(`[${name}] seed=${seed} for ${values.minutes} min`);
  const opts = {
    ms: Number(values.minutes) * 60_000,
    runs: Number(values.runs),
    seed,
    current: currentFile(name),
  };
  const report = fuzz(target, cov, opts);
  cov.stop();
  console.log(JSON.stringify(report));
  if (report.crashes > 0) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
