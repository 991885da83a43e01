// Renders the route table the way `sni-mux check` prints it: what each route matches and where it goes.
import { formatDuration } from '../config/duration.js';
import type { Config, RouteConfig } from '../config/types.js';

export function describeMatch(r: RouteConfig): string {
  const parts: string[] = [];
  if (r.protocol) parts.push(r.protocol.join('|'));
  if (r.sni) parts.push(`sni=${r.sni.join(',')}`);
  if (r.alpn) parts.push(`alpn=${r.alpn.join(',')}`);
  if (r.host) parts.push(`host=${r.host.join(',')}`);
  if (r.source) parts.push(`source=${r.source.map((c) => c.text).join(',')}`);
  if (r.onTimeout) parts.push('on_timeout');
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

export function describeRoutes(config: Config): string {
  const rows = config.routes.map((r, i) => [String(i + 1), r.name, describeMatch(r), describeBackends(r)]);
  const header = ['#', 'route', 'matches', 'backends'];
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((row) => row[col]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, col) => (col === cells.length - 1 ? cell : cell.padEnd(widths[col]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
