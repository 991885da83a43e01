// The SSH probe: an SSH client's first line is its identification string, "SSH-protoversion-softwareversion".

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';
import { compareAt, DIFFERENT, skipDigits, TOO_MANY_DIGITS } from './bytes.js';

const MATCH = matched('ssh');
const NOT_SSH = noMatch('does not start with "SSH-"');
const BAD_VERSION = noMatch('SSH protoversion is not digits.digits');

const SSH_DASH = [0x53, 0x53, 0x48, 0x2d] as const; // "SSH-"
const DASH = 0x2d;
const DOT = 0x2e;
/** "1.99" is the longest protoversion in use; 3 digits a side tolerate others without waiting forever. */
const MAX_VERSION_DIGITS = 3;

/**
 * Matches "SSH-" DIGITS "." DIGITS "-" (RFC 4253 §4.2: the client sends this line first; "SSH-2.0-",
 * "SSH-1.99-", "SSH-1.5-"). Checking the protoversion, not just "SSH-", keeps text that merely starts
 * with "SSH-" away from sshd.
 */
export const probeSsh: Probe = (buf) => {
  const n = buf.length;
  if (compareAt(buf, 0, SSH_DASH) === DIFFERENT) return NOT_SSH;
  let i: number = SSH_DASH.length;
  // major, ".", minor, "-": each number 1..MAX_VERSION_DIGITS digits.
  for (let part = 0; part < 2; part++) {
    const start = i;
    i = skipDigits(buf, i, MAX_VERSION_DIGITS);
    if (i === TOO_MANY_DIGITS) return BAD_VERSION;
    if (i >= n) return NEED_MORE;
    if (i === start || buf[i] !== (part === 0 ? DOT : DASH)) return BAD_VERSION;
    i++;
  }
  return MATCH;
};
