// The XMPP probe: a client or server opens an XML stream whose <stream:stream> tag names a jabber namespace.

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';
import { compareAt, DIFFERENT, EQUAL, SHORT } from './bytes.js';

const MATCH = matched('xmpp');
const NOT_XML = noMatch('does not start with an XML tag');
const BAD_DECL = noMatch('XML declaration is not "<?xml ...?>"');
const NOT_STREAM = noMatch('root element is not a stream');
const NO_NAMESPACE = noMatch('stream tag ends without a jabber namespace');
const TOO_LONG = noMatch('no XMPP stream header within the limit');
const CONTROL = noMatch('control character in XML');

/** A stream header is a line or two; this bounds how long XML-looking bytes can keep the probe waiting. */
export const XMPP_MAX_HEADER = 1024;
/** Longest root element name accepted ("stream:stream" with a longer prefix). */
const MAX_NAME = 64;

const LT = 0x3c;
const GT = 0x3e;
const QM = 0x3f;
const BOM = [0xef, 0xbb, 0xbf] as const;
const DECL = [0x3c, 0x3f, 0x78, 0x6d, 0x6c] as const; // "<?xml"
const STREAM = [0x73, 0x74, 0x72, 0x65, 0x61, 0x6d] as const; // "stream"
const JABBER = [0x6a, 0x61, 0x62, 0x62, 0x65, 0x72] as const; // "jabber"

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

function isControl(b: number): boolean {
  return (b < 0x20 && !isSpace(b)) || b === 0x7f;
}

/**
 * Matches [BOM] [whitespace] ["<?xml" ... "?>" whitespace] "<" [prefix ":"] "stream" and then "jabber"
 * before the tag's ">": both the stream namespace (http://etherx.jabber.org/streams) and the content
 * namespace (jabber:client, jabber:server, jabber:component:accept) contain it. sslh looks for "jabber"
 * anywhere in the first bytes; requiring the stream tag keeps other XML and text away from XMPP.
 */
export const probeXmpp: Probe = (buf) => {
  const n = buf.length;
  let i = 0;
  const bom = compareAt(buf, 0, BOM);
  if (bom === SHORT) return NEED_MORE;
  if (bom === EQUAL) i = 3;
  while (i < n && isSpace(buf[i]!)) i++;
  if (i >= XMPP_MAX_HEADER) return TOO_LONG;
  if (i >= n) return NEED_MORE;
  if (buf[i] !== LT) return NOT_XML;
  if (i + 1 >= n) return NEED_MORE;
  if (buf[i + 1] === QM) {
    const decl = compareAt(buf, i, DECL);
    if (decl === SHORT) return NEED_MORE;
    if (decl === DIFFERENT) return BAD_DECL;
    // Skip to "?>", then whitespace, then the root element's "<".
    i += DECL.length;
    for (;;) {
      if (i >= XMPP_MAX_HEADER) return TOO_LONG;
      if (i >= n) return NEED_MORE;
      const b = buf[i]!;
      if (isControl(b)) return CONTROL;
      i++;
      if (b === QM) {
        if (i >= n) return NEED_MORE;
        if (buf[i] === GT) break;
      }
    }
    i++;
    while (i < n && isSpace(buf[i]!)) i++;
    if (i >= XMPP_MAX_HEADER) return TOO_LONG;
    if (i >= n) return NEED_MORE;
    if (buf[i] !== LT) return NOT_STREAM;
  }
  // Root element name: [prefix ":"] "stream", ended by whitespace.
  i++;
  const nameStart = i;
  while (i < n && !isSpace(buf[i]!) && buf[i] !== GT) {
    if (isControl(buf[i]!)) return CONTROL;
    i++;
    if (i - nameStart > MAX_NAME) return NOT_STREAM;
  }
  if (i >= n) return NEED_MORE;
  const len = i - nameStart;
  if (buf[i] === GT || len < STREAM.length) return NOT_STREAM;
  if (compareAt(buf, i - STREAM.length, STREAM) !== EQUAL) return NOT_STREAM;
  if (len > STREAM.length && buf[i - STREAM.length - 1] !== 0x3a) return NOT_STREAM;
  // Attributes up to ">": look for "jabber".
  for (;;) {
    if (i >= XMPP_MAX_HEADER) return TOO_LONG;
    if (i >= n) return NEED_MORE;
    const b = buf[i]!;
    if (b === GT) return NO_NAMESPACE;
    if (isControl(b)) return CONTROL;
    if (b === JABBER[0]) {
      const j = compareAt(buf, i, JABBER);
      if (j === EQUAL) return i + JABBER.length <= XMPP_MAX_HEADER ? MATCH : TOO_LONG;
      if (j === SHORT) return NEED_MORE;
    }
    i++;
  }
};
