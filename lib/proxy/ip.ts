// IP addresses as PROXY headers carry them: bytes to text (RFC 5952), text to bytes, IPv4-mapped forms.
import { ipBytes } from '../net/address.js';

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

/** An IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d), for a header whose two ends differ in family. */
export function mapV4(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** An IPv4-mapped address as its 4 IPv4 bytes, any other as it is: how `source` CIDRs see a client. */
export function unmapV4(b: Uint8Array): Uint8Array {
  return b.length === 16 && isV4Mapped(b) ? b.subarray(12) : b;
}
