// The PostgreSQL probe: a client opens with SSLRequest, GSSENCRequest, CancelRequest or a StartupMessage.

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';

const MATCH = matched('postgres');
const BAD_LENGTH = noMatch('length is not that of a PostgreSQL startup packet');
const BAD_CODE = noMatch('not SSLRequest, GSSENCRequest, CancelRequest or protocol 3.x');
const BAD_PARAMETER = noMatch('StartupMessage parameters do not start with a name');

// Request codes: 1234 in the high 16 bits, a magic low half.
const CANCEL = 80877102;
const SSL = 80877103;
const GSSENC = 80877104;
/** The server's MAX_STARTUP_PACKET_LENGTH. */
const MAX_STARTUP = 10000;
/** len + code + pid + secret key: 4 bytes in protocol 3.0, up to 256 in 3.2. */
const MIN_CANCEL = 16;
const MAX_CANCEL = 12 + 256;

/**
 * Matches the first message of a PostgreSQL connection: int32 length then int32 code, both big-endian.
 * SSLRequest and GSSENCRequest are length 8; CancelRequest (sent on a new connection) 16..268; a
 * StartupMessage has protocol 3.x (major 3 in the high 16 bits) and length 9..10000, and its
 * parameter list starts with a printable name or is empty. A client using sslnegotiation=direct
 * (PostgreSQL 17) starts with a TLS ClientHello instead, ALPN "postgresql": that is the TLS probe's.
 */
export const probePostgres: Probe = (buf) => {
  const n = buf.length;
  // Lengths are at most 10000, so the first two bytes are zero and the third at most 0x27.
  if (n > 0 && buf[0] !== 0) return BAD_LENGTH;
  if (n > 1 && buf[1] !== 0) return BAD_LENGTH;
  if (n > 2 && buf[2]! > MAX_STARTUP >> 8) return BAD_LENGTH;
  if (n < 4) return NEED_MORE;
  const length = (buf[2]! << 8) | buf[3]!;
  if (length < 8 || length > MAX_STARTUP) return BAD_LENGTH;
  // High half of the code: 1234 (0x04D2) for requests, 3 for protocol 3.x.
  if (n > 4 && buf[4] !== 0x04 && buf[4] !== 0x00) return BAD_CODE;
  if (n > 5 && !((buf[4] === 0x04 && buf[5] === 0xd2) || (buf[4] === 0x00 && buf[5] === 0x03)))
    return BAD_CODE;
  if (n < 8) return NEED_MORE;
  const code = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  if (code === SSL || code === GSSENC) return length === 8 ? MATCH : BAD_LENGTH;
  if (code === CANCEL) return length >= MIN_CANCEL && length <= MAX_CANCEL ? MATCH : BAD_LENGTH;
  if (code >>> 16 !== 3) return BAD_CODE;
  if (length < 9) return BAD_LENGTH;
  if (n < 9) return NEED_MORE;
  const first = buf[8]!;
  // Empty list: the terminating NUL is the only byte.
  if (first === 0) return length === 9 ? MATCH : BAD_PARAMETER;
  return first > 0x20 && first < 0x7f ? MATCH : BAD_PARAMETER;
};
