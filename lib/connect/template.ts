// Backends named from the detection: "{sni.1}.lxd:443" parsed once at config load, expanded per connection.
import type { Endpoint, RouteConfig } from '../config/types.js';
import { isDnsName } from '../net/hostname.js';

/** A detected name a template reads: the TLS server name or the HTTP Host. */
export type TemplateKey = 'sni' | 'host';

/** Literal text, or a placeholder: the whole name (label 0) or its N-th label from the left (1-based). */
export type TemplatePart = string | { readonly key: TemplateKey; readonly label: number };

/** A backend host with placeholders; the port is fixed. */
export interface BackendTemplate {
  readonly parts: readonly TemplatePart[];
  /** The keys its placeholders read: the route must match on each (`check` says so otherwise). */
  readonly keys: readonly TemplateKey[];
}

export type TemplateResult =
  | { kind: 'none' }
  | {
      kind: 'ok';
      template: BackendTemplate /** The host with each placeholder as one label "x", to check its syntax. */;
      sample: string;
    }
  | { kind: 'error'; message: string };

const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN = /^(sni|host)(?:\.([1-9][0-9]?))?$/;
/** The placeholders, for messages. */
export const PLACEHOLDERS = '{sni}, {sni.N}, {host} or {host.N}';

/** Parses the host part of a backend; 'none' when it has no braces (a plain address). */
export function parseTemplate(host: string): TemplateResult {
  if (!host.includes('{') && !host.includes('}')) return { kind: 'none' };
  const parts: TemplatePart[] = [];
  const keys = new Set<TemplateKey>();
  let sample = '';
  let at = 0;
  for (const m of host.matchAll(PLACEHOLDER)) {
    const known = KNOWN.exec(m[1]!);
    if (known === null) {
      return { kind: 'error', message: `"{${m[1]}}" is not a placeholder; write ${PLACEHOLDERS}` };
    }
    const literal = host.slice(at, m.index);
    if (literal !== '') parts.push(literal);
    const key = known[1] as TemplateKey;
    parts.push({ key, label: known[2] === undefined ? 0 : Number(known[2]) });
    keys.add(key);
    sample += `${literal}x`;
    at = m.index! + m[0].length;
  }
  const tail = host.slice(at);
  if (tail !== '') parts.push(tail);
  sample += tail;
  if (sample.includes('{') || sample.includes('}')) {
    return {
      kind: 'error',
      message: `"${host}" has an unmatched brace; write placeholders as ${PLACEHOLDERS}`,
    };
  }
  return { kind: 'ok', template: { parts, keys: [...keys] }, sample };
}

export type Expansion = { kind: 'ok'; name: string } | { kind: 'bad'; reason: string };

/**
 * The host name for one connection. Names come from the client, so the result must be a plain DNS
 * name: letters, digits and inner hyphens per label, never an IP literal, or the connection is refused.
 */
export function expandHost(t: BackendTemplate, sni: string | undefined, host: string | undefined): Expansion {
  let name = '';
  for (const part of t.parts) {
    if (typeof part === 'string') {
      name += part;
      continue;
    }
    const value = part.key === 'sni' ? sni : host;
    if (value === undefined || value === '')
      return { kind: 'bad', reason: `no ${part.key} to fill {${part.key}}` };
    if (part.label === 0) {
      name += value;
      continue;
    }
    const label = value.split('.')[part.label - 1];
    if (label === undefined) {
      return {
        kind: 'bad',
        reason: `${part.key} "${value}" has no label ${part.label} for {${part.key}.${part.label}}`,
      };
    }
    name += label;
  }
  return isDnsName(name)
    ? { kind: 'ok', name }
    : { kind: 'bad', reason: `"${clip(name)}" is not a DNS name` };
}

/**
 * The route's backends for one connection, placeholders filled in; each expanded endpoint keeps the
 * configured text in `origin` (metric labels stay bounded by the config). A reason string if one is bad.
 */
export function expandBackends(
  route: RouteConfig,
  sni: string | undefined,
  host: string | undefined,
): Endpoint[] | string {
  const out: Endpoint[] = [];
  for (const b of route.backends) {
    if (b.template === undefined) {
      out.push(b);
      continue;
    }
    const e = expandHost(b.template, sni, host);
    if (e.kind === 'bad') return e.reason;
    out.push({ host: e.name, port: b.port, text: `${e.name}:${b.port}`, origin: b.text });
  }
  return out;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
