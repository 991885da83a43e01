// `npm test`: the whole suite on the js data plane, then every test that starts a mux (suite-files.mjs)
// again on the native plane; the pure parser tests don't depend on the plane. Without the addon, js only.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root, startsMux, testFiles } from './suite-files.mjs';

const args = process.argv.slice(2);
const tap = (plane, files) => {
  console.log(`\n# data plane: ${plane}${files.length ? ` (${files.length} files that start a mux)` : ''}`);
  const env = { ...process.env, SNI_MUX_DATA_PLANE: plane };
  return spawnSync('npx', ['tap', ...args, ...files], { cwd: root, env, stdio: 'inherit' }).status ?? 1;
};

const addon = process.env.SNI_MUX_ADDON ?? join(root, 'build/Release/sni_mux.node');
if (!existsSync(addon)) {
  console.log(`# ${addon} not built: the whole suite runs on the js data plane only`);
  process.exit(tap('js', []));
}
const files = testFiles().filter(startsMux);
const js = tap('js', []);
const native = tap('native', files);
process.exit(js || native);
