// `npm run coverage`: line, branch and function coverage of lib/ by the tests that start no mux (parsers,
// config, router, the fuzz replay), under c8; fails below the floor in .c8rc.json. Those tests load lib/
// in-process; the mux tests' children would multiply CPU time and one killed by SIGKILL reports nothing.
import { spawnSync } from 'node:child_process';
import { root, startsMux, testFiles } from './suite-files.mjs';

const files = testFiles().filter((f) => !startsMux(f));
console.log(`# coverage of lib/ by the ${files.length} test files that start no mux`);
const r = spawnSync('npx', ['c8', 'tap', ...process.argv.slice(2), ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
