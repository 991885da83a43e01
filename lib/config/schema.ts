// Every config key, one row each: the table it lives in, its value type, default, range, what it is for,
// whether a reload can change it, and the names other tools give it. Known-key lists, defaults, the
// readers of the simple tables, "did you mean", reload's restart-only check and change log, the route
// table printout and the docs test all read this table: adding a key is one row here plus its use.
import type { KeyPath } from './locate.js';
import type { Config, HealthConfig, Limits, LogConfig, RouteConfig, Timeouts } from './types.js';

/**
 * How a value is written. duration, int and enum rows are read from the row alone (validate.ts);
 * the others are read by the code of their table, which checks what one row cannot say.
 */
export type ValueType =
  | 'duration'
  | 'int'
  | 'enum'
  | 'bool'
  | 'string'
  | 'address'
  | 'addresses'
  | 'cidrs'
  | 'names'
  | 'strings'
  | 'protocols'
  | 'table'
  | 'tables';

export interface KeySpec {
  readonly type: ValueType;
  /** The property of the validated Config (or of its table's section) that holds the value. */
  readonly field: string;
  /** One line on what the key does; docs/configuration.md says the rest. */
  readonly doc: string;
  /** The value used when the key is absent (durations in ms); absent: required, or unset. */
  readonly default?: number | string | boolean;
  readonly min?: number;
  readonly max?: number;
  /** Durations: whether "0s" is allowed (it turns the timeout off, or makes it act at once). */
  readonly zero?: boolean;
  /** Enums: the values accepted, and what one is called in "is not a ..." messages. */
  readonly values?: readonly string[];
  readonly what?: string;
  /** Used once, at start: a reload that changes it is applied at the next start, and warns. */
  readonly restart?: true;
  /**
   * Routes: 'match' keys decide which connections a route takes (the route table printout, shadowing);
   * 'target' keys what it does with them. A reload that changes either logs the route as changed.
   */
  readonly route?: 'match' | 'target';
  /** Names other tools (sslh, HAProxy, nginx, Traefik) use for it, answered with "did you mean". */
  readonly aliases?: readonly string[];
}

export interface TableSpec {
  /** How messages name the place: "`x` belongs in [timeouts]". */
  readonly header: string;
  readonly keys: Readonly<Record<string, KeySpec>>;
}

export const SCHEMA = {
  '': {
    header: 'the top of the file',
    keys: {
      listen: {
        type: 'addresses',
        field: 'listen',
        doc: 'addresses to accept TCP connections on (required)',
        aliases: ['bind', 'listen_on', 'address'],
      },
      listen_udp: {
        type: 'addresses',
        field: 'listenUdp',
        doc: 'addresses to receive UDP datagrams on',
        aliases: ['udp_listen', 'listen_quic'],
      },
      user: { type: 'string', field: 'user', doc: 'user to run as after binding', restart: true },
      group: { type: 'string', field: 'group', doc: 'group to run as after binding', restart: true },
      pid_file: {
        type: 'string',
        field: 'pidFile',
        doc: 'file to write the process id to',
        restart: true,
        aliases: ['pidfile'],
      },
      data_plane: {
        type: 'enum',
        field: 'dataPlane',
        values: ['native', 'js'],
        what: 'data plane',
        default: 'native',
        doc: 'what moves the bytes: the native addon or Node sockets',
        restart: true,
        aliases: ['dataplane', 'plane'],
      },
      workers: {
        type: 'int',
        field: 'workers',
        default: 1,
        min: 1,
        max: 256,
        doc: 'processes that accept and relay connections; "auto": one per core',
        restart: true,
        aliases: ['worker_processes', 'nbthread', 'processes'],
      },
      timeouts: { type: 'table', field: 'timeouts', doc: 'the [timeouts] table', aliases: ['timeout'] },
      limits: { type: 'table', field: 'limits', doc: 'the [limits] table', aliases: ['limit'] },
      log: { type: 'table', field: 'log', doc: 'the [log] table', aliases: ['logging'] },
      admin: { type: 'table', field: 'admin', doc: 'the [admin] table' },
      accept_proxy: { type: 'table', field: 'acceptProxy', doc: 'the [accept_proxy] table' },
      health: { type: 'table', field: 'health', doc: 'the [health] table' },
      route: { type: 'tables', field: 'routes', doc: 'the [[route]] tables', aliases: ['routes'] },
    },
  },
  timeouts: {
    header: '[timeouts]',
    keys: {
      detect: {
        type: 'duration',
        field: 'detect',
        default: 5000,
        doc: "wait this long for the client's first bytes to be recognised",
        aliases: ['inspect', 'probe'],
      },
      connect: {
        type: 'duration',
        field: 'connect',
        default: 5000,
        doc: 'wait this long for a backend to accept',
      },
      idle: {
        type: 'duration',
        field: 'idle',
        default: 900_000,
        zero: true,
        doc: 'close a relayed connection silent this long ("0s": never)',
        aliases: ['client', 'server', 'tunnel'],
      },
      drain: {
        type: 'duration',
        field: 'drain',
        default: 30_000,
        zero: true,
        doc: 'on shutdown, give live connections this long ("0s": close at once)',
        aliases: ['grace'],
      },
      backend_down: {
        type: 'duration',
        field: 'backendDown',
        default: 10_000,
        zero: true,
        doc: 'try a backend whose connect failed after the others for this long ("0s": off)',
        aliases: ['fail_timeout', 'fail'],
      },
      udp_idle: {
        type: 'duration',
        field: 'udpIdle',
        default: 120_000,
        doc: 'forget a UDP flow silent this long',
        aliases: ['udp', 'udp_timeout'],
      },
    },
  },
  limits: {
    header: '[limits]',
    keys: {
      // Two descriptors each plus 100 spare (16100) fit the common hard limits of 16384 and 20000, so a
      // default start warns of no open-file shortfall there; 65536 and more hold it many times over.
      max_connections: {
        type: 'int',
        field: 'maxConnections',
        default: 8000,
        min: 1,
        max: 10_000_000,
        doc: 'connections open at once; more wait unread',
        aliases: ['maxconn', 'max_conn'],
      },
      max_connections_per_source: {
        type: 'int',
        field: 'maxConnectionsPerSource',
        default: 256,
        min: 1,
        max: 10_000_000,
        doc: 'connections open at once per client address (IPv6: per /64)',
      },
      max_peek_bytes: {
        type: 'int',
        field: 'maxPeekBytes',
        default: 65_536,
        min: 512,
        max: 1_048_576,
        doc: "bytes of the client's first data buffered while detecting",
        aliases: ['peek'],
      },
      max_udp_flows: {
        type: 'int',
        field: 'maxUdpFlows',
        default: 10_000,
        min: 1,
        max: 10_000_000,
        doc: 'UDP flows held at once',
        aliases: ['max_flows', 'udp_flows'],
      },
    },
  },
  log: {
    header: '[log]',
    keys: {
      level: {
        type: 'enum',
        field: 'level',
        values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
        what: 'log level',
        default: 'info',
        doc: 'the least severe level written; a reload applies it at once',
      },
      format: {
        type: 'enum',
        field: 'format',
        values: ['auto', 'json', 'pretty'],
        what: 'log format',
        default: 'auto',
        restart: true,
        doc: 'JSON lines, readable lines, or readable on a terminal only',
      },
    },
  },
  admin: {
    header: '[admin]',
    keys: {
      listen: { type: 'address', field: 'listen', doc: 'address of the status page, /metrics and /healthz' },
      allow: { type: 'cidrs', field: 'allow', doc: 'peers the admin listener answers' },
    },
  },
  accept_proxy: {
    header: '[accept_proxy]',
    keys: {
      from: { type: 'cidrs', field: 'from', doc: 'peers that must send a PROXY header' },
    },
  },
  health: {
    header: '[health]',
    keys: {
      interval: {
        type: 'duration',
        field: 'interval',
        default: 5000,
        doc: 'time between two checks of one backend',
        aliases: ['inter', 'every', 'period'],
      },
      timeout: {
        type: 'duration',
        field: 'timeout',
        default: 2000,
        doc: 'a check unanswered this long fails',
        aliases: ['timeout_check'],
      },
      rise: {
        type: 'int',
        field: 'rise',
        default: 2,
        min: 1,
        max: 100,
        doc: 'passes in a row that bring a backend up',
      },
      fall: {
        type: 'int',
        field: 'fall',
        default: 3,
        min: 1,
        max: 100,
        doc: 'failures in a row that take a backend down',
      },
    },
  },
  route: {
    header: 'a [[route]] table',
    keys: {
      name: { type: 'string', field: 'name', doc: 'unique name, used in logs and metrics (required)' },
      protocol: {
        type: 'protocols',
        field: 'protocol',
        route: 'match',
        doc: 'the protocols it takes',
        aliases: ['protocols', 'proto'],
      },
      sni: {
        type: 'names',
        field: 'sni',
        route: 'match',
        doc: 'TLS server names it takes',
        aliases: ['server_name', 'servername', 'hostname', 'hostsni'],
      },
      alpn: { type: 'strings', field: 'alpn', route: 'match', doc: 'ALPN protocols it takes' },
      host: {
        type: 'names',
        field: 'host',
        route: 'match',
        doc: 'HTTP Host names it takes',
        aliases: ['hosts'],
      },
      source: {
        type: 'cidrs',
        field: 'source',
        route: 'match',
        doc: 'client networks it takes',
        aliases: ['src', 'sources', 'from'],
      },
      listen: { type: 'addresses', field: 'listen', route: 'match', doc: 'listen addresses it takes from' },
      on_timeout: {
        type: 'bool',
        field: 'onTimeout',
        default: false,
        route: 'match',
        doc: 'takes clients that send nothing',
        aliases: ['timeout'],
      },
      backend: {
        type: 'address',
        field: 'backends',
        route: 'target',
        doc: 'where connections go',
        aliases: ['server', 'target', 'address', 'dest', 'destination'],
      },
      backends: {
        type: 'addresses',
        field: 'backends',
        route: 'target',
        doc: 'where connections go, tried in turn',
        aliases: ['servers', 'targets', 'upstream'],
      },
      balance: {
        type: 'enum',
        field: 'balance',
        values: ['first', 'roundrobin'],
        default: 'first',
        route: 'target',
        doc: 'which backend goes first',
        aliases: ['balancing', 'load_balance', 'lb'],
      },
      proxy_protocol: {
        type: 'enum',
        field: 'proxyProtocol',
        values: ['v1', 'v2'],
        route: 'target',
        doc: 'PROXY header sent to the backend',
        aliases: ['send_proxy', 'proxy'],
      },
      idle: { type: 'duration', field: 'idle', zero: true, route: 'target', doc: 'overrides timeouts.idle' },
      health_check: {
        type: 'enum',
        field: 'healthCheck',
        values: ['connect', 'tls'],
        route: 'target',
        doc: 'active checks of its backends',
        aliases: ['check', 'healthcheck', 'health'],
      },
      transport: {
        type: 'enum',
        field: 'transport',
        values: ['tcp', 'udp'],
        doc: 'TCP connections or UDP flows',
        aliases: ['network', 'proto_udp'],
      },
    },
  },
} as const satisfies Readonly<Record<string, TableSpec>>;

type Schema = typeof SCHEMA;
export type TableName = keyof Schema;
/** The keys of one table: a name not in the schema does not compile. */
export type Key<T extends TableName> = keyof Schema[T]['keys'] & string;
/** A raw TOML table whose keys were checked: reading a key it cannot have does not compile. */
export type Raw<T extends TableName> = { readonly [K in Key<T>]?: unknown };

/** The route keys that are lists a connection must match (on_timeout, a flag, is not one). */
export type MatchList = {
  [K in Key<'route'>]: Schema['route']['keys'][K] extends { route: 'match'; type: Exclude<ValueType, 'bool'> }
    ? K
    : never;
}[Key<'route'>];

type Field<T extends TableName> = {
  [K in Key<T>]: Schema[T]['keys'][K] extends { field: infer F } ? F : never;
}[Key<T>];

// Each table's rows are exactly the fields of its Config section, so a key cannot be added to one and not
// the other: "'true' is not assignable to 'false'" below means a row or a field is missing.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const exact: [
  Same<Field<'timeouts'>, keyof Timeouts>,
  Same<Field<'limits'>, keyof Limits>,
  Same<Field<'log'>, keyof LogConfig>,
  Same<Field<'health'>, keyof HealthConfig>,
  Same<Field<'admin'>, keyof NonNullable<Config['admin']>>,
  Same<Field<'accept_proxy'>, keyof NonNullable<Config['acceptProxy']>>,
  Same<Field<'route'> | 'index' | 'line' | 'templated', keyof RouteConfig>,
  Same<Field<''> | 'file', keyof Config>,
] = [true, true, true, true, true, true, true, true];
void exact;

/** The tables in the order their keys are looked up, for "belongs in [timeouts]". */
export const TABLES = Object.keys(SCHEMA) as TableName[];

export function keysOf<T extends TableName>(table: T): readonly Key<T>[] {
  return Object.keys(SCHEMA[table].keys) as Key<T>[];
}

export function spec<T extends TableName>(table: T, key: Key<T>): KeySpec {
  return (SCHEMA[table].keys as Readonly<Record<string, KeySpec>>)[key]!;
}

export function isKey<T extends TableName>(table: T, key: string): key is Key<T> {
  return Object.hasOwn(SCHEMA[table].keys, key);
}

/** "timeouts.detect", or "user" for a top-level key: how logs and messages name a key. */
export function keyName<T extends TableName>(table: T, key: Key<T>): string {
  return table === '' ? key : `${table}.${key}`;
}

/** Where a key of a single table is, for messages: ["listen"], ["limits", "max_peek_bytes"]. */
export function pathOf<T extends Exclude<TableName, 'route'>>(table: T, key: Key<T>): KeyPath {
  return table === '' ? [key] : [table, key];
}

/** Where a key of the i-th route (0-based) is, and which item of its list: ["route", 2, "backends", 1]. */
export function routePath(i: number, key: Key<'route'>, ...item: number[]): KeyPath {
  return ['route', i, key, ...item];
}

/** A table's defaults, by field: what its section of the Config holds when the table is absent. */
export function defaults(table: 'timeouts' | 'limits' | 'log' | 'health'): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keysOf(table)) {
    const row = spec(table, key);
    out[row.field] = row.default;
  }
  return out;
}

/** Every row, in table order then key order. */
export function* rows(): Generator<{ table: TableName; key: string; name: string; spec: KeySpec }> {
  for (const table of TABLES) {
    for (const key of keysOf(table)) yield { table, key, name: keyName(table, key), spec: spec(table, key) };
  }
}

/** The value a row holds in a validated Config: a top-level field, or a field of its table's section. */
export function configValue(c: Config, table: TableName, key: string): unknown {
  const field = spec(table, key as Key<typeof table>).field;
  const at = c as unknown as Record<string, unknown>;
  if (table === '') return at[field];
  const section = at[spec('', table as Key<''>).field] as Record<string, unknown> | undefined;
  return section?.[field];
}
