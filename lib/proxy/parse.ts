// Reads an inbound PROXY protocol header (v1 text or v2 binary) from a connection's first bytes, as a value.
//
// Written here rather than with proxy-protocol-js's parsers, which fall short for a socket reader: they
// throw on bad or short input (no way to tell "truncated, wait" from "malformed, refuse"), the v2 one
// ignores the length field (TLVs and the client's first bytes come back as one `data` blob) and reads
// missing address bytes as NaN, and the v1 one accepts any non-space text as an address, any port
// number and lines of any length.
import { formatIp, parseIpText } from '../net/ip.js';
import { crc32c } from './crc32c.js';
import {
  PP2_TYPE_ALPN,
  PP2_TYPE_AUTHORITY,
  PP2_TYPE_CRC32C,
  type ProxyEndpoint,
  V1_SIGNATURE,
  V2_SIGNATURE,
} from './header.js';

/** An end of the relayed connection as the header gave it, with the address also as text. */
export interface ProxyAddress extends ProxyEndpoint {
  address: string;
}

/**
 * A header read off the wire.
 * - proxy: the connection is relayed for this client (TCP over IPv4 or IPv6);
 * - local: use the connection's own addresses (v2 LOCAL, e.g. a health check; v1 UNKNOWN; v2 UNSPEC,
 *   UNIX or UDP addresses, which name no TCP client, handled as HAProxy does).
 */
export type ProxyHeader =
  | {
      version: 1 | 2;
      command: 'proxy';
      family: 4 | 6;
      source: ProxyAddress;
      destination: ProxyAddress;
      authority?: string;
      alpn?: string;
    }
  | { version: 1 | 2; command: 'local'; authority?: string; alpn?: string };

/**
 * - match: a complete, valid header of `length` bytes; what follows is the client's own data;
 * - need-more: a valid prefix of a header;
 * - no-match: these bytes are not a PROXY header;
 * - invalid: a PROXY header, but malformed (reason for logs).
 */
export type ProxyParseResult =
  | { kind: 'match'; header: ProxyHeader; length: number }
  | { kind: 'need-more' }
  | { kind: 'no-match' }
  | { kind: 'invalid'; reason: string };

export type SignatureResult = { kind: 'match' } | { kind: 'need-more' } | { kind: 'no-match' };

/** v1 lines are at most 107 bytes with the CRLF (spec section 2.1). */
export const V1_MAX_LENGTH = 107;

const NEED_MORE: { kind: 'need-more' } = Object.freeze({ kind: 'need-more' });
const NO_MATCH: { kind: 'no-match' } = Object.freeze({ kind: 'no-match' });
const SIG_MATCH: { kind: 'match' } = Object.freeze({ kind: 'match' });

/** Address block sizes by v2 family nibble: UNSPEC, INET, INET6, UNIX. */
const V2_ADDRESS_LENGTH = [0, 12, 36, 216] as const;

/** Parses a header at the start of buf. Pure and total: never throws, whatever the bytes. */
export function parseProxyHeader(buf: Uint8Array): ProxyParseResult {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === V1_SIGNATURE[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  return NO_MATCH;
}

/**
 * Whether buf starts with a v1 or v2 signature, could still (need-more), or cannot. Cheap: looks at
 * 12 bytes at most. Used on peers not allowed to send a header, to refuse a forged one.
 */
export function matchProxySignature(buf: Uint8Array): SignatureResult {
  const v1 = prefixOf(buf, V1_SIGNATURE);
  if (v1 !== NO_MATCH) return v1;
  return prefixOf(buf, V2_SIGNATURE);
}

function prefixOf(buf: Uint8Array, sig: Uint8Array): SignatureResult {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return NO_MATCH;
  return buf.length >= sig.length ? SIG_MATCH : NEED_MORE;
}

function invalid(reason: string): ProxyParseResult {
  return { kind: 'invalid', reason };
}

/** "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN…\r\n". */
function parseV1(buf: Uint8Array): ProxyParseResult {
  const sig = prefixOf(buf, V1_SIGNATURE);
  if (sig.kind !== 'match') return sig;
  const end = Math.min(buf.length, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = V1_SIGNATURE.length; i < end; i++) {
    const b = buf[i]!;
    if (b === 0x0a) {
      lf = i;
      break;
    }
    // Printable ASCII only, and CR only right before LF: anything else can never become a valid line.
    if (b === 0x0d ? i + 1 < buf.length && buf[i + 1] !== 0x0a : b < 0x20 || b > 0x7e) {
      return invalid(`v1: byte 0x${b.toString(16).padStart(2, '0')} at offset ${i} in the header line`);
    }
  }
  if (lf === -1) {
    return buf.length >= V1_MAX_LENGTH ? invalid(`v1: no CRLF within ${V1_MAX_LENGTH} bytes`) : NEED_MORE;
  }
  if (buf[lf - 1] !== 0x0d) return invalid('v1: the line must end with CRLF');
  const line = Buffer.from(buf.buffer, buf.byteOffset + V1_SIGNATURE.length, lf - 1 - V1_SIGNATURE.length);
  const fields = line.toString('latin1').split(' ');
  const proto = fields[0]!;
  // The receiver must ignore whatever follows UNKNOWN (spec section 2.1).
  if (proto === 'UNKNOWN') return { kind: 'match', header: { version: 1, command: 'local' }, length: lf + 1 };
  if (proto !== 'TCP4' && proto !== 'TCP6') return invalid(`v1: unknown protocol "${proto.slice(0, 16)}"`);
  if (fields.length !== 5) return invalid(`v1: ${proto} needs 4 fields separated by single spaces`);
  const family = proto === 'TCP4' ? 4 : 6;
  const src = parseIpText(fields[1]!, family);
  const dst = parseIpText(fields[2]!, family);
  if (src === undefined) return invalid(`v1: "${fields[1]!.slice(0, 45)}" is not an IPv${family} address`);
  if (dst === undefined) return invalid(`v1: "${fields[2]!.slice(0, 45)}" is not an IPv${family} address`);
  const sport = parsePort(fields[3]!);
  const dport = parsePort(fields[4]!);
  if (sport === undefined || dport === undefined) return invalid('v1: ports must be numbers from 0 to 65535');
  return {
    kind: 'match',
    header: {
      version: 1,
      command: 'proxy',
      family,
      source: { ip: src, port: sport, address: formatIp(src) },
      destination: { ip: dst, port: dport, address: formatIp(dst) },
    },
    length: lf + 1,
  };
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** 12-byte signature, version/command, family/transport, 16-bit length, addresses, TLVs. */
function parseV2(buf: Uint8Array): ProxyParseResult {
  const sig = prefixOf(buf, V2_SIGNATURE);
  if (sig.kind !== 'match') return sig;
  if (buf.length < 16) {
    // Refuse a bad version or command as soon as its byte is in, without waiting for the rest.
    return buf.length > 12 ? (checkVersion(buf[12]!) ?? NEED_MORE) : NEED_MORE;
  }
  const bad = checkVersion(buf[12]!);
  if (bad !== undefined) return bad;
  const family = buf[13]! >> 4;
  const transport = buf[13]! & 0x0f;
  if (family > 3) return invalid(`v2: unknown address family ${family}`);
  if (transport > 2) return invalid(`v2: unknown transport protocol ${transport}`);
  const length = (buf[14]! << 8) | buf[15]!;
  const total = 16 + length;
  const local = (buf[12]! & 0x0f) === 0;
  // LOCAL: "the receiver must discard the protocol block including the family" (spec section 2.2).
  if (local) return buf.length < total ? NEED_MORE : localMatch(total);
  const addrLength = V2_ADDRESS_LENGTH[family as 0 | 1 | 2 | 3];
  if (length < addrLength) {
    return invalid(`v2: length ${length} is shorter than the ${addrLength}-byte address block`);
  }
  if (buf.length < total) return NEED_MORE;
  const tlvs = readTlvs(buf, 16 + addrLength, total);
  if (tlvs.kind === 'invalid') return tlvs;
  const extra = tlvs.values;
  // Only TCP over IPv4/IPv6 names a client to use; other families keep the connection's own, as in HAProxy.
  if (transport !== 1 || (family !== 1 && family !== 2)) {
    return { kind: 'match', header: { version: 2, command: 'local', ...extra }, length: total };
  }
  const n = family === 1 ? 4 : 16;
  const src = buf.slice(16, 16 + n);
  const dst = buf.slice(16 + n, 16 + 2 * n);
  const ports = 16 + 2 * n;
  return {
    kind: 'match',
    header: {
      version: 2,
      command: 'proxy',
      family: family === 1 ? 4 : 6,
      source: { ip: src, port: (buf[ports]! << 8) | buf[ports + 1]!, address: formatIp(src) },
      destination: { ip: dst, port: (buf[ports + 2]! << 8) | buf[ports + 3]!, address: formatIp(dst) },
      ...extra,
    },
    length: total,
  };
}

function checkVersion(verCmd: number): ProxyParseResult | undefined {
  if (verCmd >> 4 !== 2) return invalid(`v2: unknown version ${verCmd >> 4}`);
  if ((verCmd & 0x0f) > 1) return invalid(`v2: unknown command ${verCmd & 0x0f}`);
  return undefined;
}

function localMatch(length: number): ProxyParseResult {
  return { kind: 'match', header: { version: 2, command: 'local' }, length };
}

type TlvResult =
  | { kind: 'ok'; values: { authority?: string; alpn?: string } }
  | { kind: 'invalid'; reason: string };

/** The TLVs in buf[from, to): keeps ALPN and AUTHORITY, verifies CRC32C, skips the rest (SSL, NOOP, …). */
function readTlvs(buf: Uint8Array, from: number, to: number): TlvResult {
  const values: { authority?: string; alpn?: string } = {};
  for (let at = from; at < to; ) {
    if (to - at < 3) return { kind: 'invalid', reason: `v2: ${to - at} stray byte(s) after the last TLV` };
    const type = buf[at]!;
    const len = (buf[at + 1]! << 8) | buf[at + 2]!;
    const value = at + 3;
    if (value + len > to) {
      return {
        kind: 'invalid',
        reason: `v2: TLV 0x${type.toString(16)} of ${len} bytes overruns the header`,
      };
    }
    const text = (enc: 'utf8' | 'latin1'): string =>
      Buffer.from(buf.buffer, buf.byteOffset + value, len).toString(enc);
    if (type === PP2_TYPE_ALPN && values.alpn === undefined && len > 0) values.alpn = text('latin1');
    else if (type === PP2_TYPE_AUTHORITY && values.authority === undefined && len > 0)
      values.authority = text('utf8');
    else if (type === PP2_TYPE_CRC32C) {
      if (len !== 4) return { kind: 'invalid', reason: `v2: CRC32C TLV of ${len} bytes, not 4` };
      const want =
        ((buf[value]! << 24) | (buf[value + 1]! << 16) | (buf[value + 2]! << 8) | buf[value + 3]!) >>> 0;
      if (crc32c(buf, 0, to, value) !== want) return { kind: 'invalid', reason: 'v2: CRC32C does not match' };
    }
    at = value + len;
  }
  return { kind: 'ok', values };
}
