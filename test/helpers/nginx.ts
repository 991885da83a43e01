// An nginx.conf for a test: everything nginx writes stays in the test's directory, then the given http-block lines.
import { join } from 'node:path';

/** Main context and http block around `servers` (lines inside `http { }`), for `nginx -p dir -c`. */
export function nginxConf(dir: string, servers: readonly string[], workerConnections = 128): string {
  return [
    'error_log stderr notice;',
    `pid ${join(dir, 'nginx.pid')};`,
    'worker_processes 1;',
    `events { worker_connections ${workerConnections}; }`,
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (k) => `  ${k}_temp_path ${join(dir, 'tmp', k)};`,
    ),
    ...servers,
    '}',
    '',
  ].join('\n');
}
