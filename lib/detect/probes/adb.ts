// The ADB probe: an Android Debug Bridge host opens a TCP transport with a CNXN message, payload "host:...".

import { matched, NEED_MORE, noMatch, type Probe, type ProbeResult } from '../types.js';
import { compareAt, DIFFERENT, EQUAL, SHORT } from './bytes.js';

const MATCH = matched('adb');
const NOT_CNXN = noMatch('not an ADB CNXN message');
const BAD_HEADER = noMatch('ADB CNXN header has a bad version, length or magic');
const NOT_HOST = noMatch('ADB CNXN payload does not start with "host:"');

/** Message header, little-endian u32s: command, arg0 (version), arg1 (max data), length, checksum, magic. */
const HEADER = 24;
const CNXN = [0x43, 0x4e, 0x58, 0x4e] as const; // "CNXN"
const MAGIC = [0xbc, 0xb1, 0xa7, 0xb1] as const; // "CNXN" ^ 0xffffffff, little-endian
const HOST = [0x68, 0x6f, 0x73, 0x74, 0x3a] as const; // "host:"
/**
 * The empty message (all zero, magic 0xffffffff) that ADB 26.0.0 rc1 sent before its CNXN by mistake;
 * sslh accepts it, so does this probe.
 */
const EMPTY = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff] as const;
/** adb's MAX_PAYLOAD (1 MiB); the host banner is a few hundred bytes. */
const MAX_DATA = 1 << 20;

/** The CNXN message at offset o, checked field by field as bytes arrive. */
function cnxnAt(buf: Uint8Array, o: number): ProbeResult {
  const c = compareAt(buf, o, CNXN);
  if (c === SHORT) return NEED_MORE;
  if (c === DIFFERENT) return NOT_CNXN;
  // arg0: protocol version, 0x01000000 (A_VERSION_MIN) or 0x01000001 so far.
  if (buf.length < o + 8) return NEED_MORE;
  if (buf[o + 7] !== 0x01) return BAD_HEADER;
  if (buf.length < o + 16) return NEED_MORE;
  const length = (buf[o + 12]! | (buf[o + 13]! << 8) | (buf[o + 14]! << 16) | (buf[o + 15]! << 24)) >>> 0;
  if (length < HOST.length || length > MAX_DATA) return BAD_HEADER;
  const m = compareAt(buf, o + 20, MAGIC);
  if (m === SHORT) return NEED_MORE;
  if (m === DIFFERENT) return BAD_HEADER;
  const h = compareAt(buf, o + HEADER, HOST);
  if (h === SHORT) return NEED_MORE;
  return h === EQUAL ? MATCH : NOT_HOST;
}

/**
 * Matches "CNXN", version 0x01xxxxxx, data length 5..1 MiB, magic ~"CNXN", then payload "host:" at
 * offset 24, optionally after the 24-byte empty message of ADB 26.0.0 rc1. sslh checks "CNXN" and
 * "host:" only.
 */
export const probeAdb: Probe = (buf) => {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] !== 0) return cnxnAt(buf, 0);
  const e = compareAt(buf, 0, EMPTY);
  if (e === SHORT) return NEED_MORE;
  if (e === DIFFERENT) return NOT_CNXN;
  return cnxnAt(buf, EMPTY.length);
};
