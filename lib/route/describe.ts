// Renders the route table the way `sni-mux check` prints it: what each route matches and where it goes.
import { formatDuration } from '../config/duration.js';
import { keysOf, spec } from '../config/schema.js';
import type { Config, RouteConfig } from '../config/types.js';

/** The route's match keys in schema order: "tls sni=a.example,b.example on_timeout". */
export function describeMatch(r: RouteConfig): string {
  const fields = r as unknown as Readonly<Record<string, unknown>>;
  const parts: string[] = [];
  for (const key of keysOf('route')) {
    const row = spec('route', key);
    const v = row.route === 'match' ? fields[row.field] : undefined;
    if (v === true) parts.push(key);
    if (!Array.isArray(v)) continue;
    const items = v.map((x: string | { text: string }) => (typeof x === 'string' ? x : x.text));
    parts.push(row.type === 'protocols' ? items.join('|') : `${key}=${items.join(',')}`);
  }
  return parts.length === 0 ? '(anything: catch-all)' : parts.join(' ');
}

function describeBackends(r: RouteConfig): string {
  const notes: string[] = [];
  if (r.balance === 'roundrobin') notes.push('roundrobin');
  if (r.proxyProtocol) notes.push(`proxy ${r.proxyProtocol}`);
  if (r.idle !== undefined) notes.push(`idle ${formatDuration(r.idle)}`);
  const list = r.backends.map((b) => b.text).join(', ');
  return notes.length === 0 ? list : `${list} (${notes.join(', ')})`;
}

/** One row of the route table: what `check` prints and the admin listener's /routes serves. */
export interface RouteRow {
  /** 1-based position: first match wins. */
  readonly n: number;
  readonly route: string;
  readonly matches: string;
  readonly backends: string;
}

export function routeRows(config: Config): RouteRow[] {
  return config.routes.map((r, i) => ({
    n: i + 1,
    route: r.name,
    matches: describeMatch(r),
    backends: describeBackends(r),
  }));
}

export function describeRoutes(config: Config): string {
  const rows = routeRows(config).map((r) => [String(r.n), r.route, r.matches, r.backends]);
  const header = ['#', 'route', 'matches', 'backends'];
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((row) => row[col]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, col) => (col === cells.length - 1 ? cell : cell.padEnd(widths[col]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
