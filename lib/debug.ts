// Debug and trace lines for one connection, answering "why wasn't my client routed?": what detection
// saw, each probe's verdict, why each route did not match, each backend tried; at trace, socket events.
// The mux creates one only when the log level is debug or trace, and connections call it through
// `ctx.debug?.…(…)`, whose arguments are not even evaluated when it is absent: nothing is built otherwise.
import type { Endpoint, RouteConfig } from './config/types.js';
import type { Connection } from './connection.js';
import { PROBES } from './detect/detect.js';
import type { Detection } from './detect/types.js';
import type { Logger } from './log.js';
import { routeMismatch } from './route/router.js';

/** First bytes shown in the detect line: enough for any signature, short enough to read. */
export const FIRST_BYTES_SHOWN = 64;

export class ConnectionDebug {
  constructor(
    private readonly log: Logger,
    private readonly routes: readonly RouteConfig[],
    /** Socket events too (log level trace). */
    private readonly trace: boolean,
  ) {}

  /** Detection has decided (or given up): the first bytes, then every probe's verdict in table order. */
  detect(c: Connection, bytes: Uint8Array, outcome: string): void {
    this.log.debug(
      {
        conn: c.id,
        listener: c.listener,
        client: c.clientAddress,
        bytes: bytes.length,
        first_bytes: Buffer.from(
          bytes.buffer,
          bytes.byteOffset,
          Math.min(bytes.length, FIRST_BYTES_SHOWN),
        ).toString('hex'),
        probes: probeVerdicts(bytes),
      },
      `detect: ${outcome}`,
    );
  }

  /** The routing decision: each route in file order up to the one chosen, and why it did not match. */
  route(c: Connection, d: Detection | null, chosen: RouteConfig | undefined): void {
    const candidates: { route: string; result: string }[] = [];
    for (const r of this.routes) {
      const result = r === chosen ? 'match' : whyNot(r, d, c);
      candidates.push({ route: r.name, result });
      if (r === chosen) break;
    }
    const what =
      d === null
        ? 'unrecognised bytes'
        : [
            d.protocol,
            d.sni && `sni=${d.sni}`,
            d.alpn && `alpn=${d.alpn.join(',')}`,
            d.host && `host=${d.host}`,
          ]
            .filter(Boolean)
            .join(' ');
    this.log.debug(
      { conn: c.id, listener: c.listener, candidates },
      chosen === undefined ? `route: none matched ${what}` : `route: ${chosen.name} for ${what}`,
    );
  }

  /** A client that sent nothing within timeouts.detect, and the on_timeout route it went to, if any. */
  silent(c: Connection, chosen: RouteConfig | undefined): void {
    this.log.debug(
      { conn: c.id, listener: c.listener },
      chosen === undefined
        ? 'route: the client sent nothing and no on_timeout route takes it'
        : `route: ${chosen.name} (on_timeout) for a client that sent nothing`,
    );
  }

  /** The backends of the chosen route, in the order they will be tried. */
  connecting(c: Connection, backends: readonly Endpoint[]): void {
    this.log.debug(
      { conn: c.id, route: c.route?.name, backends: backends.map((b) => b.text) },
      `connect: trying ${backends.length === 1 ? 'its backend' : `${backends.length} backends in turn`}`,
    );
  }

  connected(c: Connection, backend: Endpoint, ms: number): void {
    this.log.debug(
      { conn: c.id, route: c.route?.name, backend: backend.text, connect_ms: Math.round(ms * 1000) / 1000 },
      'connect: backend connected',
    );
  }

  /** trace: a socket event of the client connection before it is relayed. */
  socket(c: Connection, event: string, detail?: number | string): void {
    if (!this.trace) return;
    this.log.trace({ conn: c.id, listener: c.listener, client: c.clientAddress, detail }, `socket: ${event}`);
  }
}

/** What each probe says about these bytes, in the order detect() asks them. */
export function probeVerdicts(bytes: Uint8Array): string[] {
  return PROBES.map(({ protocol, probe }) => {
    const r = probe(bytes);
    return r.kind === 'no-match' || r.kind === 'invalid'
      ? `${protocol}: ${r.kind} (${r.reason})`
      : `${protocol}: ${r.kind}`;
  });
}

/** Why a route did not take the connection, in words. */
export function whyNot(
  r: RouteConfig,
  d: Detection | null,
  c: Pick<Connection, 'listener' | 'source' | 'clientAddress'>,
): string {
  const key = routeMismatch(r, d, c.source, c.listener);
  // Unrecognised bytes fail sni, alpn and host for want of a protocol: say that.
  if (d === null && key !== undefined && key !== 'listen' && key !== 'source')
    return 'protocol: no probe recognised the bytes, and this route needs a protocol';
  switch (key) {
    case undefined:
      return 'match';
    case 'listen':
      return `listen: only on ${r.listen!.join(', ')}`;
    case 'source':
      return `source: ${c.clientAddress} is not in ${r.source!.map((x) => x.text).join(', ')}`;
    case 'protocol':
      return `protocol: ${d!.protocol} is not ${(r.protocol ?? []).join(' or ')}`;
    case 'sni':
      if (d?.protocol !== 'tls' || d.sni === undefined) return 'sni: the ClientHello has no server_name';
      return `sni: ${d.sni} matches none of ${r.sni!.join(', ')}`;
    case 'alpn':
      if (d?.alpn === undefined)
        return `alpn: the client offered no ALPN (route wants ${r.alpn!.join(', ')})`;
      return `alpn: offered ${d.alpn.join(', ')}, route wants ${r.alpn!.join(', ')}`;
    case 'host':
      if (d?.host === undefined) return 'host: the request has no Host header';
      return `host: ${d.host} matches none of ${r.host!.join(', ')}`;
  }
}
