// The tinc probe: a tinc daemon opens a meta connection with its ID request line, "0 name version\n".

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';
import { compareAt, DIFFERENT, isDigit, skipDigits, TOO_MANY_DIGITS } from './bytes.js';

const MATCH = matched('tinc');
const NOT_TINC = noMatch('does not start with "0 "');
const BAD_NAME = noMatch('tinc node name is not [A-Za-z0-9_]');
const BAD_VERSION = noMatch('tinc protocol version is not digits[.digits]');

const ZERO_SPACE = [0x30, 0x20] as const; // "0 "
/** tinc itself allows long names; this only bounds how long a lookalike can keep the probe waiting. */
const MAX_NAME = 256;
const MAX_VERSION_DIGITS = 3;

/** tinc's check_id(): alphanumerics and "_". */
function isNameByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || isDigit(b) || b === 0x5f;
}

/** An invitation sends a base64 public key instead of a name: either alphabet ("+/" or "-_"). */
function isKeyByte(b: number): boolean {
  return isNameByte(b) || b === 0x2b || b === 0x2f || b === 0x2d;
}

/**
 * Matches the whole ID line: "0 " NAME " " DIGITS ["." DIGITS] "\n" ("0 alice 17\n" from tinc 1.0,
 * "0 alice 17.7\n" from 1.1, "0 ?base64key 17.1\n" when a 1.1 node joins with an invitation).
 * sslh checks only "0 ".
 */
export const probeTinc: Probe = (buf) => {
  const n = buf.length;
  if (compareAt(buf, 0, ZERO_SPACE) === DIFFERENT) return NOT_TINC;
  let i: number = ZERO_SPACE.length;
  const invitation = i < n && buf[i] === 0x3f;
  if (invitation) i++;
  const nameStart = i;
  while (i < n && (invitation ? isKeyByte(buf[i]!) : isNameByte(buf[i]!))) {
    i++;
    if (i - nameStart > MAX_NAME) return BAD_NAME;
  }
  if (i >= n) return NEED_MORE;
  if (i === nameStart || buf[i] !== 0x20) return BAD_NAME;
  i++;
  // major, then optionally "." minor, then "\n"
  for (let part = 0; part < 2; part++) {
    const start = i;
    i = skipDigits(buf, i, MAX_VERSION_DIGITS);
    if (i === TOO_MANY_DIGITS) return BAD_VERSION;
    if (i >= n) return NEED_MORE;
    if (i === start) return BAD_VERSION;
    const b = buf[i]!;
    i++;
    if (b === 0x0a) return MATCH;
    if (part === 1 || b !== 0x2e) return BAD_VERSION;
  }
  return BAD_VERSION;
};
