// The PROXY header a route with proxy_protocol sends its backend, from what the connection knows.
import type { ProxyProtocolVersion } from '../config/types.js';
import { ipBytes } from '../net/ip.js';
import { buildProxyHeader } from './header.js';
import type { ProxyHeader } from './parse.js';

/** What the header is made of; a Connection has all of it. */
export interface OutboundFacts {
  /** The client as routes see it (a trusted PROXY header's source, if one was read). */
  readonly source: Uint8Array | undefined;
  readonly clientPort: number;
  /** The trusted peer's header, whose destination is the address the client really connected to. */
  readonly proxyHeader: ProxyHeader | undefined;
  /** The accepted socket: its local end is the destination without an inbound header. */
  readonly client: { readonly localAddress?: string | undefined; readonly localPort?: number | undefined };
  readonly sni: string | undefined;
  readonly alpn: readonly string[] | undefined;
  readonly route: { readonly alpn?: readonly string[] | undefined } | undefined;
}

/** Built once per connection, when the backend has connected. */
export function outboundHeader(version: ProxyProtocolVersion, c: OutboundFacts): Uint8Array {
  const inbound = c.proxyHeader?.command === 'proxy' ? c.proxyHeader : undefined;
  const localIp = inbound === undefined ? ipBytes(c.client.localAddress ?? '') : undefined;
  return buildProxyHeader(version, {
    source: c.source === undefined ? undefined : { ip: c.source, port: c.clientPort },
    destination:
      inbound !== undefined
        ? inbound.destination
        : localIp === undefined
          ? undefined
          : { ip: localIp, port: c.client.localPort ?? 0 },
    authority: c.sni,
    alpn: headerAlpn(c.alpn, c.route?.alpn),
  });
}

/**
 * The one ALPN name a v2 header carries. The server's choice is encrypted in TLS 1.3, so this is the
 * client's first offer, among the names the route matches on when it has `alpn`.
 */
export function headerAlpn(
  offered: readonly string[] | undefined,
  routeAlpn: readonly string[] | undefined,
): string | undefined {
  if (offered === undefined || offered.length === 0) return undefined;
  if (routeAlpn === undefined) return offered[0];
  return offered.find((a) => routeAlpn.includes(a)) ?? offered[0];
}
