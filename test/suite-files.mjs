// The suite's test files and which of them start a mux: one rule for test/run-planes.mjs (those run
// again on the native plane) and test/coverage.mjs (the others, pure code, are the ones measured).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const root = join(import.meta.dirname, '..');

const MUX = /helpers\/mux|startMux|dist\/bin\//;
const read = (file) => readFileSync(join(root, file), 'utf8');

/** Every test file, relative to the repository root. */
export function testFiles() {
  return ['test', 'test/interop']
    .flatMap((d) => readdirSync(join(root, d)).map((f) => `${d}/${f}`))
    .filter((f) => f.endsWith('.test.ts'));
}

/**
 * Whether a test file starts a mux: through the helper or the built CLI, itself or in a module of its
 * own that it imports (test/soak.test.ts runs test/soak/soak.ts).
 */
export function startsMux(file) {
  const text = read(file);
  const imported = [...text.matchAll(/from '(\.\.?\/[^']+)\.js'/g)].map((m) =>
    join(dirname(file), `${m[1]}.ts`),
  );
  return MUX.test(text) || imported.some((f) => existsSync(join(root, f)) && MUX.test(read(f)));
}
