// Builds the PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text or v2 binary) sent before a backend's first byte.
import {
  Command,
  INETProtocol,
  IPv4Address,
  IPv4ProxyAddress,
  IPv6Address,
  IPv6ProxyAddress,
  Peer,
  TransportProtocol,
  UnspecProxyAddress,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import type { ProxyProtocolVersion } from '../config/types.js';
import { formatIp, mapV4 } from '../net/ip.js';

/** One end of a TCP connection: an IPv4 (4 bytes) or IPv6 (16 bytes) address and a port. */
export interface ProxyEndpoint {
  ip: Uint8Array;
  port: number;
}

/** What a header tells the backend. Without both ends, the header says "unknown" (v1) or LOCAL (v2). */
export interface ProxyHeaderInfo {
  /** The client. */
  source?: ProxyEndpoint | undefined;
  /** The address the client connected to. */
  destination?: ProxyEndpoint | undefined;
  /** v2 only: the TLS server name, as PP2_TYPE_AUTHORITY. */
  authority?: string | undefined;
  /** v2 only: an ALPN protocol name, as PP2_TYPE_ALPN. */
  alpn?: string | undefined;
}

/** The v2 TLV types sni-mux writes or reads (section 2.2 of the spec). */
export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;

/** The 12 bytes every v2 header starts with. */
export const V2_SIGNATURE = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);
/** The 6 bytes every v1 header starts with. */
export const V1_SIGNATURE = Uint8Array.of(0x50, 0x52, 0x4f, 0x58, 0x59, 0x20);

/**
 * The header bytes for `version`. Never throws: a missing or out-of-range end gives the "unknown"
 * header, which tells the backend to use the connection's own addresses.
 *
 * proxy-protocol-js builds the v1 line and the v2 address block. It falls short on v2 TLVs: it takes
 * them as `data` but leaves them out of the length field, so receivers would read them as payload;
 * the length is patched here. Its v1 builder has no form for "PROXY UNKNOWN", written here.
 */
export function buildProxyHeader(version: ProxyProtocolVersion, info: ProxyHeaderInfo): Uint8Array {
  const ends = sameFamily(info.source, info.destination);
  if (version === 'v1') {
    if (ends === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const [src, dst] = ends;
    const line = new V1ProxyProtocol(
      src.ip.length === 4 ? INETProtocol.TCP4 : INETProtocol.TCP6,
      new Peer(formatIp(src.ip), src.port),
      new Peer(formatIp(dst.ip), dst.port),
    ).build();
    return Buffer.from(line, 'latin1');
  }
  const tlvs = buildTlvs(info);
  const header =
    ends === undefined
      ? new V2ProxyProtocol(Command.LOCAL, TransportProtocol.UNSPEC, new UnspecProxyAddress(), tlvs)
      : new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, v2Addresses(ends[0], ends[1]), tlvs);
  const out = header.build();
  const length = out.length - 16;
  out[14] = length >> 8;
  out[15] = length & 0xff;
  return out;
}

/**
 * Both ends in one family, or undefined if either is missing or malformed. When they differ (an IPv6
 * client relayed by an IPv4 listener), the IPv4 one is written IPv4-mapped, as HAProxy does.
 */
function sameFamily(
  src: ProxyEndpoint | undefined,
  dst: ProxyEndpoint | undefined,
): [ProxyEndpoint, ProxyEndpoint] | undefined {
  if (src === undefined || dst === undefined || !validEnd(src) || !validEnd(dst)) return undefined;
  if (src.ip.length === dst.ip.length) return [src, dst];
  const v6 = (e: ProxyEndpoint): ProxyEndpoint => (e.ip.length === 4 ? { ip: mapV4(e.ip), port: e.port } : e);
  return [v6(src), v6(dst)];
}

function validEnd(e: ProxyEndpoint): boolean {
  return (
    (e.ip.length === 4 || e.ip.length === 16) && Number.isInteger(e.port) && e.port >= 0 && e.port <= 65535
  );
}

function v2Addresses(src: ProxyEndpoint, dst: ProxyEndpoint): IPv4ProxyAddress | IPv6ProxyAddress {
  if (src.ip.length === 4) {
    return new IPv4ProxyAddress(
      IPv4Address.createFrom([...src.ip]),
      src.port,
      IPv4Address.createFrom([...dst.ip]),
      dst.port,
    );
  }
  return new IPv6ProxyAddress(
    IPv6Address.createFrom([...src.ip]),
    src.port,
    IPv6Address.createFrom([...dst.ip]),
    dst.port,
  );
}

/** ALPN then AUTHORITY TLVs, each present when known and non-empty (values are capped at 255 bytes). */
function buildTlvs(info: ProxyHeaderInfo): Uint8Array | undefined {
  const alpn = info.alpn ? Buffer.from(info.alpn, 'latin1').subarray(0, 255) : undefined;
  const authority = info.authority ? Buffer.from(info.authority, 'utf8').subarray(0, 255) : undefined;
  if (alpn === undefined && authority === undefined) return undefined;
  const out = Buffer.alloc((alpn ? 3 + alpn.length : 0) + (authority ? 3 + authority.length : 0));
  let at = 0;
  for (const [type, value] of [
    [PP2_TYPE_ALPN, alpn],
    [PP2_TYPE_AUTHORITY, authority],
  ] as const) {
    if (value === undefined) continue;
    out[at] = type;
    out.writeUInt16BE(value.length, at + 1);
    out.set(value, at + 3);
    at += 3 + value.length;
  }
  return out;
}
