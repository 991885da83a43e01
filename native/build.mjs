// npm's install step: builds the native data plane with node-gyp. A failed build never fails the install:
// it prints one warning and sni-mux runs its js data plane.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.env.SNI_MUX_SKIP_NATIVE === '1') process.exit(0);

// node-gyp comes with npm: npm names it to install scripts; else look beside this node's npm.
const prefix = join(dirname(process.execPath), '..');
const gyp =
  process.env.npm_config_node_gyp ??
  [
    join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    join(prefix, 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ].find((p) => existsSync(p));
// The headers of the node that runs, when it ships them: node-gyp then needs no download.
const nodedir = existsSync(join(prefix, 'include/node/node_api.h')) ? [`--nodedir=${prefix}`] : [];

const log = join(root, 'build-native.log');
let why;
if (gyp === undefined) {
  why = 'node-gyp not found (it comes with npm)';
} else {
  const r = spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir], { cwd: root, encoding: 'utf8' });
  writeFileSync(log, `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`);
  if (r.status !== 0) why = `node-gyp failed (see ${log})`;
}
if (why !== undefined) {
  console.warn(`sni-mux: native data plane not built: ${why}; the js data plane will run.`);
}
