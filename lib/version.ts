// The package version, read once from package.json so there is one source of truth.
import { readFileSync } from 'node:fs';

function readVersion(): string {
  // Compiled to dist/lib/version.js, so package.json is two folders up.
  const url = new URL('../../package.json', import.meta.url);
  const pkg: unknown = JSON.parse(readFileSync(url, 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string'
    ? pkg.version
    : '0.0.0';
}

export const VERSION = readVersion();
