// Validates one [[route]] table into a RouteConfig: match keys, implied protocol, backends.
import type { Protocol } from '../detect/types.js';
import { PROTOCOLS } from '../detect/types.js';
import { parseCidr, parseEndpoint } from '../net/address.js';
import { checkKeys, ROUTE_KEYS } from './keys.js';
import type { KeyPath } from './locate.js';
import { locate } from './locate.js';
import { parseNamePattern } from './names.js';
import type { Problems, Table } from './read.js';
import { describe, isTable, readBool, readDuration, readList, readString } from './read.js';
import { closest } from './suggest.js';
import type { Balance, Cidr, Endpoint, ProxyProtocolVersion, RouteConfig } from './types.js';

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

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
export function validateRoute(p: Problems, raw: unknown, i: number): RouteConfig | undefined {
  const path: KeyPath = ['route', i];
  if (!isTable(raw)) {
    p.error(path, `expected a table, got ${describe(raw)}; write each route as a [[route]] table`);
    return undefined;
  }
  const before = p.errors.length;
  // A misspelt key was reported with its fix; reporting the key it meant as missing would be noise.
  const suggested = checkKeys(p, path, 'route', raw, ROUTE_KEYS);
  const at = (key: string): KeyPath => [...path, key];

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
  const onTimeout = raw.on_timeout === undefined ? false : readBool(p, at('on_timeout'), raw.on_timeout);
  const backends = readBackends(p, path, raw, suggested);
  const balance = raw.balance === undefined ? 'first' : readBalance(p, at('balance'), raw.balance);
  if (balance === 'roundrobin' && backends?.length === 1) {
    p.warn(at('balance'), 'has no effect with one backend; list several in backends = [...], or remove it');
  }
  const idle = raw.idle === undefined ? undefined : readDuration(p, at('idle'), raw.idle, true);
  const proxyProtocol =
    raw.proxy_protocol === undefined
      ? undefined
      : readProxyProtocol(p, at('proxy_protocol'), raw.proxy_protocol);

  // sni/alpn only exist in TLS and host only in HTTP, so those keys decide the protocol.
  const tlsKey = raw.sni !== undefined ? 'sni' : raw.alpn !== undefined ? 'alpn' : undefined;
  const httpKey = raw.host !== undefined ? 'host' : undefined;
  let implied: Protocol | undefined;
  if (tlsKey !== undefined && httpKey !== undefined) {
    p.error(
      path,
      `${tlsKey} matches TLS connections and host matches plain HTTP ones; no connection is both, so split this into two routes`,
    );
  } else if (tlsKey !== undefined || httpKey !== undefined) {
    implied = tlsKey !== undefined ? 'tls' : 'http';
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

  if (p.errors.length > before) return undefined;
  const route: RouteConfig = {
    name: name!,
    index: i,
    onTimeout: onTimeout ?? false,
    backends: backends!,
    balance: balance!,
  };
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
  if (proxyProtocol !== undefined) route.proxyProtocol = proxyProtocol;
  return route;
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
  path: KeyPath,
  raw: Table,
  suggested: Set<string>,
): Endpoint[] | undefined {
  const one = raw.backend;
  const many = raw.backends;
  if (one !== undefined && many !== undefined) {
    p.error(
      [...path, 'backends'],
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
        [...path, 'backend'],
        'backend takes one address; for several, write backends = [...] (tried in turn)',
      );
      return undefined;
    }
    const text = readString(p, [...path, 'backend'], one, '"127.0.0.1:443"');
    const e = text === undefined ? undefined : endpoint(p, [...path, 'backend'], text);
    return e === undefined ? undefined : [e];
  }
  return readList(p, [...path, 'backends'], many, '["10.0.0.1:443", "10.0.0.2:443"]', (text, itemPath, nth) =>
    endpoint(p, itemPath, text, nth),
  );
}

function readBalance(p: Problems, path: KeyPath, v: unknown): Balance | undefined {
  if (v === 'first' || v === 'roundrobin') return v;
  const guess = typeof v === 'string' && /^(rr|round.?robin)$/i.test(v.trim()) ? 'roundrobin' : undefined;
  const fix = guess === undefined ? 'write "first" or "roundrobin"' : `write balance = "${guess}"`;
  p.error(path, `expected "first" or "roundrobin", got ${describe(v)}; ${fix}`);
  return undefined;
}

function readProxyProtocol(p: Problems, path: KeyPath, v: unknown): ProxyProtocolVersion | undefined {
  if (v === 'v1' || v === 'v2') return v;
  const guess = v === 1 || v === '1' || v === 'V1' ? 'v1' : 'v2';
  p.error(path, `expected "v1" or "v2", got ${describe(v)}; write proxy_protocol = "${guess}"`);
  return undefined;
}
