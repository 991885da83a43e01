// The SOCKS probe: a SOCKS5 method-selection greeting, or a SOCKS4/4a request, both routed as 'socks5'.

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';

const MATCH = matched('socks5');
const NOT_SOCKS = noMatch('first byte is not SOCKS version 4 or 5');
const NO_METHODS = noMatch('SOCKS5 greeting offers no methods');
const BAD_METHOD = noMatch('SOCKS5 method is neither IANA-assigned nor private');
const BAD_COMMAND = noMatch('SOCKS4 command is not CONNECT or BIND');
const BAD_STRING = noMatch('SOCKS4 user id or host name is not printable text');

/** Bounds SOCKS4's NUL-terminated user id and SOCKS4a host name (a DNS name is at most 253). */
const MAX_SOCKS4_STRING = 255;

/**
 * IANA SOCKS methods: 0x00 none, 0x01 GSSAPI, 0x02 username/password, 0x03 CHAP, 0x05 challenge-response,
 * 0x06 SSL, 0x07 NDS, 0x08 multi-authentication, 0x09 JSON parameter block; 0x80-0xFE private.
 */
function isMethod(b: number): boolean {
  return (b <= 0x09 && b !== 0x04) || (b >= 0x80 && b <= 0xfe);
}

function isPrintable(b: number): boolean {
  return b >= 0x20 && b <= 0x7e;
}

/** Scans a NUL-terminated printable string at i: index after the NUL, -1 need-more, -2 bad. */
function cstring(buf: Uint8Array, i: number): number {
  const start = i;
  for (; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === 0) return i + 1;
    if (!isPrintable(b) || i - start >= MAX_SOCKS4_STRING) return -2;
  }
  return -1;
}

/**
 * SOCKS5 (RFC 1928): 0x05, NMETHODS >= 1, then NMETHODS method bytes, each IANA-assigned or private;
 * matches once all of them are here. sslh allows at most 10 methods numbered 0-9; private methods are
 * real (vendor clients), so they are accepted too.
 * SOCKS4: 0x04, command 0x01/0x02, port, IPv4, user id NUL; SOCKS4a (IPv4 0.0.0.x, x != 0) then a host
 * name NUL. Matches at the last NUL. There is no 'socks4' protocol: SOCKS servers serve both on one port.
 */
export const probeSocks5: Probe = (buf) => {
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  const version = buf[0]!;
  if (version === 5) {
    if (n === 1) return NEED_MORE;
    const count = buf[1]!;
    if (count === 0) return NO_METHODS;
    const end = 2 + count;
    for (let i = 2; i < end; i++) {
      if (i >= n) return NEED_MORE;
      if (!isMethod(buf[i]!)) return BAD_METHOD;
    }
    return MATCH;
  }
  if (version !== 4) return NOT_SOCKS;
  if (n === 1) return NEED_MORE;
  if (buf[1] !== 1 && buf[1] !== 2) return BAD_COMMAND;
  if (n < 8) return NEED_MORE;
  const socks4a = buf[4] === 0 && buf[5] === 0 && buf[6] === 0 && buf[7] !== 0;
  const afterUser = cstring(buf, 8);
  if (afterUser === -1) return NEED_MORE;
  if (afterUser === -2) return BAD_STRING;
  if (!socks4a) return MATCH;
  const afterHost = cstring(buf, afterUser);
  if (afterHost === -1) return NEED_MORE;
  // An empty host name cannot be resolved.
  if (afterHost === -2 || afterHost === afterUser + 1) return BAD_STRING;
  return MATCH;
};
