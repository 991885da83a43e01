// Turns the parsed TOML document into a Config, applying defaults and reporting every problem found.
import {
  ACCEPT_PROXY_KEYS,
  ADMIN_KEYS,
  checkKeys,
  LIMIT_KEYS,
  LOG_KEYS,
  ROOT_KEYS,
  TIMEOUT_KEYS,
} from './keys.js';
import type { KeyPath } from './locate.js';
import type { Problems, Table } from './read.js';
import { describe, isTable, readDuration, readInt, readList, readString } from './read.js';
import { cidr, endpoint, validateRoute } from './route.js';
import { closest } from './suggest.js';
import type { Config, Endpoint, Limits, LogConfig, RouteConfig, Timeouts } from './types.js';

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  detect: 5000,
  connect: 5000,
  idle: 900_000,
  drain: 30_000,
  backendDown: 10_000,
};
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxConnections: 10_000,
  maxConnectionsPerSource: 256,
  maxPeekBytes: 65_536,
};
export const DEFAULT_LOG: Readonly<LogConfig> = { level: 'info', format: 'auto' };

/** Below this a TLS ClientHello can outgrow the peek buffer: one TLS record is up to 16 KiB. */
export const PEEK_ADVISED = 16_384;
export const PEEK_MIN = 512;
export const PEEK_MAX = 1_048_576;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const FORMATS = ['auto', 'json', 'pretty'] as const;
const VALUE_ALIASES: Readonly<Record<string, string>> = {
  warning: 'warn',
  err: 'error',
  verbose: 'debug',
  quiet: 'silent',
  off: 'silent',
  none: 'silent',
  text: 'pretty',
  human: 'pretty',
};

/** Validates the whole document; undefined when there were errors (all of them are in `p`). */
export function validateConfig(doc: Table, p: Problems): Config | undefined {
  const suggested = checkKeys(p, [], '', doc, ROOT_KEYS);

  let listen: Endpoint[] | undefined;
  if (doc.listen === undefined) {
    if (!suggested.has('listen')) {
      p.error(['listen'], 'is required: add listen = ["0.0.0.0:443", "[::]:443"] at the top of the file');
    }
  } else {
    listen = readEndpoints(p, ['listen'], doc.listen, '["0.0.0.0:443", "[::]:443"]');
  }
  const user = optionalString(p, doc, 'user', '"snimux"');
  const group = optionalString(p, doc, 'group', '"snimux"');
  const pidFile = optionalString(p, doc, 'pid_file', '"/run/sni-mux.pid"');
  const timeouts = readTimeouts(p, doc.timeouts);
  const limits = readLimits(p, doc.limits);
  const log = readLog(p, doc.log);
  const admin = readAdmin(p, doc.admin);
  const acceptProxy = readAcceptProxy(p, doc.accept_proxy);
  const routes = readRoutes(p, doc.route, suggested.has('route'));

  if (listen !== undefined && admin !== undefined) {
    // Port 0 asks the OS for a free port each time, so two of them never collide.
    const clash = admin.port === 0 ? undefined : listen.find((e) => sameEndpoint(e, admin));
    if (clash !== undefined) {
      p.error(['admin', 'listen'], `"${admin.text}" is also in listen; give the admin endpoint its own port`);
    }
  }
  if (listen !== undefined && routes !== undefined) warnLoops(p, listen, routes);

  if (p.errors.length > 0) return undefined;
  const config: Config = { file: p.file, listen: listen!, timeouts, limits, log, routes: routes! };
  if (admin !== undefined) config.admin = { listen: admin };
  if (acceptProxy !== undefined) config.acceptProxy = { from: acceptProxy };
  if (user !== undefined) config.user = user;
  if (group !== undefined) config.group = group;
  if (pidFile !== undefined) config.pidFile = pidFile;
  return config;
}

/** A list of endpoints where each may appear once (binding one twice fails at start-up). */
function readEndpoints(p: Problems, path: KeyPath, v: unknown, example: string): Endpoint[] | undefined {
  if (typeof v === 'number') {
    p.error(path, `${v} is only a port; write the address too, like ["0.0.0.0:${v}", "[::]:${v}"]`);
    return undefined;
  }
  const seen: Endpoint[] = [];
  return readList(p, path, v, example, (text, itemPath, nth) => {
    const e = endpoint(p, itemPath, text, nth, true);
    if (e === undefined) return undefined;
    if (e.port !== 0 && seen.some((x) => sameEndpoint(x, e))) {
      p.error(itemPath, `"${text}" is listed twice; remove one`, text, nth);
      return undefined;
    }
    seen.push(e);
    return e;
  });
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}

function optionalString(p: Problems, doc: Table, key: string, example: string): string | undefined {
  if (doc[key] === undefined) return undefined;
  const s = readString(p, [key], doc[key], example);
  if (s === '') p.error([key], `is empty; write a value like ${example}, or remove the key`);
  return s === '' ? undefined : s;
}

/** A table-valued key: undefined when absent, reported when it is not a table. */
function table(p: Problems, key: string, v: unknown): Table | undefined {
  if (v === undefined) return undefined;
  if (isTable(v)) return v;
  p.error([key], `expected a table, got ${describe(v)}; write it as a [${key}] section`);
  return undefined;
}

/**
 * Each [timeouts] key's field, and whether "0s" is allowed: it turns the idle timeout and the
 * backend_down memory off and makes a drain close at once; detect and connect must wait.
 */
const TIMEOUT_FIELDS: Readonly<Record<(typeof TIMEOUT_KEYS)[number], [keyof Timeouts, boolean]>> = {
  detect: ['detect', false],
  connect: ['connect', false],
  idle: ['idle', true],
  drain: ['drain', true],
  backend_down: ['backendDown', true],
};

function readTimeouts(p: Problems, v: unknown): Timeouts {
  const t = table(p, 'timeouts', v);
  const out = { ...DEFAULT_TIMEOUTS };
  if (t === undefined) return out;
  checkKeys(p, ['timeouts'], 'timeouts', t, TIMEOUT_KEYS);
  for (const key of TIMEOUT_KEYS) {
    if (t[key] === undefined) continue;
    const [field, zeroOk] = TIMEOUT_FIELDS[key];
    const ms = readDuration(p, ['timeouts', key], t[key], zeroOk);
    if (ms !== undefined) out[field] = ms;
  }
  return out;
}

function readLimits(p: Problems, v: unknown): Limits {
  const t = table(p, 'limits', v);
  const out = { ...DEFAULT_LIMITS };
  if (t === undefined) return out;
  checkKeys(p, ['limits'], 'limits', t, LIMIT_KEYS);
  const int = (key: string, min: number, max: number): number | undefined =>
    t[key] === undefined ? undefined : readInt(p, ['limits', key], t[key], min, max);
  out.maxConnections = int('max_connections', 1, 10_000_000) ?? out.maxConnections;
  out.maxConnectionsPerSource =
    int('max_connections_per_source', 1, 10_000_000) ?? out.maxConnectionsPerSource;
  const peek = int('max_peek_bytes', PEEK_MIN, PEEK_MAX);
  if (peek !== undefined) {
    out.maxPeekBytes = peek;
    if (peek < PEEK_ADVISED) {
      p.warn(
        ['limits', 'max_peek_bytes'],
        `${peek} may be too small for a TLS ClientHello (up to 16384 bytes; post-quantum key shares make them 2 KB or more); such clients would not be routed by sni`,
      );
    }
  }
  return out;
}

function readEnum<T extends string>(
  p: Problems,
  path: KeyPath,
  v: unknown,
  allowed: readonly T[],
  what: string,
): T | undefined {
  const found = allowed.find((x) => x === v);
  if (found !== undefined) return found;
  if (typeof v !== 'string') {
    p.error(path, `expected one of ${allowed.map((x) => `"${x}"`).join(', ')}, got ${describe(v)}`);
    return undefined;
  }
  const near = VALUE_ALIASES[v.toLowerCase()] ?? closest(v, allowed);
  const hint =
    near !== undefined && allowed.some((x) => x === near)
      ? `did you mean "${near}"?`
      : `write one of ${allowed.map((x) => `"${x}"`).join(', ')}`;
  p.error(path, `"${v}" is not a ${what}; ${hint}`);
  return undefined;
}

function readLog(p: Problems, v: unknown): LogConfig {
  const t = table(p, 'log', v);
  const out = { ...DEFAULT_LOG };
  if (t === undefined) return out;
  checkKeys(p, ['log'], 'log', t, LOG_KEYS);
  if (t.level !== undefined)
    out.level = readEnum(p, ['log', 'level'], t.level, LEVELS, 'log level') ?? out.level;
  if (t.format !== undefined)
    out.format = readEnum(p, ['log', 'format'], t.format, FORMATS, 'log format') ?? out.format;
  return out;
}

function readAdmin(p: Problems, v: unknown): Endpoint | undefined {
  const t = table(p, 'admin', v);
  if (t === undefined) return undefined;
  checkKeys(p, ['admin'], 'admin', t, ADMIN_KEYS);
  if (t.listen === undefined) {
    p.error(
      ['admin', 'listen'],
      'is required in [admin]: add listen = "127.0.0.1:9090", or remove [admin] to turn it off',
    );
    return undefined;
  }
  if (typeof t.listen === 'number') {
    p.error(
      ['admin', 'listen'],
      `${t.listen} is only a port; write the address too, like "127.0.0.1:${t.listen}"`,
    );
    return undefined;
  }
  const text = readString(p, ['admin', 'listen'], t.listen, '"127.0.0.1:9090"');
  return text === undefined ? undefined : endpoint(p, ['admin', 'listen'], text, 0, true);
}

function readAcceptProxy(p: Problems, v: unknown) {
  const t = table(p, 'accept_proxy', v);
  if (t === undefined) return undefined;
  checkKeys(p, ['accept_proxy'], 'accept_proxy', t, ACCEPT_PROXY_KEYS);
  if (t.from === undefined) {
    p.error(
      ['accept_proxy', 'from'],
      'is required in [accept_proxy]: list the peers that send a PROXY header, like from = ["10.0.0.0/8"]',
    );
    return undefined;
  }
  return readList(
    p,
    ['accept_proxy', 'from'],
    t.from,
    '["10.0.0.0/8", "192.168.1.1"]',
    (text, itemPath, nth) => cidr(p, itemPath, text, nth),
  );
}

function readRoutes(p: Problems, v: unknown, misspelt: boolean): RouteConfig[] | undefined {
  const example = '[[route]] with name = "web" and backend = "127.0.0.1:8443"';
  if (v === undefined || (Array.isArray(v) && v.length === 0)) {
    if (!misspelt) p.error(['route'], `no routes: add at least one ${example}`);
    return undefined;
  }
  if (!Array.isArray(v)) {
    p.error(['route'], `write each route as a [[route]] table (two brackets), got ${describe(v)}`);
    return undefined;
  }
  const routes: RouteConfig[] = [];
  const names = new Map<string, number>();
  let timeoutRoute: number | undefined;
  v.forEach((raw: unknown, i) => {
    const route = validateRoute(p, raw, i);
    if (route !== undefined) routes.push(route);
    if (!isTable(raw)) return;
    // Checked on the raw tables so a route with other errors still takes part.
    if (typeof raw.name === 'string') {
      const first = names.get(raw.name);
      if (first === undefined) names.set(raw.name, i);
      else
        p.error(
          ['route', i, 'name'],
          `"${raw.name}" is already the name of route[${first + 1}]; route names must be unique`,
        );
    }
    if (raw.on_timeout === true) {
      if (timeoutRoute === undefined) timeoutRoute = i;
      else {
        p.error(
          ['route', i, 'on_timeout'],
          `route[${timeoutRoute + 1}] already has on_timeout = true; only one route can take clients that send nothing`,
        );
      }
    }
  });
  return routes.length === v.length ? routes : undefined;
}

const LOOPBACK = /^(127\.|::1$|localhost\.?$)/i;

/** A backend that is sni-mux's own listen address would relay each connection back to itself. */
function warnLoops(p: Problems, listen: readonly Endpoint[], routes: readonly RouteConfig[]): void {
  for (const r of routes) {
    r.backends.forEach((b, j) => {
      const self = listen.find(
        (l) =>
          l.port === b.port &&
          (sameEndpoint(l, b) || ((l.host === '0.0.0.0' || l.host === '::') && LOOPBACK.test(b.host))),
      );
      if (self === undefined) return;
      const plural = p.index.arrays.get('route')?.[r.index]?.keys.has('backends') === true;
      const path: KeyPath = plural ? ['route', r.index, 'backends', j] : ['route', r.index, 'backend'];
      p.warn(
        path,
        `backend "${b.text}" is sni-mux's own listen address "${self.text}"; connections would loop back into it`,
        b.text,
      );
    });
  }
}
