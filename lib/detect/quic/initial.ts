// The QUIC probe: a flow's first datagrams → its client Initials' CRYPTO stream → the ClientHello's SNI and ALPN.

import { parseClientHello } from '../clienthello.js';
import type { ProbeResult } from '../types.js';
import { type CryptoChunk, parseDatagram } from './packet.js';

/** The ClientHello parser's own bound (64 KiB body) plus its handshake header. */
const MAX_CRYPTO = 65536 + 4;
/** TLS record fragments are at most 2^14 bytes; a big hello is wrapped in several. */
const MAX_FRAGMENT = 16384;
const CLIENT_HELLO = 1;

const NEED_MORE: ProbeResult = Object.freeze({ kind: 'need-more' });

function invalid(reason: string): ProbeResult {
  return { kind: 'invalid', protocol: 'quic', reason };
}

/**
 * Decides a UDP flow from the datagrams the client sent so far, in arrival order. Pure and order-free
 * past the first datagram: any order of the same Initial packets gives the same verdict.
 * - match: the CRYPTO frames of the client Initials hold a complete ClientHello (protocol quic, sni, alpn);
 * - need-more: Initials (or 0-RTT packets) so far, but the hello is not complete;
 * - no-match: the first datagram is not one a QUIC client starts a connection with;
 * - invalid: a client Initial that is malformed, fails authentication, or carries a malformed hello.
 */
export function parseQuicInitials(datagrams: readonly Uint8Array[]): ProbeResult {
  if (datagrams.length === 0) return NEED_MORE;
  const chunks: CryptoChunk[] = [];
  for (let i = 0; i < datagrams.length; i++) {
    const r = parseDatagram(datagrams[i]!);
    if (r.kind === 'invalid') return invalid(r.reason);
    // Later datagrams of a flow that began as QUIC are forwarded whatever they are; only the first decides.
    if (r.kind === 'not-initial' && i === 0) return { kind: 'no-match', reason: r.reason };
    if (r.kind === 'initial') for (const c of r.chunks) chunks.push(c);
  }
  return helloFromCrypto(chunks);
}

/** Reassembles the crypto stream from its chunks, in any order, and parses the ClientHello at its start. */
export function helloFromCrypto(chunks: readonly CryptoChunk[]): ProbeResult {
  let end = 0;
  for (const c of chunks) {
    if (c.offset + c.data.length > MAX_CRYPTO) return invalid('CRYPTO data beyond 64 KiB');
    end = Math.max(end, c.offset + c.data.length);
  }
  if (end === 0) return NEED_MORE;
  const stream = new Uint8Array(end);
  const have = new Uint8Array(end);
  for (const c of chunks) {
    for (let i = 0; i < c.data.length; i++) {
      const at = c.offset + i;
      // Retransmitted data must repeat what was sent; otherwise client and backend could see different hellos.
      if (have[at] === 1 && stream[at] !== c.data[i])
        return invalid('CRYPTO frames disagree on the same bytes');
      stream[at] = c.data[i]!;
      have[at] = 1;
    }
  }
  let prefix = 0;
  while (prefix < end && have[prefix] === 1) prefix++;
  if (prefix === 0) return NEED_MORE;
  if (stream[0] !== CLIENT_HELLO) return invalid('crypto stream does not start with a ClientHello');
  if (prefix < 4) return NEED_MORE;
  const total = 4 + ((stream[1]! << 16) | (stream[2]! << 8) | stream[3]!);
  if (total > MAX_CRYPTO) return invalid('ClientHello longer than 64 KiB');
  if (prefix < total) return NEED_MORE;
  if (end > total) return invalid('CRYPTO data after the ClientHello');
  const r = parseClientHello(records(stream.subarray(0, total)));
  switch (r.kind) {
    case 'match': {
      const { sni, alpn } = r.hello;
      return {
        kind: 'match',
        detection: sni === undefined ? { protocol: 'quic', alpn } : { protocol: 'quic', sni, alpn },
      };
    }
    case 'need-more':
      return invalid('ClientHello length disagrees with its contents');
    case 'no-match':
    case 'invalid':
      return invalid(r.reason);
  }
}

/** Wraps a handshake message in TLS handshake records, so the one ClientHello parser reads TCP and QUIC alike. */
function records(hs: Uint8Array): Uint8Array {
  const count = Math.ceil(hs.length / MAX_FRAGMENT);
  const out = new Uint8Array(hs.length + 5 * count);
  let o = 0;
  for (let i = 0; i < hs.length; i += MAX_FRAGMENT) {
    const len = Math.min(MAX_FRAGMENT, hs.length - i);
    out[o] = 22;
    out[o + 1] = 3;
    out[o + 2] = 1;
    out[o + 3] = len >> 8;
    out[o + 4] = len & 0xff;
    out.set(hs.subarray(i, i + len), o + 5);
    o += 5 + len;
  }
  return out;
}
