// The RDP probe: a Remote Desktop client opens with an X.224 Connection Request inside a TPKT header.

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';

const MATCH = matched('rdp');
const NOT_TPKT = noMatch('not a TPKT header (03 00)');
const BAD_LENGTH = noMatch('TPKT and X.224 lengths do not fit a connection request');
const NOT_CR = noMatch('not an X.224 class 0 Connection Request');

/** TPKT(4) + X.224 CR fixed part: LI, code, DST-REF(2), SRC-REF(2), class(1). */
const FIXED = 11;
/** The X.224 length indicator is one byte and a CR's LI is at most 254. */
const MAX_TPKT = 4 + 1 + 254;

/**
 * Matches TPKT version 3, reserved 0, length 11..259 (big-endian) and then an X.224 Connection Request:
 * LI = TPKT length - 5, code 0xE0, DST-REF 0, any SRC-REF, class 0 (MS-RDPBCGR 2.2.1.1). Decides at
 * 11 bytes; the cookie / routing token and RDP_NEG_REQ that follow are not needed. sslh checks only
 * the version byte and that the TPKT length equals the bytes read.
 */
export const probeRdp: Probe = (buf) => {
  const n = buf.length;
  if (n > 0 && buf[0] !== 0x03) return NOT_TPKT;
  if (n > 1 && buf[1] !== 0x00) return NOT_TPKT;
  if (n > 2 && buf[2]! > MAX_TPKT >> 8) return BAD_LENGTH;
  if (n < 5) return NEED_MORE;
  const length = (buf[2]! << 8) | buf[3]!;
  if (length < FIXED || length > MAX_TPKT || buf[4] !== length - 5) return BAD_LENGTH;
  if (n > 5 && buf[5] !== 0xe0) return NOT_CR;
  if (n > 6 && buf[6] !== 0) return NOT_CR;
  if (n > 7 && buf[7] !== 0) return NOT_CR;
  if (n < FIXED) return NEED_MORE;
  return buf[10] === 0 ? MATCH : NOT_CR;
};
