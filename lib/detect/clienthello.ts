// Pure, allocation-light parser that extracts SNI, ALPN and versions from the TLS ClientHello a client sent first.

/** The routing-relevant fields of a ClientHello. */
export interface ClientHello {
  /** server_name host_name, lowercased, one trailing dot removed; undefined when the client sent none. */
  sni?: string;
  /** ALPN protocol names as sent (byte-for-byte, latin1), in client order; empty when absent. */
  alpn: string[];
  /** ClientHello.legacy_version, e.g. 0x0303. */
  legacyVersion: number;
  /** supported_versions entries without GREASE values, in client order; empty when absent. */
  supportedVersions: number[];
  /** Version field of the first TLS record, e.g. 0x0301. */
  recordVersion: number;
  /** Total bytes of the TLS records that carried the ClientHello. */
  length: number;
}

/**
 * - match: a complete, well-formed ClientHello;
 * - need-more: every byte so far is a valid prefix of one;
 * - no-match: not a TLS handshake at all, so other probes may try;
 * - invalid: a TLS handshake record, but malformed.
 */
export type HelloResult =
  | { kind: 'match'; hello: ClientHello }
  | { kind: 'need-more' }
  | { kind: 'no-match'; reason: string }
  | { kind: 'invalid'; reason: string };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
/** RFC 8446 5.2: no record may exceed 2^14 + 2048 bytes of fragment. */
const MAX_RECORD = 16384 + 2048;
/** Real hellos, even with post-quantum key shares, are a few KiB; anything far bigger is abuse. */
const MAX_HELLO = 65536;

const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;

/** Results are shared constants where they carry no data, so the need-more path allocates nothing. */
const NEED_MORE: HelloResult = Object.freeze({ kind: 'need-more' });

function invalid(reason: string): HelloResult {
  return { kind: 'invalid', reason };
}

/**
 * Parse the first bytes of a connection as a TLS ClientHello.
 * `buf` must start at byte 0 of the connection; it is never modified and the function never throws.
 */
export function parseClientHello(buf: Uint8Array): HelloResult {
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  if (buf[0] !== RECORD_HANDSHAKE)
    return { kind: 'no-match', reason: 'first byte is not a TLS handshake record' };
  if (n < 2) return NEED_MORE;
  if (buf[1] !== 3) return { kind: 'no-match', reason: 'record version major is not 3' };
  if (n < 3) return NEED_MORE;
  const recordVersion = 0x0300 | buf[2]!;

  // Walk the records, learning the handshake length from the first 4 handshake bytes,
  // which may themselves be split over several records.
  let pos = 0;
  let records = 0;
  let hsSeen = 0; // handshake bytes in the complete records before `pos`
  let hsTotal = -1; // 4 + handshake body length, once known
  let lenAcc = 0;
  for (;;) {
    if (pos >= n) return NEED_MORE;
    if (records > 0) {
      if (buf[pos] !== RECORD_HANDSHAKE) return invalid('non-handshake record inside ClientHello');
      if (pos + 1 >= n) return NEED_MORE;
      if (buf[pos + 1] !== 3) return invalid('record version major is not 3 inside ClientHello');
    }
    if (pos + RECORD_HEADER > n) return NEED_MORE;
    const recLen = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    if (recLen === 0) return invalid('zero-length handshake record');
    if (recLen > MAX_RECORD) return invalid('record length exceeds 2^14+2048');
    const fragStart = pos + RECORD_HEADER;
    const recEnd = fragStart + recLen;
    const avail = Math.min(recEnd, n) - fragStart;

    // Read the handshake header bytes this record holds.
    let i = 0;
    while (hsSeen + i < HANDSHAKE_HEADER && i < avail) {
      const b = buf[fragStart + i]!;
      const at = hsSeen + i;
      if (at === 0) {
        if (b !== HANDSHAKE_CLIENT_HELLO) return invalid('handshake message is not a ClientHello');
      } else {
        lenAcc = (lenAcc << 8) | b;
        if (at === 3) {
          if (lenAcc > MAX_HELLO) return invalid('ClientHello longer than 64 KiB');
          hsTotal = HANDSHAKE_HEADER + lenAcc;
        }
      }
      i++;
    }

    if (hsTotal >= 0 && hsSeen + recLen >= hsTotal) {
      // This record holds the end of the ClientHello; decide only once all of it has arrived.
      if (recEnd > n) return NEED_MORE;
      if (hsSeen + recLen > hsTotal) return invalid('trailing bytes after ClientHello in its record');
      records++;
      let body: Uint8Array;
      let start: number;
      if (records === 1) {
        body = buf;
        start = RECORD_HEADER + HANDSHAKE_HEADER;
      } else {
        body = reassemble(buf, recEnd, hsTotal);
        start = HANDSHAKE_HEADER;
      }
      return parseBody(body, start, start + hsTotal - HANDSHAKE_HEADER, recordVersion, recEnd);
    }
    if (recEnd > n) return NEED_MORE;
    hsSeen += recLen;
    records++;
    pos = recEnd;
  }
}

/** Copy the handshake fragments of records in buf[0, end) into one contiguous buffer (multi-record case only). */
function reassemble(buf: Uint8Array, end: number, total: number): Uint8Array {
  // allocUnsafe takes small buffers from Node's shared pool, far cheaper than a fresh backing store;
  // every byte is overwritten below.
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  let o = 0;
  while (pos < end) {
    const len = (buf[pos + 3]! << 8) | buf[pos + 4]!;
    out.set(buf.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + len), o);
    o += len;
    pos += RECORD_HEADER + len;
  }
  return out;
}

/** GREASE (RFC 8701) values are 0x?A?A with both bytes equal. */
function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

/** Parse a ClientHello body occupying b[p, end); every byte is present, so any overrun is malformed. */
function parseBody(
  b: Uint8Array,
  p: number,
  end: number,
  recordVersion: number,
  length: number,
): HelloResult {
  if (p + 2 + 32 + 1 > end) return invalid('ClientHello truncated before session_id');
  const legacyVersion = (b[p]! << 8) | b[p + 1]!;
  if (b[p] !== 3) return invalid('ClientHello legacy_version major is not 3');
  p += 2 + 32;
  const sidLen = b[p]!;
  if (sidLen > 32) return invalid('session_id longer than 32 bytes');
  p += 1 + sidLen;
  if (p + 2 > end) return invalid('ClientHello truncated before cipher_suites');
  const csLen = (b[p]! << 8) | b[p + 1]!;
  if (csLen === 0 || (csLen & 1) !== 0) return invalid('cipher_suites length is zero or odd');
  p += 2 + csLen;
  if (p + 1 > end) return invalid('cipher_suites overrun ClientHello');
  const compLen = b[p]!;
  if (compLen === 0) return invalid('compression_methods empty');
  p += 1 + compLen;
  if (p > end) return invalid('compression_methods overrun ClientHello');

  let sni: string | undefined;
  const alpn: string[] = [];
  const supportedVersions: number[] = [];
  // Duplicates of the extensions we route on would let client and backend disagree on the name.
  let seenSni = false;
  let seenAlpn = false;
  let seenVersions = false;

  // Pre-TLS-1.2-style hellos may end right after compression_methods.
  if (p < end) {
    if (p + 2 > end) return invalid('extensions length truncated');
    const extLen = (b[p]! << 8) | b[p + 1]!;
    p += 2;
    if (p + extLen !== end) return invalid('extensions length does not match ClientHello length');
    while (p < end) {
      if (p + 4 > end) return invalid('extension header truncated');
      const type = (b[p]! << 8) | b[p + 1]!;
      const len = (b[p + 2]! << 8) | b[p + 3]!;
      p += 4;
      const extEnd = p + len;
      if (extEnd > end) return invalid('extension overruns extensions block');
      if (type === EXT_SERVER_NAME) {
        if (seenSni) return invalid('duplicate server_name extension');
        seenSni = true;
        const r = parseSni(b, p, extEnd);
        if (typeof r !== 'string') return r;
        sni = r;
      } else if (type === EXT_ALPN) {
        if (seenAlpn) return invalid('duplicate ALPN extension');
        seenAlpn = true;
        const r = parseAlpn(b, p, extEnd, alpn);
        if (r !== undefined) return r;
      } else if (type === EXT_SUPPORTED_VERSIONS) {
        if (seenVersions) return invalid('duplicate supported_versions extension');
        seenVersions = true;
        if (len < 1) return invalid('supported_versions empty');
        const vLen = b[p]!;
        if (vLen === 0 || (vLen & 1) !== 0 || 1 + vLen !== len) {
          return invalid('supported_versions length is zero, odd or mismatched');
        }
        for (let q = p + 1; q < extEnd; q += 2) {
          const v = (b[q]! << 8) | b[q + 1]!;
          if (!isGrease(v)) supportedVersions.push(v);
        }
      }
      p = extEnd;
    }
  }

  const hello: ClientHello = { alpn, legacyVersion, supportedVersions, recordVersion, length };
  if (sni !== undefined) hello.sni = sni;
  return { kind: 'match', hello };
}

/** Parse server_name extension data in b[p, end): the normalised host name, or an invalid result. */
function parseSni(b: Uint8Array, p: number, end: number): string | HelloResult {
  if (p + 2 > end) return invalid('server_name list length truncated');
  const listLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (listLen === 0) return invalid('server_name list empty');
  if (p + listLen !== end) return invalid('server_name list length does not match extension');
  let host: string | undefined;
  while (p < end) {
    if (p + 3 > end) return invalid('server_name entry truncated');
    const nameType = b[p]!;
    const nameLen = (b[p + 1]! << 8) | b[p + 2]!;
    p += 3;
    if (p + nameLen > end) return invalid('server_name entry overruns list');
    // RFC 6066: other name types are unknown to us, and may be ignored; host_name may appear once.
    if (nameType === 0) {
      if (host !== undefined) return invalid('more than one host_name in server_name');
      const r = decodeHostName(b, p, p + nameLen);
      if (r === undefined) return invalid('server_name is not a valid host name');
      host = r;
    }
    p += nameLen;
  }
  if (host === undefined) return invalid('server_name has no host_name entry');
  return host;
}

/**
 * Decode b[p, end) as a lowercased host name: LDH and underscore labels of 1..63 bytes, dot separated,
 * one trailing dot dropped, at most 253 bytes. Returns undefined when it is not one.
 */
function decodeHostName(b: Uint8Array, p: number, end: number): string | undefined {
  if (end > p && b[end - 1] === 0x2e) end--;
  const len = end - p;
  if (len === 0 || len > 253) return undefined;
  let s = '';
  let label = 0;
  for (let q = p; q < end; q++) {
    let c = b[q]!;
    if (c === 0x2e) {
      if (label === 0) return undefined;
      label = 0;
    } else {
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) {
        return undefined;
      }
      if (++label > 63) return undefined;
    }
    s += String.fromCharCode(c);
  }
  // A name ending in ".." leaves an empty last label after the one trailing dot is dropped.
  if (label === 0) return undefined;
  return s;
}

/** Parse ALPN extension data in b[p, end) into `out`; returns an invalid result, or undefined on success. */
function parseAlpn(b: Uint8Array, p: number, end: number, out: string[]): HelloResult | undefined {
  if (p + 2 > end) return invalid('ALPN list length truncated');
  const listLen = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  if (listLen === 0) return invalid('ALPN list empty');
  if (p + listLen !== end) return invalid('ALPN list length does not match extension');
  while (p < end) {
    const nameLen = b[p]!;
    p++;
    if (nameLen === 0) return invalid('empty ALPN protocol name');
    if (p + nameLen > end) return invalid('ALPN protocol name overruns list');
    let s = '';
    for (let q = p; q < p + nameLen; q++) s += String.fromCharCode(b[q]!);
    out.push(s);
    p += nameLen;
  }
  return undefined;
}
