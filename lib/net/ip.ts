// IP addresses, the one module for them: text to bytes, bytes to RFC 5952 text, CIDRs, IPv4-mapped forms.
import type { Cidr } from '../config/types.js';

export type CidrResult = { kind: 'ok'; cidr: Cidr } | { kind: 'error'; message: string };

const HEX = /^[0-9a-fA-F]{1,4}$/;

/**
 * Dotted-quad IPv4 into `out` at `at`; false unless exactly four decimal octets without leading zeros.
 * A character loop, not split and a regex: it runs for every accepted connection.
 */
function parseIpv4Into(text: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; /* '.' ends the last octet */
    if (c === 46) {
      if (digits === 0 || value > 255 || part > 3) return false;
      out[at + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are refused: some stacks read "010" as octal, so the meaning would be ambiguous.
      if (digits === 1 && value === 0) return false;
      if (++digits > 3) return false;
      value = value * 10 + (c - 48);
    } else {
      return false;
    }
  }
  return part === 4;
}

/** RFC 4291 text form (with "::" and an optional dotted-quad tail) into 16 bytes; no zone. */
export function parseIpv6(text: string): Uint8Array | undefined {
  const dbl = text.indexOf('::');
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) return undefined;
  const head = dbl === -1 ? text : text.slice(0, dbl);
  const tail = dbl === -1 ? '' : text.slice(dbl + 2);
  // A dotted quad may only end the whole address: the tail, or the head when there is no "::".
  const hw = words(head, dbl === -1);
  const tw = words(tail, true);
  if (hw === undefined || tw === undefined) return undefined;
  if (dbl === -1 ? hw.length !== 8 : hw.length + tw.length > 7) return undefined;
  const out = new Uint8Array(16);
  const put = (w: number[], at: number): void => {
    for (let i = 0; i < w.length; i++) {
      out[at + i * 2] = w[i]! >> 8;
      out[at + i * 2 + 1] = w[i]! & 0xff;
    }
  };
  put(hw, 0);
  put(tw, 16 - tw.length * 2);
  return out;
}

/** Colon-separated hex groups as 16-bit words; a trailing dotted quad counts as two words. */
function words(text: string, v4Last: boolean): number[] | undefined {
  if (text === '') return [];
  const groups = text.split(':');
  const out: number[] = [];
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i]!;
    if (g.includes('.')) {
      const b = new Uint8Array(4);
      if (!v4Last || i !== groups.length - 1 || !parseIpv4Into(g, b, 0)) return undefined;
      out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    } else {
      if (!HEX.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
  }
  return out;
}

/**
 * An IP literal as bytes: IPv4 → 4 bytes, IPv6 → 16 bytes, and IPv4-mapped IPv6 ("::ffff:1.2.3.4",
 * how a dual-stack socket reports IPv4 clients) → the 4 IPv4 bytes, so one CIDR list serves both.
 * A zone ("fe80::1%eth0") is ignored. Undefined when `ip` is not an IP literal.
 */
export function ipBytes(ip: string): Uint8Array | undefined {
  // Fast path for how a dual-stack listener reports IPv4 clients.
  if (ip.startsWith('::ffff:') && ip.indexOf(':', 7) === -1) {
    const out = v4Bytes();
    // Not a dotted quad ("::ffff:1" is plain IPv6): fall through to the full parser.
    if (parseIpv4Into(ip.slice(7), out, 0)) return out;
  }
  if (ip.includes(':')) {
    const pct = ip.indexOf('%');
    const b = parseIpv6(pct === -1 ? ip : ip.slice(0, pct));
    if (b === undefined) return undefined;
    return isV4Mapped(b) ? b.slice(12) : b;
  }
  const out = v4Bytes();
  return parseIpv4Into(ip, out, 0) ? out : undefined;
}

/**
 * Four bytes for an IPv4 result: a view into a shared 4 KiB slab, since every accepted connection keeps
 * its client's address, and an ArrayBuffer of its own costs about 90 bytes more.
 */
let slab = new ArrayBuffer(4096);
let slabUsed = 0;
function v4Bytes(): Uint8Array {
  if (slabUsed === slab.byteLength) {
    slab = new ArrayBuffer(4096);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, 4);
  slabUsed += 4;
  return out;
}

/**
 * A PROXY header's address text as bytes: family 4 wants a dotted quad, family 6 an IPv6 literal
 * (16 bytes kept even for IPv4-mapped ones). Zones ("%eth0") are refused: they mean nothing remotely.
 */
export function parseIpText(text: string, family: 4 | 6): Uint8Array | undefined {
  if (family === 4) {
    if (text.includes(':')) return undefined;
    return ipBytes(text);
  }
  if (!text.includes(':') || text.includes('%')) return undefined;
  const b = ipBytes(text);
  if (b === undefined || b.length === 16) return b;
  return mapV4(b);
}

/**
 * Dotted quad for 4 bytes; for 16, RFC 5952 text (lowercase, the longest run of two or more zero
 * groups as "::"), with IPv4-mapped addresses as "::ffff:1.2.3.4", the way Node and nginx print them.
 */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (isV4Mapped(b)) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((n) => n.toString(16)).join(':');
  if (best === -1) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** An IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d), for a header whose two ends differ in family. */
export function mapV4(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}

/** ::ffff:a.b.c.d, how a dual-stack socket reports an IPv4 client. */
export function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** An IPv4-mapped address as its 4 IPv4 bytes, any other as it is: how `source` CIDRs see a client. */
export function unmapV4(b: Uint8Array): Uint8Array {
  return b.length === 16 && isV4Mapped(b) ? b.subarray(12) : b;
}

/** True when `ip` (from ipBytes) is inside `c`. Different families never match. */
export function cidrContains(c: Cidr, ip: Uint8Array): boolean {
  const net = c.bytes;
  if (ip.length !== net.length) return false;
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== net[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((ip[full]! ^ net[full]!) & mask) === 0;
}

/** True when `ip` (from ipBytes) is inside any of `cidrs`: access lists such as accept_proxy.from. */
export function anyCidrContains(cidrs: readonly Cidr[], ip: Uint8Array): boolean {
  for (let i = 0; i < cidrs.length; i++) if (cidrContains(cidrs[i]!, ip)) return true;
  return false;
}

/** "net/prefix" or a bare address (= /32 or /128). Host bits must be zero, so typos are caught. */
export function parseCidr(text: string): CidrResult {
  const err = (message: string): CidrResult => ({ kind: 'error', message });
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  if (addr.includes('%')) return err(`"${text}": zones ("%eth0") are not allowed in a CIDR`);
  let bytes = ipBytes(addr);
  if (bytes === undefined) {
    return err(`"${addr}" is not an IP address; write a CIDR like "10.0.0.0/8" or "2001:db8::/32"`);
  }
  const max = addr.includes(':') ? 128 : 32;
  let prefix = bytes.length * 8;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) {
      return err(`"${text}": prefix "/${p}" must be a number from 0 to ${max}`);
    }
    prefix = Number(p);
    // ipBytes folded an IPv4-mapped address to 4 bytes: its prefix counts the 96 mapped bits too.
    if (max === 128 && bytes.length === 4) {
      if (prefix < 96) bytes = parseIpv6(addr)!;
      else prefix -= 96;
    }
  }
  const masked = bytes.slice();
  for (let i = 0; i < masked.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    masked[i] = masked[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  if (masked.some((b, i) => b !== bytes[i])) {
    return err(`"${text}" has bits set after the prefix; did you mean "${formatIp(masked)}/${prefix}"?`);
  }
  return { kind: 'ok', cidr: { family: masked.length === 4 ? 4 : 6, bytes: masked, prefix, text } };
}

/** Limits count per IPv4 address and per IPv6 /64 (one home or VPS usually holds a whole /64). */
export function sourceKey(ip: Uint8Array | undefined): string | undefined {
  if (ip === undefined) return undefined;
  if (ip.length === 4) return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
  return Buffer.from(ip.buffer, ip.byteOffset, 8).toString('hex');
}
