// Turns the parsed TOML document into a Config, applying defaults and reporting every problem found.

import { parseEndpoint } from '../net/address.js';
import { checkKeys } from './keys.js';
import type { KeyPath } from './locate.js';
import type { Problems, Table } from './read.js';
import { describe, isTable, readDuration, readInt, readList, readString } from './read.js';
import { cidr, endpoint, validateRoute } from './route.js';
import { defaults, type Key, keysOf, pathOf, type Raw, routePath, SCHEMA, spec } from './schema.js';
import { closest } from './suggest.js';
import type {
  Cidr,
  Config,
  Endpoint,
  HealthConfig,
  Limits,
  LogConfig,
  RouteConfig,
  Timeouts,
} from './types.js';

/** Below this a TLS ClientHello can outgrow the peek buffer: one TLS record is up to 16 KiB. */
const PEEK_ADVISED = 16_384;
const PLANE = SCHEMA[''].keys.data_plane;
export const PEEK_MAX = SCHEMA.limits.keys.max_peek_bytes.max;

/** The tables read from their schema rows alone, and the Config section each becomes. */
interface Simple {
  timeouts: Timeouts;
  limits: Limits;
  log: LogConfig;
  health: HealthConfig;
}

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
export function validateConfig(file: Table, p: Problems): Config | undefined {
  const suggested = checkKeys(p, [], '', file);
  const doc: Raw<''> = file;

  let listen: Endpoint[] | undefined;
  if (doc.listen === undefined) {
    if (!suggested.has('listen')) {
      // A top-level listen written below [admin] or a [[route]] became that table's own `listen`.
      const underTable =
        (isTable(doc.admin) && doc.admin.listen !== undefined) ||
        (Array.isArray(doc.route) && doc.route.some((r) => isTable(r) && r.listen !== undefined));
      p.error(
        pathOf('', 'listen'),
        'is required: add listen = ["0.0.0.0:443", "[::]:443"] at the top of the file' +
          (underTable
            ? ' (a `listen` below an [admin] or [[route]] header belongs to that table: move the top-level one above the first header)'
            : ''),
      );
    }
  } else {
    listen = readEndpoints(p, pathOf('', 'listen'), doc.listen, '["0.0.0.0:443", "[::]:443"]');
  }
  const listenUdp =
    doc.listen_udp === undefined
      ? []
      : readEndpoints(p, pathOf('', 'listen_udp'), doc.listen_udp, '["0.0.0.0:443", "[::]:443"]');
  const user = optionalString(p, doc, 'user', '"snimux"');
  const group = optionalString(p, doc, 'group', '"snimux"');
  const pidFile = optionalString(p, doc, 'pid_file', '"/run/sni-mux.pid"');
  const dataPlane =
    doc.data_plane === undefined
      ? PLANE.default
      : readEnum(p, pathOf('', 'data_plane'), doc.data_plane, PLANE.values, PLANE.what);
  const workers = readWorkers(p, doc.workers);
  const timeouts = readSimple(p, 'timeouts', doc.timeouts);
  const limits = readSimple(p, 'limits', doc.limits);
  if (isTable(doc.limits) && doc.limits.max_peek_bytes !== undefined && limits.maxPeekBytes < PEEK_ADVISED) {
    p.warn(
      pathOf('limits', 'max_peek_bytes'),
      `${limits.maxPeekBytes} may be too small for a TLS ClientHello (up to 16384 bytes; post-quantum key shares make them 2 KB or more); such clients would not be routed by sni`,
    );
  }
  const log = readSimple(p, 'log', doc.log);
  const admin = readAdmin(p, doc.admin);
  const acceptProxy = readAcceptProxy(p, doc.accept_proxy);
  const health = readSimple(p, 'health', doc.health);
  const routes = readRoutes(p, doc.route, suggested.has('route'));

  if (listen !== undefined && admin !== undefined) {
    // Port 0 asks the OS for a free port each time, so two of them never collide.
    const clash = admin.listen.port === 0 ? undefined : listen.find((e) => sameEndpoint(e, admin.listen));
    if (clash !== undefined) {
      p.error(
        pathOf('admin', 'listen'),
        `"${admin.listen.text}" is also in listen; give the admin endpoint its own port`,
      );
    }
  }
  if (listen !== undefined && routes !== undefined) {
    scopeRoutes(p, listen, listenUdp ?? [], routes, doc.route);
    warnLoops(p, listen, routes);
  }
  if (listenUdp !== undefined && routes !== undefined) warnTransports(p, listenUdp, routes);
  if (workers !== 1 && listen !== undefined) checkWorkerListen(p, listen, listenUdp ?? []);

  if (p.errors.length > 0) return undefined;
  const config: Config = {
    file: p.file,
    listen: listen!,
    listenUdp: listenUdp!,
    timeouts,
    limits,
    log,
    health,
    workers,
    routes: routes!,
  };
  if (admin !== undefined) config.admin = admin;
  if (acceptProxy !== undefined) config.acceptProxy = { from: acceptProxy };
  if (user !== undefined) config.user = user;
  if (group !== undefined) config.group = group;
  if (pidFile !== undefined) config.pidFile = pidFile;
  if (dataPlane !== undefined) config.dataPlane = dataPlane;
  return config;
}

/** Most processes `workers` may ask for: past the cores of any machine this runs on, a typo. */
export const MAX_WORKERS = SCHEMA[''].keys.workers!.max!;

/** `workers`: a count, or "auto" for one per core (counted at start, lib/workers/count.ts). */
function readWorkers(p: Problems, v: unknown): number | 'auto' {
  if (v === undefined) return 1;
  if (v === 'auto') return v;
  if (typeof v === 'string' && !/^[0-9]+$/.test(v)) {
    p.error(
      pathOf('', 'workers'),
      `expected a whole number from 1 to ${MAX_WORKERS} or "auto", got ${describe(v)}`,
    );
    return 1;
  }
  return readInt(p, pathOf('', 'workers'), v, 1, MAX_WORKERS) ?? 1;
}

/**
 * Each worker binds its own sockets: port 0 would give each a different port, and a UDP flow's
 * datagrams must all reach the one process that holds its backend socket.
 */
function checkWorkerListen(p: Problems, listen: readonly Endpoint[], listenUdp: readonly Endpoint[]): void {
  const zero = listen.find((e) => e.port === 0);
  if (zero !== undefined) {
    p.error(
      pathOf('', 'listen'),
      `"${zero.text}" asks for any free port, which each of the workers would pick on its own; give a port, or set workers = 1`,
    );
  }
  if (listenUdp.length > 0) {
    p.error(
      pathOf('', 'listen_udp'),
      'is not supported with workers > 1 yet (a UDP flow must stay in one process); set workers = 1',
    );
  }
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

/** The same address and port, however the host was cased. */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.host.toLowerCase() === b.host.toLowerCase();
}

function optionalString(p: Problems, doc: Raw<''>, key: Key<''>, example: string): string | undefined {
  if (doc[key] === undefined) return undefined;
  const s = readString(p, pathOf('', key), doc[key], example);
  if (s === '') p.error(pathOf('', key), `is empty; write a value like ${example}, or remove the key`);
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
 * A table whose every key is a duration, a whole number or one of a list of words, read from its
 * schema rows alone: each key present replaces its default.
 */
function readSimple<T extends keyof Simple>(p: Problems, name: T, v: unknown): Simple[T] {
  const t = table(p, name, v);
  const out = defaults(name);
  if (t !== undefined) checkKeys(p, [name], name, t);
  for (const key of t === undefined ? [] : keysOf(name)) {
    if (t?.[key] === undefined) continue;
    const row = spec(name, key);
    const path = pathOf(name, key);
    const value =
      row.type === 'duration'
        ? readDuration(p, path, t[key], row.zero === true)
        : row.type === 'int'
          ? readInt(p, path, t[key], row.min!, row.max!)
          : readEnum(p, path, t[key], row.values!, row.what!);
    if (value !== undefined) out[row.field] = value;
  }
  return out as unknown as Simple[T];
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

function readAdmin(p: Problems, v: unknown): Config['admin'] {
  const found = table(p, 'admin', v);
  if (found === undefined) return undefined;
  checkKeys(p, ['admin'], 'admin', found);
  const t: Raw<'admin'> = found;
  const listen = readAdminListen(p, t);
  const allow =
    t.allow === undefined
      ? undefined
      : readCidrs(p, pathOf('admin', 'allow'), t.allow, '["127.0.0.1", "192.168.1.0/24"]');
  if (listen === undefined) return undefined;
  return allow === undefined ? { listen } : { listen, allow };
}

function readAdminListen(p: Problems, t: Raw<'admin'>): Endpoint | undefined {
  if (t.listen === undefined) {
    p.error(
      pathOf('admin', 'listen'),
      'is required in [admin]: add listen = "127.0.0.1:7646", or remove [admin] to turn it off',
    );
    return undefined;
  }
  if (typeof t.listen === 'number') {
    p.error(
      pathOf('admin', 'listen'),
      `${t.listen} is only a port; write the address too, like "127.0.0.1:${t.listen}"`,
    );
    return undefined;
  }
  const text = readString(p, pathOf('admin', 'listen'), t.listen, '"127.0.0.1:7646"');
  return text === undefined ? undefined : endpoint(p, pathOf('admin', 'listen'), text, 0, true);
}

function readAcceptProxy(p: Problems, v: unknown) {
  const found = table(p, 'accept_proxy', v);
  if (found === undefined) return undefined;
  checkKeys(p, ['accept_proxy'], 'accept_proxy', found);
  const t: Raw<'accept_proxy'> = found;
  if (t.from === undefined) {
    p.error(
      pathOf('accept_proxy', 'from'),
      'is required in [accept_proxy]: list the peers that send a PROXY header, like from = ["10.0.0.0/8"]',
    );
    return undefined;
  }
  return readCidrs(p, pathOf('accept_proxy', 'from'), t.from, '["10.0.0.0/8", "192.168.1.1"]');
}

/** A CIDR or a list of them; each bad one reported at its own position. */
function readCidrs(p: Problems, path: KeyPath, v: unknown, example: string): Cidr[] | undefined {
  return readList(p, path, v, example, (text, itemPath, nth) => cidr(p, itemPath, text, nth));
}

function readRoutes(p: Problems, v: unknown, misspelt: boolean): RouteConfig[] | undefined {
  const example = '[[route]] with name = "web" and backend = "127.0.0.1:8443"';
  if (v === undefined || (Array.isArray(v) && v.length === 0)) {
    if (!misspelt) p.error(pathOf('', 'route'), `no routes: add at least one ${example}`);
    return undefined;
  }
  if (!Array.isArray(v)) {
    p.error(pathOf('', 'route'), `write each route as a [[route]] table (two brackets), got ${describe(v)}`);
    return undefined;
  }
  const routes: RouteConfig[] = [];
  const names = new Map<string, number>();
  let timeoutRoute: number | undefined;
  v.forEach((item: unknown, i) => {
    const route = validateRoute(p, item, i);
    if (route !== undefined) routes.push(route);
    if (!isTable(item)) return;
    const raw: Raw<'route'> = item;
    // Checked on the raw tables so a route with other errors still takes part.
    if (typeof raw.name === 'string') {
      const first = names.get(raw.name);
      if (first === undefined) names.set(raw.name, i);
      else
        p.error(
          routePath(i, 'name'),
          `"${raw.name}" is already the name of route[${first + 1}]; route names must be unique`,
        );
    }
    if (raw.on_timeout === true) {
      if (timeoutRoute === undefined) timeoutRoute = i;
      else {
        p.error(
          routePath(i, 'on_timeout'),
          `route[${timeoutRoute + 1}] already has on_timeout = true; only one route can take clients that send nothing`,
        );
      }
    }
  });
  return routes.length === v.length ? routes : undefined;
}

/**
 * A route's listen addresses must be top-level listen addresses (a route cannot open a socket of its
 * own); each is replaced by the top-level text, which is how connections name their listener.
 */
/**
 * A route's `listen` names addresses of its own transport: a TCP route those of `listen`, a UDP route
 * (transport = "udp", or quic/wireguard) those of `listen_udp`, since it only ever sees datagrams.
 */
function scopeRoutes(
  p: Problems,
  listen: readonly Endpoint[],
  listenUdp: readonly Endpoint[],
  routes: RouteConfig[],
  raw: unknown,
): void {
  const quote = (es: readonly Endpoint[]): string => es.map((e) => `"${e.text}"`).join(', ') || 'none';
  for (const r of routes) {
    if (r.listen === undefined) continue;
    const udp = r.transport === 'udp';
    const own = udp ? listenUdp : listen;
    const written = (raw as Raw<'route'>[])[r.index]?.listen;
    const scoped: string[] = [];
    r.listen.forEach((text, j) => {
      const e = parseEndpoint(text, true);
      const top = e.kind === 'ok' ? own.find((l) => sameEndpoint(l, e.endpoint)) : undefined;
      if (top !== undefined) {
        scoped.push(top.text);
        return;
      }
      const path: KeyPath = Array.isArray(written)
        ? routePath(r.index, 'listen', j)
        : routePath(r.index, 'listen');
      const tcp = udp && e.kind === 'ok' && listen.some((l) => sameEndpoint(l, e.endpoint));
      p.error(
        path,
        tcp
          ? `"${text}" is a TCP listen address, but "${r.name}" is a UDP route and only takes datagrams from listen_udp (${quote(listenUdp)}): add it to listen_udp, or use one of those`
          : udp
            ? `"${text}" is not in the top-level listen_udp (${quote(listenUdp)}); a UDP route can only take flows from those: add it there, or use one of them`
            : `"${text}" is not in the top-level listen (${quote(listen)}); a route can only take connections from those: add it there, or use one of them`,
        text,
      );
    });
    r.listen = scoped;
  }
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
      const path: KeyPath = plural ? routePath(r.index, 'backends', j) : routePath(r.index, 'backend');
      p.warn(
        path,
        `backend "${b.text}" is sni-mux's own listen address "${self.text}"; connections would loop back into it`,
        b.text,
      );
    });
  }
}

/** UDP routes without listen_udp never see a datagram, and listen_udp without UDP routes drops them all. */
function warnTransports(p: Problems, listenUdp: readonly Endpoint[], routes: readonly RouteConfig[]): void {
  const udp = routes.find((r) => r.transport === 'udp');
  if (udp !== undefined && listenUdp.length === 0) {
    p.warn(
      ['route', udp.index],
      `"${udp.name}" is a UDP route but there is no listen_udp; add listen_udp = ["0.0.0.0:443"] at the top of the file`,
    );
  }
  if (udp === undefined && listenUdp.length > 0) {
    p.warn(
      pathOf('', 'listen_udp'),
      'no route takes UDP flows, so every datagram would be dropped; add a route with protocol = "quic", "wireguard", or transport = "udp"',
    );
  }
}
