// Picks the route for a detected connection: routes in file order, first full match wins.
// One router per listener: routes scoped to other listeners (route key `listen`) are left out up front,
// so scoping costs nothing per connection.
import type { MatchList } from '../config/schema.js';
import type { Cidr, RouteConfig } from '../config/types.js';
import type { Detection, Protocol } from '../detect/types.js';
import { nameMatches } from '../net/hostname.js';
import { cidrContains } from '../net/ip.js';
import { NameIndex } from './names.js';

export class Router {
  readonly routes: readonly RouteConfig[];
  private readonly sni = new NameIndex();
  private readonly host = new NameIndex();
  /** Routes without sni or host keys, ascending: they must be checked for every connection. */
  private readonly unnamed: number[] = [];
  private readonly timeoutRoute: RouteConfig | undefined;
  private readonly scratch: (readonly number[])[] = [];

  /** The routes `listener` (a top-level listen text) takes; all routes when undefined. */
  constructor(routes: readonly RouteConfig[], listener?: string) {
    this.routes = listener === undefined ? routes : routes.filter((r) => takesListener(r, listener));
    routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.sni) for (const name of r.sni) this.sni.add(name, i);
      if (r.host) for (const name of r.host) this.host.add(name, i);
      if (!r.sni && !r.host) this.unnamed.push(i);
    }
    this.timeoutRoute = routes.find((r) => r.onTimeout);
  }

  /**
   * The first route matching a detection, or undefined.
   * detection null means "bytes matched no known protocol": only routes without protocol keys can take it.
   */
  select(detection: Detection | null, source: Uint8Array | undefined): RouteConfig | undefined {
    let best = this.routes.length;
    const tls = detection !== null && hasHello(detection.protocol);
    const name = detection === null ? undefined : tls ? detection.sni : detection.host;
    if (name !== undefined) {
      const lists = this.scratch;
      lists.length = 0;
      (tls ? this.sni : this.host).lookup(name, lists);
      for (const list of lists) {
        for (const i of list) {
          if (i >= best) break;
          if (routeMatches(this.routes[i]!, detection, source)) {
            best = i;
            break;
          }
        }
      }
    }
    for (const i of this.unnamed) {
      if (i >= best) break;
      if (routeMatches(this.routes[i]!, detection, source)) {
        best = i;
        break;
      }
    }
    return this.routes[best];
  }

  /** The on_timeout route, for a client that sent nothing within timeouts.detect. */
  selectOnTimeout(source: Uint8Array | undefined): RouteConfig | undefined {
    const r = this.timeoutRoute;
    return r !== undefined && sourceMatches(r.source, source) ? r : undefined;
  }
}

/** Whether a route takes connections accepted on `listener` (a top-level listen text). */
export function takesListener(r: RouteConfig, listener: string): boolean {
  return r.listen === undefined || r.listen.includes(listener);
}

/** Every key of the route holds for this connection (listen aside: each listener's Router holds only its routes). */
export function routeMatches(r: RouteConfig, d: Detection | null, source: Uint8Array | undefined): boolean {
  return routeMismatch(r, d, source) === undefined;
}

/** A route key that can fail to match a connection: the schema's match lists. */
export type MatchKey = MatchList;

/**
 * The first key of the route that fails for this connection, or undefined if all hold: the one why-not
 * that `explain` and the debug log report. `listener` (a top-level listen text) is checked when given.
 */
export function routeMismatch(
  r: RouteConfig,
  d: Detection | null,
  source: Uint8Array | undefined,
  listener?: string,
): MatchKey | undefined {
  if (listener !== undefined && !takesListener(r, listener)) return 'listen';
  if (!sourceMatches(r.source, source)) return 'source';
  if (d === null) {
    return r.protocol !== undefined
      ? 'protocol'
      : r.sni
        ? 'sni'
        : r.alpn
          ? 'alpn'
          : r.host
            ? 'host'
            : undefined;
  }
  if (r.protocol !== undefined && !includesProtocol(r.protocol, d.protocol)) return 'protocol';
  if (r.sni && (!hasHello(d.protocol) || d.sni === undefined || !anyNameMatches(r.sni, d.sni))) return 'sni';
  if (r.alpn && (!hasHello(d.protocol) || d.alpn === undefined || !intersects(r.alpn, d.alpn))) return 'alpn';
  if (r.host && (d.protocol !== 'http' || d.host === undefined || !anyNameMatches(r.host, d.host)))
    return 'host';
  return undefined;
}

/** TLS, and QUIC which carries a TLS ClientHello in its Initials: the protocols with sni and alpn. */
function hasHello(p: Protocol): boolean {
  return p === 'tls' || p === 'quic';
}

/** The client address is in one of the CIDRs (or the route has none). */
export function sourceMatches(cidrs: readonly Cidr[] | undefined, source: Uint8Array | undefined): boolean {
  if (cidrs === undefined) return true;
  if (source === undefined) return false;
  for (const c of cidrs) if (cidrContains(c, source)) return true;
  return false;
}

function includesProtocol(list: readonly Protocol[], p: Protocol): boolean {
  for (const x of list) if (x === p) return true;
  return false;
}

function anyNameMatches(patterns: readonly string[], name: string): boolean {
  for (const p of patterns) if (nameMatches(p, name)) return true;
  return false;
}

function intersects(wanted: readonly string[], offered: readonly string[]): boolean {
  for (const w of wanted) for (const o of offered) if (w === o) return true;
  return false;
}
