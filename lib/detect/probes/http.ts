// The HTTP probe: an HTTP/1.x request line with a known method and its Host header, or the HTTP/2 preface.

import { invalid, matched, NEED_MORE, noMatch, type Probe, type ProbeResult } from '../types.js';
import { isDigit } from './bytes.js';

const MATCH = matched('http');
const NOT_METHOD = noMatch('does not start with a known HTTP method');
const BAD_TARGET = noMatch('HTTP request target is empty or has control characters');
const BAD_VERSION = noMatch('HTTP version is not HTTP/1.x');
const BAD_LINE_END = noMatch('HTTP request line does not end after the version');
const BAD_PREFACE = noMatch('PRI but not the HTTP/2 preface');

/** Methods recognised at offset 0: RFC 9110, PATCH, WebDAV/CalDAV, QUERY, and PRI for the HTTP/2 preface. */
export const HTTP_METHODS: readonly string[] = Object.freeze([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'REPORT',
  'MKCALENDAR',
  'SEARCH',
  'ACL',
  'QUERY',
  'PRI',
]);

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Each method with its trailing space, so no pattern is a prefix of another.
const METHOD_BYTES: readonly Uint8Array[] = HTTP_METHODS.map((m) => ascii(`${m} `));
const PRI = HTTP_METHODS.indexOf('PRI');
/** RFC 9113 §3.4: a client with prior knowledge opens with exactly these 24 bytes. */
const H2_PREFACE = ascii('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const HTTP1_PREFIX = ascii('HTTP/1.');

const SP = 0x20;
const HT = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;
const METHOD_NEED_MORE = -1;
const METHOD_NONE = -2;

/** Method indexes by first byte, so most non-HTTP bytes are turned away by one lookup. */
const BY_FIRST_BYTE: readonly (readonly number[])[] = Array.from({ length: 256 }, (_, b) =>
  METHOD_BYTES.flatMap((pat, m) => (pat[0] === b ? [m] : [])),
);

/** Index into HTTP_METHODS of the method that starts buf, or METHOD_NEED_MORE / METHOD_NONE. */
function matchMethod(buf: Uint8Array): number {
  if (buf.length === 0) return METHOD_NEED_MORE;
  const candidates = BY_FIRST_BYTE[buf[0]!]!;
  let partial = false;
  for (let c = 0; c < candidates.length; c++) {
    const m = candidates[c]!;
    const pat = METHOD_BYTES[m]!;
    const k = Math.min(buf.length, pat.length);
    let j = 0;
    while (j < k && buf[j] === pat[j]) j++;
    if (j < k) continue;
    if (k === pat.length) return m;
    partial = true;
  }
  return partial ? METHOD_NEED_MORE : METHOD_NONE;
}

/**
 * Matches "METHOD SP target SP HTTP/1.d (CR)LF", then reads header lines until the first Host header
 * (match with detection.host) or the blank line that ends the header block (match without host).
 * A bad request line is no-match; once the request line is good, a malformed header line is invalid:
 * the connection is HTTP beyond doubt, and routing it without its Host could bypass host routing.
 * "PRI" must be followed by the rest of the 24-byte HTTP/2 preface (match, no host).
 */
export const probeHttp: Probe = (buf) => {
  const n = buf.length;
  const m = matchMethod(buf);
  if (m === METHOD_NEED_MORE) return NEED_MORE;
  if (m === METHOD_NONE) return NOT_METHOD;
  if (m === PRI) {
    const k = Math.min(n, H2_PREFACE.length);
    for (let j = 0; j < k; j++) if (buf[j] !== H2_PREFACE[j]) return BAD_PREFACE;
    return n < H2_PREFACE.length ? NEED_MORE : MATCH;
  }
  let i = METHOD_BYTES[m]!.length;
  // request-target: visible ASCII or obs-text (raw UTF-8 paths exist in the wild), up to the next SP.
  const targetStart = i;
  while (i < n && buf[i] !== SP) {
    const b = buf[i]!;
    if (b < 0x21 || b === 0x7f) return BAD_TARGET;
    // Rescanned on every chunk like the headers: unbounded, a trickled target would cost O(n²) up to
    // limits.max_peek_bytes (1 MiB at most), so it must end within MAX_SCAN too.
    if (++i >= MAX_SCAN) return LINE_TOO_LONG;
  }
  if (i >= n) return NEED_MORE;
  if (i === targetStart) return BAD_TARGET;
  i++;
  for (let j = 0; j < HTTP1_PREFIX.length; j++, i++) {
    if (i >= n) return NEED_MORE;
    if (buf[i] !== HTTP1_PREFIX[j]) return BAD_VERSION;
  }
  if (i >= n) return NEED_MORE;
  if (!isDigit(buf[i]!)) return BAD_VERSION;
  i++;
  if (i >= n) return NEED_MORE;
  if (buf[i] === CR) {
    i++;
    if (i >= n) return NEED_MORE;
  }
  if (buf[i] !== LF) return BAD_LINE_END;
  i++;
  // Every new chunk rescans from the start, so an unbounded scan would cost O(n²) for a trickling
  // client; like nginx's 8k header buffer, a Host must come within the first MAX_SCAN bytes.
  if (n > MAX_SCAN) {
    const h = scanHttpHeaders(buf.subarray(0, MAX_SCAN), i);
    return h.kind === 'need-more' ? HEADERS_TOO_LONG : resultOf(h);
  }
  return resultOf(scanHttpHeaders(buf, i));
};

/** Bytes of request line and headers searched for Host. */
export const MAX_SCAN = 16384;
const HEADERS_TOO_LONG = invalid(
  'http',
  `no Host header and no end of headers in the first ${MAX_SCAN} bytes`,
);
const LINE_TOO_LONG = invalid('http', `request line longer than ${MAX_SCAN} bytes`);

function resultOf(h: HeaderScan): ProbeResult {
  switch (h.kind) {
    case 'host':
      return h.host === '' ? MATCH : { kind: 'match', detection: { protocol: 'http', host: h.host } };
    case 'end':
      return MATCH;
    case 'need-more':
      return NEED_MORE;
    case 'invalid':
      return h.result;
  }
}

/** What a scan of an HTTP/1.x header block found. */
export type HeaderScan =
  /** The first Host header, complete and normalised by normalizeHost ('' if its value is empty). */
  | { kind: 'host'; host: string }
  /** The blank line that ends the header block, and no Host header before it. */
  | { kind: 'end' }
  /** The bytes end inside the header block. */
  | { kind: 'need-more' }
  /** A malformed header line; result is the probe verdict to return for it. */
  | { kind: 'invalid'; result: ProbeResult & { kind: 'invalid' } };

function badHeaders(reason: string): HeaderScan {
  return Object.freeze({ kind: 'invalid', result: invalid('http', reason) });
}

const SCAN_END: HeaderScan = Object.freeze({ kind: 'end' });
const SCAN_NEED_MORE: HeaderScan = Object.freeze({ kind: 'need-more' });
const BARE_CR = badHeaders('CR not followed by LF in HTTP headers');
const OBS_FOLD = badHeaders('obsolete line folding in HTTP headers');
const BAD_NAME = badHeaders('HTTP header name is empty or not a token, or is followed by whitespace');
const BAD_VALUE = badHeaders('control character in an HTTP header value');
const BAD_HOST = badHeaders('Host header is not a valid host[:port]');
/** Longer than any DNS name plus port; bounds the string built for the Host value. */
const MAX_HOST_VALUE = 512;

/** RFC 9110 tchar: the characters of a header name. */
function isTchar(b: number): boolean {
  if ((b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || isDigit(b)) return true;
  // ! # $ % & ' * + - . ^ _ ` | ~
  return (
    b === 0x21 ||
    (b >= 0x23 && b <= 0x27) ||
    b === 0x2a ||
    b === 0x2b ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5e ||
    b === 0x5f ||
    b === 0x60 ||
    b === 0x7c ||
    b === 0x7e
  );
}

/** Whether buf[start..start+4) is "host" in any case. */
function isHostName(buf: Uint8Array, start: number): boolean {
  return (
    (buf[start]! | 0x20) === 0x68 &&
    (buf[start + 1]! | 0x20) === 0x6f &&
    (buf[start + 2]! | 0x20) === 0x73 &&
    (buf[start + 3]! | 0x20) === 0x74
  );
}

/**
 * Reads header lines of an HTTP/1.x request from offset `start` (just after the request line) until the
 * first Host header or the end of the header block. Lines end in CRLF or a bare LF. Only the first Host
 * header is seen: a request with two is malformed (RFC 9112 §3.2) and left to the backend to refuse.
 */
export function scanHttpHeaders(buf: Uint8Array, start: number): HeaderScan {
  const n = buf.length;
  let i = start;
  for (;;) {
    if (i >= n) return SCAN_NEED_MORE;
    const first = buf[i]!;
    if (first === LF) return SCAN_END;
    if (first === CR) {
      if (i + 1 >= n) return SCAN_NEED_MORE;
      return buf[i + 1] === LF ? SCAN_END : BARE_CR;
    }
    if (first === SP || first === HT) return OBS_FOLD;
    const nameStart = i;
    while (i < n && isTchar(buf[i]!)) i++;
    if (i >= n) return SCAN_NEED_MORE;
    if (buf[i] !== COLON || i === nameStart) return BAD_NAME;
    const host = i - nameStart === 4 && isHostName(buf, nameStart);
    i++;
    const valueStart = i;
    while (i < n) {
      const b = buf[i]!;
      if (b === LF || b === CR) break;
      if ((b < 0x20 && b !== HT) || b === 0x7f) return BAD_VALUE;
      i++;
    }
    if (i >= n) return SCAN_NEED_MORE;
    const valueEnd = i;
    if (buf[i] === CR) {
      if (i + 1 >= n) return SCAN_NEED_MORE;
      if (buf[i + 1] !== LF) return BARE_CR;
      i++;
    }
    i++;
    if (host) {
      if (valueEnd - valueStart > MAX_HOST_VALUE) return BAD_HOST;
      let value = '';
      for (let j = valueStart; j < valueEnd; j++) value += String.fromCharCode(buf[j]!);
      const normalized = normalizeHost(value);
      return normalized === undefined ? BAD_HOST : { kind: 'host', host: normalized };
    }
  }
}

/** RFC 3986 reg-name characters besides ALPHA / DIGIT: unreserved "-._~" and sub-delims ("%" is apart). */
const REG_NAME_EXTRA = "-._~!$&'()*+,;=";

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * Normalises a Host header value for routing: trims spaces and tabs, lowercases, drops the port and one
 * trailing dot ("WWW.Example.COM.:8080" → "www.example.com"). An IPv6 literal keeps its brackets
 * ("[::1]:80" → "[::1]"), as WHATWG URL's hostname does, so a host is never confused with host:port.
 * Returns '' for an empty value (allowed when the target has no authority) and undefined when the
 * value is not an RFC 3986 host with an optional numeric port.
 */
export function normalizeHost(value: string): string | undefined {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === SP || value.charCodeAt(start) === HT)) start++;
  while (end > start && (value.charCodeAt(end - 1) === SP || value.charCodeAt(end - 1) === HT)) end--;
  if (start === end) return '';
  let hostEnd: number;
  let host: string;
  if (value.charCodeAt(start) === 0x5b) {
    // "[" IPv6 "]": hex digits, colons and dots (for an embedded IPv4).
    hostEnd = value.indexOf(']', start);
    if (hostEnd < 0 || hostEnd >= end || hostEnd === start + 1) return undefined;
    let colons = 0;
    for (let i = start + 1; i < hostEnd; i++) {
      const c = value.charCodeAt(i);
      if (c === COLON) colons++;
      else if (!isHex(c) && c !== 0x2e) return undefined;
    }
    if (colons < 2) return undefined;
    hostEnd++;
    host = value.slice(start, hostEnd).toLowerCase();
  } else {
    hostEnd = start;
    while (hostEnd < end && value.charCodeAt(hostEnd) !== COLON) {
      const c = value.charCodeAt(hostEnd);
      if (c === 0x25) {
        // pct-encoded: "%" HEXDIG HEXDIG
        if (
          hostEnd + 2 >= end ||
          !isHex(value.charCodeAt(hostEnd + 1)) ||
          !isHex(value.charCodeAt(hostEnd + 2))
        ) {
          return undefined;
        }
        hostEnd += 3;
        continue;
      }
      const alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c);
      if (!alnum && REG_NAME_EXTRA.indexOf(value[hostEnd]!) < 0) return undefined;
      hostEnd++;
    }
    host = value.slice(start, hostEnd).toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host === '') return undefined;
  }
  if (hostEnd === end) return host;
  // ":" port, where port is 0-5 digits up to 65535 (RFC 3986 allows an empty port).
  if (value.charCodeAt(hostEnd) !== COLON || end - hostEnd - 1 > 5) return undefined;
  let port = 0;
  for (let i = hostEnd + 1; i < end; i++) {
    const c = value.charCodeAt(i);
    if (!isDigit(c)) return undefined;
    port = port * 10 + (c - 0x30);
  }
  return port <= 0xffff ? host : undefined;
}
