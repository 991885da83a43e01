// Why a connection would go where it goes: the real Router and template expansion run on one detection, in words.

import type { Config, Endpoint, RouteConfig } from '../config/types.js';
import { Balancer } from '../connect/balance.js';
import { expandBackends } from '../connect/template.js';
import type { Detection } from '../detect/types.js';
import { nameMatches } from '../net/hostname.js';
import { type MatchKey, Router, routeMismatch } from './router.js';

/**
 * What a connection looked like: its detection (null: bytes no probe recognised), client address, and the
 * listen address that accepted it (a top-level listen text; none: every route is tried, `listen` or not).
 */
export interface ExplainInput {
  detection: Detection | null;
  source?: { text: string; bytes: Uint8Array };
  listener?: string;
}

export interface Explanation {
  /** The route the mux would choose, if any. */
  route: RouteConfig | undefined;
  /** The backends it would try, in order, templates expanded; a reason string when refused as bad_backend. */
  backends: readonly Endpoint[] | string | undefined;
  /** The report, one line per fact. */
  lines: string[];
}

/** Runs routing as the mux does (Router.select, expandBackends, Balancer.order) and says why at each step. */
export function explain(config: Config, input: ExplainInput): Explanation {
  const d = input.detection;
  const bytes = input.source?.bytes;
  const listener = input.listener;
  const route = new Router(config.routes, listener).select(d, bytes);
  const lines = [
    `detected: ${describeDetection(d)}`,
    `source: ${input.source?.text ?? '(none given: routes with source do not match)'}`,
  ];
  if (listener !== undefined) lines.push(`listener: ${listener}`);
  const end = route?.index ?? config.routes.length;
  for (let i = 0; i < end; i++) {
    const r = config.routes[i]!;
    const key = routeMismatch(r, d, bytes, listener);
    lines.push(
      `  ${label(r)}: ${key === undefined ? 'matches' : whyNot(r, key, d, input.source?.text, listener)}`,
    );
  }
  if (route === undefined) {
    const alert = d?.protocol === 'tls' ? ' (a TLS client is first sent an unrecognized_name alert)' : '';
    lines.push(`no route matches: the connection is refused as no_route${alert}`);
    return { route, backends: undefined, lines };
  }
  lines.push(
    `route: ${label(route)}${route.line === undefined ? '' : ` (line ${route.line})`}, decided by ${decidedBy(route, d, input.source?.text)}`,
  );
  const list = route.templated ? expandBackends(route, d?.sni, d?.host) : route.backends;
  if (typeof list === 'string') {
    lines.push(`backends: none: the connection is refused as bad_backend (${list})`);
    return { route, backends: list, lines };
  }
  // A fresh balancer: no backend is known to be down here, as in a mux that just started.
  const order = new Balancer(config.routes, config.timeouts.backendDown).order(route, 0, list);
  const note =
    route.balance === 'roundrobin' && order.length > 1
      ? ' (roundrobin: each new connection starts one further)'
      : '';
  lines.push(`backends, tried in order: ${order.map(describeBackend).join(', ')}${note}`);
  return { route, backends: order, lines };
}

function label(r: RouteConfig): string {
  return `route[${r.index + 1}] "${r.name}"`;
}

function describeBackend(e: Endpoint): string {
  return e.origin === undefined ? e.text : `${e.text} (from ${e.origin})`;
}

function describeDetection(d: Detection | null): string {
  if (d === null)
    return 'no protocol recognised (only routes without protocol, sni, alpn or host keys take it)';
  const parts: string[] = [d.protocol];
  if (d.sni !== undefined) parts.push(`sni=${d.sni}`);
  if (d.alpn !== undefined && d.alpn.length > 0) parts.push(`alpn=${d.alpn.join(',')}`);
  if (d.host !== undefined) parts.push(`host=${d.host}`);
  return parts.join(' ');
}

const quoted = (list: readonly string[]): string => list.map((x) => `"${x}"`).join(', ');

function whyNot(
  r: RouteConfig,
  key: MatchKey,
  d: Detection | null,
  source: string | undefined,
  listener: string | undefined,
): string {
  switch (key) {
    case 'listen':
      return `listen ${quoted(r.listen!)}: accepted on ${listener}`;
    case 'source': {
      const cidrs = r.source!.map((c) => c.text).join(', ');
      return source === undefined
        ? `source ${cidrs}: no --source given`
        : `source ${cidrs} does not contain ${source}`;
    }
    case 'protocol':
      return `protocol ${r.protocol!.join('|')} ≠ ${d === null ? 'unrecognised bytes' : d.protocol}`;
    case 'sni':
    case 'host': {
      const want = key === 'sni' ? 'tls' : 'http';
      const got = key === 'sni' ? d?.sni : d?.host;
      if (d === null || d.protocol !== want)
        return `${key} needs ${want}, this is ${d?.protocol ?? 'unrecognised bytes'}`;
      if (got === undefined)
        return `${key}: the ${key === 'sni' ? 'ClientHello has no server name' : 'request has no Host'}`;
      return `${key} ${quoted(r[key]!)} ≠ "${got}"`;
    }
    case 'alpn':
      if (d === null || d.protocol !== 'tls')
        return `alpn needs tls, this is ${d?.protocol ?? 'unrecognised bytes'}`;
      if (d.alpn === undefined || d.alpn.length === 0)
        return `alpn ${quoted(r.alpn!)}: the client offered none`;
      return `alpn ${quoted(r.alpn!)} not among the offered ${quoted(d.alpn)}`;
  }
}

function decidedBy(r: RouteConfig, d: Detection | null, source: string | undefined): string {
  const why: string[] = [];
  // sni, alpn and host imply their protocol: name it only when it was a key of its own.
  if (r.protocol !== undefined && !r.sni && !r.alpn && !r.host) why.push(`protocol ${d?.protocol}`);
  if (r.sni && d?.sni !== undefined)
    why.push(`sni "${r.sni.find((p) => nameMatches(p, d.sni!))}" matches "${d.sni}"`);
  if (r.alpn && d?.alpn !== undefined) why.push(`alpn "${r.alpn.find((a) => d.alpn!.includes(a))}" offered`);
  if (r.host && d?.host !== undefined)
    why.push(`host "${r.host.find((p) => nameMatches(p, d.host!))}" matches "${d.host}"`);
  if (r.source !== undefined) why.push(`source ${r.source.map((c) => c.text).join(', ')} contains ${source}`);
  return why.length === 0 ? 'having no match keys (a catch-all)' : why.join(', ');
}
