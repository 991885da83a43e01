// Shared pieces of the property tests: the run count, real first bytes and their mutations, and property().
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { Test } from 'tap';

/** Runs per property: enough to reach the parsers' deep paths, a few seconds each. */
export const RUNS = 10_000;

/** Real first bytes of every protocol, TLS ClientHellos included (test/fixtures). */
export const seeds: readonly Uint8Array[] = ['../fixtures/first-bytes/', '../fixtures/clienthello/'].flatMap(
  (d) => {
    const dir = new URL(d, import.meta.url);
    return readdirSync(dir)
      .filter((f) => f.endsWith('.bin'))
      .map((f) => new Uint8Array(readFileSync(new URL(f, dir))));
  },
);

/** A real capture, cut, with one byte changed and random bytes appended: reaches the probes' deep paths. */
export const mutated: fc.Arbitrary<Uint8Array> = fc
  .record({
    seed: fc.constantFrom(...seeds),
    cut: fc.nat(),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
    mutate: fc.boolean(),
    tail: fc.uint8Array({ maxLength: 16, size: 'max' }),
  })
  .map(({ seed, cut, at, value, mutate, tail }) => {
    const b = seed.slice(0, cut % (seed.length + 1));
    if (mutate && b.length > 0) b[at % b.length] = value;
    const out = new Uint8Array(b.length + tail.length);
    out.set(b);
    out.set(tail, b.length);
    return out;
  });

/**
 * A fast-check property as one tap assertion named `what`: it passes after every run held, or fails
 * with fast-check's report (the shrunk counterexample and the seed to replay it).
 */
export function property<Ts>(
  t: Test,
  what: string,
  prop: fc.IRawProperty<Ts>,
  params: fc.Parameters<Ts> = {},
): void {
  const r = fc.check(prop, { numRuns: RUNS, ...params }) as fc.RunDetails<Ts>;
  if (r.failed) t.fail(what, { report: fc.defaultReportMessage(r) });
  else t.pass(`${what} (${r.numRuns} runs)`);
}
