// Picks the route for a detected connection: routes in file order, first full match wins.
import type { Cidr, RouteConfig } from '../config/types.js';
import type { Detection, Protocol } from '../detect/types.js';
import { cidrContains } from '../net/address.js';
import { NameIndex, nameMatches } from './names.js';

export class Router {
  readonly routes: readonly RouteConfig[];
  private readonly sni = new NameIndex();
  private readonly host = new NameIndex();
  /** Routes without sni or host keys, ascending: they must be checked for every connection. */
  private readonly unnamed: number[] = [];
  private readonly timeoutRoute: RouteConfig | undefined;
  private readonly scratch: (readonly number[])[] = [];

  constructor(routes: readonly RouteConfig[]) {
    this.routes = routes;
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
    const name =
      detection === null ? undefined : detection.protocol === 'tls' ? detection.sni : detection.host;
    if (name !== undefined) {
      const lists = this.scratch;
      lists.length = 0;
      (detection!.protocol === 'tls' ? this.sni : this.host).lookup(name, lists);
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

/** Every key of the route holds for this connection. */
export function routeMatches(r: RouteConfig, d: Detection | null, source: Uint8Array | undefined): boolean {
  if (!sourceMatches(r.source, source)) return false;
  if (d === null) return r.protocol === undefined && !r.sni && !r.alpn && !r.host;
  if (r.protocol !== undefined && !includesProtocol(r.protocol, d.protocol)) return false;
  if (r.sni && (d.protocol !== 'tls' || d.sni === undefined || !anyNameMatches(r.sni, d.sni))) return false;
  if (r.alpn && (d.protocol !== 'tls' || d.alpn === undefined || !intersects(r.alpn, d.alpn))) return false;
  if (r.host && (d.protocol !== 'http' || d.host === undefined || !anyNameMatches(r.host, d.host)))
    return false;
  return true;
}

function sourceMatches(cidrs: readonly Cidr[] | undefined, source: Uint8Array | undefined): boolean {
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
