// The keys each config table accepts, and the "unknown key" message that points to the right one.
import type { KeyPath } from './locate.js';
import type { Problems, Table } from './read.js';
import { closest } from './suggest.js';

export const ROOT_KEYS = [
  'listen',
  'user',
  'group',
  'pid_file',
  'timeouts',
  'limits',
  'log',
  'admin',
  'accept_proxy',
  'route',
] as const;
export const TIMEOUT_KEYS = ['detect', 'connect', 'idle', 'drain', 'backend_down'] as const;
export const LIMIT_KEYS = ['max_connections', 'max_connections_per_source', 'max_peek_bytes'] as const;
export const LOG_KEYS = ['level', 'format'] as const;
export const ADMIN_KEYS = ['listen'] as const;
export const ACCEPT_PROXY_KEYS = ['from'] as const;
export const ROUTE_KEYS = [
  'name',
  'protocol',
  'sni',
  'alpn',
  'host',
  'source',
  'on_timeout',
  'backend',
  'backends',
  'balance',
  'proxy_protocol',
  'idle',
] as const;

/** Where each table's keys live, to say "belongs under [timeouts]" when a key is in the wrong table. */
const HOMES: readonly { table: string; header: string; keys: readonly string[] }[] = [
  { table: '', header: 'the top of the file', keys: ROOT_KEYS },
  { table: 'timeouts', header: '[timeouts]', keys: TIMEOUT_KEYS },
  { table: 'limits', header: '[limits]', keys: LIMIT_KEYS },
  { table: 'log', header: '[log]', keys: LOG_KEYS },
  { table: 'accept_proxy', header: '[accept_proxy]', keys: ACCEPT_PROXY_KEYS },
  { table: 'route', header: 'a [[route]] table', keys: ROUTE_KEYS },
];

/** Names other tools (sslh, HAProxy, nginx, Traefik) use for the same thing. */
const ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  '': {
    bind: 'listen',
    listen_on: 'listen',
    address: 'listen',
    routes: 'route',
    timeout: 'timeouts',
    limit: 'limits',
    pidfile: 'pid_file',
    logging: 'log',
  },
  timeouts: {
    client: 'idle',
    server: 'idle',
    tunnel: 'idle',
    inspect: 'detect',
    probe: 'detect',
    grace: 'drain',
    fail_timeout: 'backend_down',
    fail: 'backend_down',
  },
  limits: { maxconn: 'max_connections', max_conn: 'max_connections', peek: 'max_peek_bytes' },
  route: {
    server: 'backend',
    servers: 'backends',
    target: 'backend',
    targets: 'backends',
    upstream: 'backends',
    address: 'backend',
    dest: 'backend',
    destination: 'backend',
    server_name: 'sni',
    servername: 'sni',
    hostname: 'sni',
    hostsni: 'sni',
    hosts: 'host',
    protocols: 'protocol',
    proto: 'protocol',
    src: 'source',
    sources: 'source',
    from: 'source',
    send_proxy: 'proxy_protocol',
    proxy: 'proxy_protocol',
    timeout: 'on_timeout',
    balancing: 'balance',
    load_balance: 'balance',
    lb: 'balance',
  },
};

/**
 * Reports every key of `table` not in `known`, suggesting the closest known key, or the table the key
 * belongs to when it was written under the wrong header. Returns the keys suggested, so a caller can
 * skip "`backend` is missing" when the user wrote `bakend`.
 */
export function checkKeys(
  p: Problems,
  path: KeyPath,
  tableName: string,
  table: Table,
  known: readonly string[],
): Set<string> {
  const suggested = new Set<string>();
  for (const key of Object.keys(table)) {
    if (known.includes(key)) continue;
    let near = ALIASES[tableName]?.[key.toLowerCase()];
    const home =
      near === undefined ? HOMES.find((h) => h.table !== tableName && h.keys.includes(key)) : undefined;
    if (near === undefined && home === undefined) near = closest(key, known);
    // "backendz = [...]" is nearer "backend" by spelling but means "backends" by its value.
    if (near === 'backend' && Array.isArray(table[key])) near = 'backends';
    if (near !== undefined) suggested.add(near);
    p.error([...path, key], `unknown key${hint(key, tableName, known, near, home)}`);
  }
  return suggested;
}

function hint(
  key: string,
  tableName: string,
  known: readonly string[],
  near: string | undefined,
  home: (typeof HOMES)[number] | undefined,
): string {
  if (near !== undefined) return `; did you mean \`${near}\`?`;
  if (home === undefined) return `; known keys here: ${known.join(', ')}`;
  if (tableName === 'route' && home.table === '') {
    return `; \`${key}\` is a top-level key, but keys after a [[route]] header belong to that route: move it above the first [[route]]`;
  }
  if (tableName === 'route' || tableName === '') return `; \`${key}\` belongs in ${home.header}`;
  return `; \`${key}\` belongs in ${home.header}, not [${tableName}] (keys belong to the header above them)`;
}
