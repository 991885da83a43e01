// Times a function in a tight loop for the micro benchmarks: warm-up, then the best of 5 rounds in ns per call.

/** A sink the optimiser cannot see through, so measured calls are not dead code. */
export const sink = { n: 0 };

export function nsPerCall(fn: () => number, iterations: number): number {
  for (let i = 0; i < iterations; i++) sink.n += fn(); // warm up into optimised code
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink.n += fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / iterations);
  }
  return best;
}

/** Prints human lines, and with --json one JSON object of every figure for benchmarks/run.ts. */
export function report(results: Record<string, number>): void {
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(results));
    return;
  }
  for (const [name, ns] of Object.entries(results)) console.log(`${name}: ${ns.toFixed(0)} ns`);
}
