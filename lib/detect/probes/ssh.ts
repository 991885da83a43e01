// The SSH probe: an SSH client's first line is its identification string, "SSH-protoversion-softwareversion".

import type { Probe, ProbeResult } from '../types.js';

const MATCH: ProbeResult = Object.freeze({ kind: 'match', detection: Object.freeze({ protocol: 'ssh' }) });
const NEED_MORE: ProbeResult = Object.freeze({ kind: 'need-more' });
const NOT_SSH: ProbeResult = Object.freeze({ kind: 'no-match', reason: 'does not start with "SSH-"' });
const BAD_VERSION: ProbeResult = Object.freeze({
  kind: 'no-match',
  reason: 'SSH protoversion is not digits.digits',
});

const S = 0x53;
const H = 0x48;
const DASH = 0x2d;
const DOT = 0x2e;
/** "1.99" is the longest protoversion in use; 3 digits a side tolerate others without waiting forever. */
const MAX_VERSION_DIGITS = 3;

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/**
 * Matches "SSH-" DIGITS "." DIGITS "-" (RFC 4253 §4.2: the client sends this line first; "SSH-2.0-",
 * "SSH-1.99-", "SSH-1.5-"). Checking the protoversion, not just "SSH-", keeps text that merely starts
 * with "SSH-" away from sshd.
 */
export const probeSsh: Probe = (buf) => {
  const n = buf.length;
  // "SSH-"
  if (n > 0 && buf[0] !== S) return NOT_SSH;
  if (n > 1 && buf[1] !== S) return NOT_SSH;
  if (n > 2 && buf[2] !== H) return NOT_SSH;
  if (n > 3 && buf[3] !== DASH) return NOT_SSH;
  let i = 4;
  // major, ".", minor, "-": each number 1..MAX_VERSION_DIGITS digits.
  for (let part = 0; part < 2; part++) {
    const start = i;
    while (i < n && isDigit(buf[i]!)) {
      i++;
      if (i - start > MAX_VERSION_DIGITS) return BAD_VERSION;
    }
    if (i >= n) return NEED_MORE;
    if (i === start || buf[i] !== (part === 0 ? DOT : DASH)) return BAD_VERSION;
    i++;
  }
  return MATCH;
};
