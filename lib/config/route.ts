// Validates one [[route]] table into a RouteConfig: match keys, implied protocol, backends.

import { parseTemplate } from '../connect/template.js';
import { DATAGRAM_PROBES } from '../detect/datagram.js';
import type { Protocol } from '../detect/types.js';
import { PROTOCOLS, UDP_ONLY_PROTOCOLS } from '../detect/types.js';
import { parseEndpoint } from '../net/address.js';
import { isDnsName, parseNamePattern } from '../net/hostname.js';
import { parseCidr } from '../net/ip.js';
import { checkKeys } from './keys.js';
import type { KeyPath } from './locate.js';
import { locate } from './locate.js';
import type { Problems } from './read.js';
import { describe, isTable, readBool, readDuration, readList, readString } from './read.js';
import { type Key, type Raw, routePath, SCHEMA } from './schema.js';
import { closest } from './suggest.js';
import type {
  Balance,
  Cidr,
  Endpoint,
  HealthCheck,
  ProxyProtocolVersion,
  RouteConfig,
  Transport,
} from './types.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const {
  balance: BALANCE,
  health_check: CHECK,
  idle: IDLE,
  on_timeout: ON_TIMEOUT,
  proxy_protocol: PROXY,
  transport: TRANSPORT,
} = SCHEMA.route.keys;

function isOneOf<T extends string>(values: readonly T[], v: unknown): v is T {
  return values.some((x) => x === v);
}

/** '"tcp" or "udp"': the values an enum row accepts, as messages list them. */
function either(values: readonly string[]): string {
  return values.map((x) => `"${x}"`).join(' or ');
}

/** Protocols with a datagram probe: the only ones a UDP route can name. */
const UDP_CAPABLE: readonly Protocol[] = DATAGRAM_PROBES.map((row) => row.protocol);

/** Names people reach for that are not protocol names here, and what to write instead. */
const PROTOCOL_HINTS: Readonly<Record<string, string>> = {
  https: 'write "tls" (sni-mux routes TLS without decrypting it)',
  ssl: 'did you mean "tls"?',
  openssh: 'did you mean "ssh"?',
  ovpn: 'did you mean "openvpn"?',
  vpn: 'did you mean "openvpn"?',
  socks: 'did you mean "socks5"?',
  postgresql: 'did you mean "postgres"?',
  pg: 'did you mean "postgres"?',
  h2: '"h2" is an ALPN name: write alpn = ["h2"] (it implies protocol "tls")',
  'http/1.1':
    '"http/1.1" is an ALPN name: write alpn = ["http/1.1"] for TLS, or protocol = "http" for plain HTTP',
  h2c: 'write protocol = "http"',
};

/** Validates `raw` (the i-th route, 0-based); problems go to `p`, and undefined means it had errors. */
export function validateRoute(p: Problems, item: unknown, i: number): RouteConfig | undefined {
  const path: KeyPath = ['route', i];
  if (!isTable(item)) {
    p.error(path, `expected a table, got ${describe(item)}; write each route as a [[route]] table`);
    return undefined;
  }
  const before = p.errors.length;
  // A misspelt key was reported with its fix; reporting the key it meant as missing would be noise.
  const suggested = checkKeys(p, path, 'route', item);
  const raw: Raw<'route'> = item;
  const at = (key: Key<'route'>): KeyPath => routePath(i, key);

  let name: string | undefined;
  if (raw.name === undefined) {
    if (!suggested.has('name')) {
      p.error(at('name'), `every route needs a name, used in logs and metrics, like name = "route${i + 1}"`);
    }
  } else {
    name = readString(p, at('name'), raw.name, '"blog"');
    if (name !== undefined && !NAME.test(name)) {
      const fixed = name.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 64) || `route${i + 1}`;
      p.error(
        at('name'),
        `"${name}" may only have letters, digits, ".", "_" and "-" (at most 64), like "${fixed}"`,
      );
    }
  }

  const protocol =
    raw.protocol === undefined
      ? undefined
      : readList(p, at('protocol'), raw.protocol, '"ssh" or ["tls", "http"]', (text, itemPath, nth) =>
          readProtocol(p, itemPath, text, nth),
        );
  const names = (key: 'sni' | 'host') =>
    raw[key] === undefined
      ? undefined
      : readList(p, at(key), raw[key], '["example.com", "*.example.com"]', (text, itemPath, nth) => {
          const r = parseNamePattern(text);
          if (r.kind === 'ok') return r.name;
          p.error(itemPath, r.message, text, nth);
          return undefined;
        });
  const sni = names('sni');
  const host = names('host');
  const alpn =
    raw.alpn === undefined
      ? undefined
      : readList(p, at('alpn'), raw.alpn, '["h2", "http/1.1"]', (text, itemPath, nth) => {
          // Compared exactly, as TLS does. Printable ASCII only: registered ALPN ids are, and TOML cannot carry raw bytes.
          if (/^[\x21-\x7e]{1,255}$/.test(text)) return text;
          p.error(itemPath, `"${text}" is not an ALPN protocol name, like "h2" or "http/1.1"`, text, nth);
          return undefined;
        });
  const source =
    raw.source === undefined
      ? undefined
      : readList(p, at('source'), raw.source, '["192.168.0.0/16", "2001:db8::/32"]', (text, itemPath, nth) =>
          cidr(p, itemPath, text, nth),
        );
  // Checked against the top-level listen once every route is read (validate.ts scopeRoutes).
  const listen =
    raw.listen === undefined
      ? undefined
      : readList(p, at('listen'), raw.listen, '["0.0.0.0:80"]', (text, itemPath, nth) =>
          endpoint(p, itemPath, text, nth, true),
        );
  const onTimeout =
    raw.on_timeout === undefined ? ON_TIMEOUT.default : readBool(p, at('on_timeout'), raw.on_timeout);
  const backends = readBackends(p, i, raw, suggested);
  const balance = raw.balance === undefined ? BALANCE.default : readBalance(p, at('balance'), raw.balance);
  if (balance === 'roundrobin' && backends?.length === 1) {
    p.warn(at('balance'), 'has no effect with one backend; list several in backends = [...], or remove it');
  }
  const idle = raw.idle === undefined ? undefined : readDuration(p, at('idle'), raw.idle, IDLE.zero);
  const proxyProtocol =
    raw.proxy_protocol === undefined
      ? undefined
      : readProxyProtocol(p, at('proxy_protocol'), raw.proxy_protocol);

  const transport = readTransportOf(p, i, raw, protocol);

  // sni/alpn only exist in TLS (QUIC carries TLS) and host only in HTTP, so those keys decide the protocol.
  const tlsKey = raw.sni !== undefined ? 'sni' : raw.alpn !== undefined ? 'alpn' : undefined;
  const httpKey = raw.host !== undefined ? 'host' : undefined;
  let implied: Protocol | undefined;
  if (tlsKey !== undefined && httpKey !== undefined) {
    p.error(
      path,
      `${tlsKey} matches TLS connections and host matches plain HTTP ones; no connection is both, so split this into two routes`,
    );
  } else if (tlsKey !== undefined || httpKey !== undefined) {
    implied = tlsKey !== undefined ? (transport === 'udp' ? 'quic' : 'tls') : 'http';
    const key = tlsKey ?? httpKey;
    const others = (protocol ?? []).filter((x) => x !== implied);
    if (others.length > 0) {
      const listed = others.map((x) => `"${x}"`).join(', ');
      p.error(
        at('protocol'),
        `${listed} contradicts ${key}, which only matches ${implied} connections; remove protocol (${key} implies "${implied}") or move ${listed} to a route of its own`,
      );
    }
  }

  if (backends !== undefined) checkTemplateKeys(p, i, raw, backends);
  const healthCheck =
    raw.health_check === undefined ? undefined : readHealthCheck(p, at('health_check'), raw, backends);

  if (p.errors.length > before) return undefined;
  const route: RouteConfig = {
    name: name!,
    index: i,
    onTimeout: onTimeout ?? false,
    backends: backends!,
    balance: balance!,
  };
  if (transport === 'udp') route.transport = 'udp';
  const line = locate(p.index, path)?.line;
  if (line !== undefined) route.line = line;
  const proto =
    implied !== undefined ? [implied] : protocol === undefined ? undefined : [...new Set(protocol)];
  if (proto !== undefined) route.protocol = proto;
  if (sni !== undefined) route.sni = sni;
  if (alpn !== undefined) route.alpn = alpn;
  if (host !== undefined) route.host = host;
  if (idle !== undefined) route.idle = idle;
  if (source !== undefined) route.source = source;
  if (listen !== undefined) route.listen = listen.map((e) => e.text);
  if (proxyProtocol !== undefined) route.proxyProtocol = proxyProtocol;
  if (backends!.some((b) => b.template !== undefined)) route.templated = true;
  if (healthCheck !== undefined) route.healthCheck = healthCheck;
  return route;
}

/** {sni} needs a route matching on sni, {host} one matching on host: otherwise there is no name to fill. */
function checkTemplateKeys(p: Problems, i: number, raw: Raw<'route'>, backends: readonly Endpoint[]): void {
  backends.forEach((b, j) => {
    for (const key of b.template?.keys ?? []) {
      if (raw[key] !== undefined) continue;
      const at = raw.backends !== undefined ? routePath(i, 'backends', j) : routePath(i, 'backend');
      p.error(
        at,
        `"${b.text}" uses {${key}}, but this route does not match on ${key}; add ${key} = ["*.example.com"], or write a fixed backend`,
        b.text,
      );
    }
  });
}

/** A backend address, or a template with placeholders in its host ("{sni.1}.lxd:443"). */
function backend(p: Problems, path: KeyPath, text: string, nth = 0): Endpoint | undefined {
  const colon = text.lastIndexOf(':');
  const t = parseTemplate(colon === -1 ? text : text.slice(0, colon));
  if (t.kind === 'none') return endpoint(p, path, text, nth);
  if (t.kind === 'error') {
    p.error(path, t.message, text, nth);
    return undefined;
  }
  if (colon === -1) {
    p.error(path, `"${text}" needs a port, like "${text}:443"`, text, nth);
    return undefined;
  }
  const r = parseEndpoint(`${t.sample}${text.slice(colon)}`);
  if (r.kind === 'error' || !isDnsName(t.sample)) {
    const why = r.kind === 'error' ? r.message : `"${t.sample}" is not a DNS name`;
    p.error(
      path,
      `"${text}": around its placeholders a backend template must be a DNS name (letters, digits, hyphens) and a port (read with each placeholder as "x": ${why})`,
      text,
      nth,
    );
    return undefined;
  }
  return { ...r.endpoint, text, host: text.slice(0, colon), template: t.template };
}

/**
 * The route's transport: as written, else udp when it names UDP-only protocols; undefined (reported)
 * when its keys cannot hold on that transport.
 */
function readTransportOf(
  p: Problems,
  i: number,
  raw: Raw<'route'>,
  protocol: readonly Protocol[] | undefined,
): Transport | undefined {
  const at = (key: Key<'route'>): KeyPath => routePath(i, key);
  let written: Transport | undefined;
  if (raw.transport !== undefined) {
    if (isOneOf(TRANSPORT.values, raw.transport)) written = raw.transport;
    else {
      const low = typeof raw.transport === 'string' ? raw.transport.toLowerCase() : '';
      const fix =
        low === 'quic' || low === 'h3'
          ? 'write protocol = "quic" (it implies "udp")'
          : `write ${either(TRANSPORT.values)}`;
      p.error(
        at('transport'),
        `expected ${either(TRANSPORT.values)}, got ${describe(raw.transport)}; ${fix}`,
      );
      return undefined;
    }
  }
  const listed = protocol ?? [];
  const udpOnly = listed.filter((x) => UDP_ONLY_PROTOCOLS.includes(x));
  const transport: Transport = written ?? (udpOnly.length > 0 ? 'udp' : 'tcp');
  const q = (xs: readonly string[]): string => xs.map((x) => `"${x}"`).join(', ');
  const before = p.errors.length;
  const tcpOnly = listed.filter((x) => !UDP_CAPABLE.includes(x));
  if (written === undefined && udpOnly.length > 0 && tcpOnly.length > 0) {
    p.error(
      at('protocol'),
      `${q(udpOnly)} only runs over UDP and ${q(tcpOnly)} over TCP; split this into a UDP route and a TCP route`,
    );
  } else if (transport === 'udp') {
    if (tcpOnly.length > 0) {
      p.error(
        at('protocol'),
        `${q(tcpOnly)} does not run over UDP here; a UDP route takes ${q(UDP_CAPABLE)}: move ${q(tcpOnly)} to a TCP route`,
      );
    }
    if (raw.host !== undefined) {
      p.error(
        at('host'),
        'host matches plain HTTP requests, which come over TCP; remove it from this UDP route',
      );
    }
    if (raw.on_timeout === true) {
      p.error(
        at('on_timeout'),
        'a UDP flow starts with a datagram, so it never times out before sending; remove on_timeout from this UDP route',
      );
    }
    if (raw.proxy_protocol !== undefined) {
      p.error(
        at('proxy_protocol'),
        'PROXY headers are sent on TCP connections only; remove proxy_protocol from this UDP route',
      );
    }
  } else if (udpOnly.length > 0) {
    p.error(at('transport'), `${q(udpOnly)} only runs over UDP; remove transport = "tcp"`);
  }
  return p.errors.length > before ? undefined : transport;
}

function readProtocol(p: Problems, path: KeyPath, text: string, nth: number): Protocol | undefined {
  const known = PROTOCOLS.find((x) => x === text);
  if (known !== undefined) return known;
  const hint =
    PROTOCOLS.find((x) => x === text.toLowerCase()) !== undefined
      ? `did you mean "${text.toLowerCase()}"?`
      : (protocolHint(text) ?? `known protocols: ${PROTOCOLS.join(', ')}`);
  p.error(path, `"${text}" is not a protocol sni-mux detects; ${hint}`, text, nth);
  return undefined;
}

function protocolHint(text: string): string | undefined {
  const hint = PROTOCOL_HINTS[text.toLowerCase()];
  if (hint !== undefined) return hint;
  const near = closest(text, PROTOCOLS);
  return near === undefined ? undefined : `did you mean "${near}"?`;
}

export function cidr(p: Problems, path: KeyPath, text: string, nth = 0): Cidr | undefined {
  const r = parseCidr(text);
  if (r.kind === 'ok') return r.cidr;
  p.error(path, r.message, text, nth);
  return undefined;
}

export function endpoint(
  p: Problems,
  path: KeyPath,
  text: string,
  nth = 0,
  anyPort = false,
): Endpoint | undefined {
  const r = parseEndpoint(text, anyPort);
  if (r.kind === 'ok') return r.endpoint;
  p.error(path, r.message, text, nth);
  return undefined;
}

function readBackends(
  p: Problems,
  i: number,
  raw: Raw<'route'>,
  suggested: Set<string>,
): Endpoint[] | undefined {
  const path: KeyPath = ['route', i];
  const one = raw.backend;
  const many = raw.backends;
  if (one !== undefined && many !== undefined) {
    p.error(
      routePath(i, 'backends'),
      'both backend and backends are set; keep one (backends = [...] for several, tried in turn)',
    );
    return undefined;
  }
  if (one === undefined && many === undefined) {
    if (!suggested.has('backend') && !suggested.has('backends')) {
      p.error(
        path,
        'needs a backend to send connections to; add backend = "host:port", like backend = "127.0.0.1:443"',
      );
    }
    return undefined;
  }
  if (one !== undefined) {
    if (Array.isArray(one)) {
      p.error(
        routePath(i, 'backend'),
        'backend takes one address; for several, write backends = [...] (tried in turn)',
      );
      return undefined;
    }
    const text = readString(p, routePath(i, 'backend'), one, '"127.0.0.1:443"');
    const e = text === undefined ? undefined : backend(p, routePath(i, 'backend'), text);
    return e === undefined ? undefined : [e];
  }
  return readList(
    p,
    routePath(i, 'backends'),
    many,
    '["10.0.0.1:443", "10.0.0.2:443"]',
    (text, itemPath, nth) => backend(p, itemPath, text, nth),
  );
}

function readHealthCheck(
  p: Problems,
  path: KeyPath,
  raw: Raw<'route'>,
  backends: readonly Endpoint[] | undefined,
): HealthCheck | undefined {
  const v = raw.health_check;
  if (!isOneOf(CHECK.values, v)) {
    const fix = v === true || v === 'tcp' ? ' (a TCP connect is "connect")' : '';
    p.error(path, `expected ${either(CHECK.values)}, got ${describe(v)}${fix}`);
    return undefined;
  }
  // The tls check's ClientHello carries the route's first sni: without one there is no name to ask for.
  if (v === 'tls' && raw.sni === undefined) {
    p.error(
      path,
      '"tls" sends a ClientHello for the route\'s first sni, and this route has none; add sni, or use "connect"',
    );
    return undefined;
  }
  if (backends?.every((b) => b.template !== undefined)) {
    p.error(
      path,
      'checks configured backends, and this route only has templates (their names come from clients); remove it',
    );
    return undefined;
  }
  return v;
}

function readBalance(p: Problems, path: KeyPath, v: unknown): Balance | undefined {
  if (isOneOf(BALANCE.values, v)) return v;
  const guess = typeof v === 'string' && /^(rr|round.?robin)$/i.test(v.trim()) ? 'roundrobin' : undefined;
  const fix = guess === undefined ? `write ${either(BALANCE.values)}` : `write balance = "${guess}"`;
  p.error(path, `expected ${either(BALANCE.values)}, got ${describe(v)}; ${fix}`);
  return undefined;
}

function readProxyProtocol(p: Problems, path: KeyPath, v: unknown): ProxyProtocolVersion | undefined {
  if (isOneOf(PROXY.values, v)) return v;
  const guess = v === 1 || v === '1' || v === 'V1' ? 'v1' : 'v2';
  p.error(path, `expected ${either(PROXY.values)}, got ${describe(v)}; write proxy_protocol = "${guess}"`);
  return undefined;
}
