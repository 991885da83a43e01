// Reads one UDP datagram as QUIC: unprotects the client Initial packets in it and lists their CRYPTO frames.

import { createDecipheriv } from 'node:crypto';
import { clientInitialKeys, headerMask, QUIC_V1, QUIC_V2 } from './keys.js';

/** A CRYPTO frame's place in the Initial crypto stream. */
export interface CryptoChunk {
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * What one datagram is to a middlebox that has not seen the flow before (RFC 9000 5.2, 14.1, 17.2):
 * - initial: it holds client Initial packets, decrypted; their CRYPTO frames in datagram order;
 * - zero-rtt: only 0-RTT packets of a known version, which may arrive before the Initial they follow;
 * - not-initial: QUIC or not, nothing that can start a flow (short header, Retry, Handshake, version
 *   negotiation, an unknown version);
 * - invalid: a client Initial that fails to parse or to authenticate, or in a datagram under 1200 bytes.
 */
export type DatagramResult =
  | { kind: 'initial'; chunks: CryptoChunk[] }
  | { kind: 'zero-rtt' }
  | { kind: 'not-initial'; reason: string }
  | { kind: 'invalid'; reason: string };

/** RFC 9000 14.1: a datagram carrying a client Initial is at least this long; servers drop smaller ones. */
export const MIN_INITIAL_DATAGRAM = 1200;
/** RFC 9000 17.2: connection IDs of versions 1 and 2 are at most 20 bytes. */
const MAX_CID = 20;
const AEAD_TAG = 16;
const SAMPLE = 16;

const FRAME_PADDING = 0x00;
const FRAME_PING = 0x01;
const FRAME_ACK = 0x02;
const FRAME_ACK_ECN = 0x03;
const FRAME_CRYPTO = 0x06;
const FRAME_CONNECTION_CLOSE = 0x1c;

/** Packet types of the long header's two type bits: they differ between v1 and v2 (RFC 9369 3.2). */
enum LongType {
  Initial,
  ZeroRtt,
  Handshake,
  Retry,
}
const V1_TYPES = [LongType.Initial, LongType.ZeroRtt, LongType.Handshake, LongType.Retry] as const;
const V2_TYPES = [LongType.Retry, LongType.Initial, LongType.ZeroRtt, LongType.Handshake] as const;

function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

/** A variable-length integer (RFC 9000 16) at b[pos]: [value, next position], or undefined if it overruns `end`. */
function varint(b: Uint8Array, pos: number, end: number): [number, number] | undefined {
  if (pos >= end) return undefined;
  const len = 1 << (b[pos]! >> 6);
  if (pos + len > end) return undefined;
  let v = b[pos]! & 0x3f;
  // Eight-byte values above 2^53 lose precision; every length or offset that large is rejected anyway.
  for (let i = 1; i < len; i++) v = v * 256 + b[pos + i]!;
  return [v, pos + len];
}

/** Parses a whole datagram. Pure: bytes in, verdict out; never throws. */
export function parseDatagram(d: Uint8Array): DatagramResult {
  const chunks: CryptoChunk[] = [];
  let pos = 0;
  let initials = 0;
  let zeroRtt = 0;
  while (pos < d.length) {
    const b0 = d[pos]!;
    // A short header, or the zero padding some stacks put after the last packet, ends the long packets.
    if ((b0 & 0x80) === 0) break;
    if (pos + 7 > d.length) return pos === 0 ? NOT_QUIC : invalid('long header truncated');
    const version = u32(d, pos + 1);
    if (version === 0) return pos === 0 ? VERSION_NEGOTIATION : invalid('version negotiation coalesced');
    if (version !== QUIC_V1 && version !== QUIC_V2) {
      return pos === 0 ? UNKNOWN_VERSION : invalid('coalesced packets of different versions');
    }
    const type = (version === QUIC_V1 ? V1_TYPES : V2_TYPES)[(b0 >> 4) & 3]!;
    let p = pos + 5;
    const dcidLen = d[p]!;
    if (dcidLen > MAX_CID) return invalid('destination connection id longer than 20 bytes');
    const dcid = d.subarray(p + 1, p + 1 + dcidLen);
    p += 1 + dcidLen;
    if (p >= d.length) return invalid('long header truncated');
    const scidLen = d[p]!;
    if (scidLen > MAX_CID) return invalid('source connection id longer than 20 bytes');
    p += 1 + scidLen;
    if (type === LongType.Retry) return pos === 0 ? RETRY : invalid('Retry coalesced');
    if (type === LongType.Initial) {
      const tok = varint(d, p, d.length);
      if (tok === undefined || tok[1] + tok[0] > d.length) return invalid('token overruns the datagram');
      p = tok[1] + tok[0];
    }
    const len = varint(d, p, d.length);
    if (len === undefined || len[1] + len[0] > d.length)
      return invalid('packet length overruns the datagram');
    const pnOffset = len[1];
    const end = pnOffset + len[0];
    if (type === LongType.Initial) {
      const r = unprotect(d, pos, pnOffset, end, version, dcid, chunks);
      if (r !== undefined) return r;
      initials++;
    } else if (type === LongType.ZeroRtt) {
      zeroRtt++;
    } else if (initials === 0 && zeroRtt === 0) {
      return HANDSHAKE;
    }
    pos = end;
  }
  if (initials > 0) {
    if (d.length < MIN_INITIAL_DATAGRAM) return SHORT_DATAGRAM;
    return { kind: 'initial', chunks };
  }
  if (zeroRtt > 0) return ZERO_RTT;
  return pos === 0 ? SHORT_HEADER : HANDSHAKE;
}

const NOT_QUIC: DatagramResult = Object.freeze({ kind: 'not-initial', reason: 'not a QUIC long header' });
const SHORT_HEADER: DatagramResult = Object.freeze({
  kind: 'not-initial',
  reason: 'QUIC short header packet on a flow with no Initial',
});
const VERSION_NEGOTIATION: DatagramResult = Object.freeze({
  kind: 'not-initial',
  reason: 'QUIC version negotiation packet from a client',
});
const UNKNOWN_VERSION: DatagramResult = Object.freeze({
  kind: 'not-initial',
  reason: 'QUIC version other than 1 and 2',
});
const RETRY: DatagramResult = Object.freeze({
  kind: 'not-initial',
  reason: 'QUIC Retry packet from a client',
});
const HANDSHAKE: DatagramResult = Object.freeze({
  kind: 'not-initial',
  reason: 'QUIC Handshake packet on a flow with no Initial',
});
const ZERO_RTT: DatagramResult = Object.freeze({ kind: 'zero-rtt' });
const SHORT_DATAGRAM: DatagramResult = Object.freeze({
  kind: 'invalid',
  reason: 'client Initial in a datagram shorter than 1200 bytes',
});

function invalid(reason: string): DatagramResult {
  return { kind: 'invalid', reason };
}

/**
 * Removes header protection from the Initial at d[start, end) (packet number at pnOffset), decrypts it
 * and appends its CRYPTO frames to `out`. Returns an invalid result, or undefined on success.
 */
function unprotect(
  d: Uint8Array,
  start: number,
  pnOffset: number,
  end: number,
  version: number,
  dcid: Uint8Array,
  out: CryptoChunk[],
): DatagramResult | undefined {
  // The sample starts 4 bytes after the packet number's first byte, whatever its real length.
  if (pnOffset + 4 + SAMPLE > end) return invalid('Initial too short to sample for header protection');
  const keys = clientInitialKeys(version, dcid);
  const mask = headerMask(keys.hp, d.subarray(pnOffset + 4, pnOffset + 4 + SAMPLE));
  const b0 = d[start]! ^ (mask[0]! & 0x0f);
  const pnLen = (b0 & 3) + 1;
  if (pnOffset + pnLen + AEAD_TAG > end) return invalid('Initial shorter than its packet number and tag');
  const header = Buffer.from(d.subarray(start, pnOffset + pnLen));
  header[0] = b0;
  let pn = 0;
  for (let i = 0; i < pnLen; i++) {
    const v = d[pnOffset + i]! ^ mask[1 + i]!;
    header[pnOffset - start + i] = v;
    pn = pn * 256 + v;
  }
  // A client's first Initials number from 0: the truncated packet number is the full one (RFC 9000 A.3).
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i]! ^= (pn >>> (8 * i)) & 0xff;
  let plain: Buffer;
  try {
    const dec = createDecipheriv('aes-128-gcm', keys.key, nonce);
    dec.setAAD(header);
    dec.setAuthTag(d.subarray(end - AEAD_TAG, end));
    plain = Buffer.concat([dec.update(d.subarray(pnOffset + pnLen, end - AEAD_TAG)), dec.final()]);
  } catch {
    // node:crypto reports a failed tag check by throwing; to the mux it is one more bad datagram.
    return invalid('Initial fails authentication');
  }
  // RFC 9000 17.2: the reserved bits are checked only after protection is removed.
  if ((b0 & 0x0c) !== 0) return invalid('Initial reserved bits are not zero');
  return frames(plain, out);
}

/** Walks the frames of a decrypted Initial, keeping its CRYPTO frames; the rest must be allowed there. */
function frames(b: Uint8Array, out: CryptoChunk[]): DatagramResult | undefined {
  if (b.length === 0) return invalid('Initial without frames');
  let p = 0;
  const n = b.length;
  while (p < n) {
    const type = b[p++]!;
    if (type === FRAME_PADDING || type === FRAME_PING) continue;
    if (type === FRAME_CRYPTO) {
      const off = varint(b, p, n);
      if (off === undefined) return invalid('CRYPTO frame truncated');
      const len = varint(b, off[1], n);
      if (len === undefined || len[1] + len[0] > n) return invalid('CRYPTO frame overruns the packet');
      out.push({ offset: off[0], data: b.subarray(len[1], len[1] + len[0]) });
      p = len[1] + len[0];
    } else if (type === FRAME_ACK || type === FRAME_ACK_ECN) {
      // Largest acknowledged, delay, range count, first range; then (gap, length) pairs; ECN counts.
      let q: [number, number] | undefined = [0, p];
      const fixed = [];
      for (let i = 0; i < 4 && q !== undefined; i++) {
        q = varint(b, q[1], n);
        if (q !== undefined) fixed.push(q[0]);
      }
      if (q === undefined) return invalid('ACK frame truncated');
      const more = fixed[2]! * 2 + (type === FRAME_ACK_ECN ? 3 : 0);
      if (more > n) return invalid('ACK frame overruns the packet');
      for (let i = 0; i < more && q !== undefined; i++) q = varint(b, q[1], n);
      if (q === undefined) return invalid('ACK frame truncated');
      p = q[1];
    } else if (type === FRAME_CONNECTION_CLOSE) {
      const code = varint(b, p, n);
      const frame = code && varint(b, code[1], n);
      const reason = frame && varint(b, frame[1], n);
      if (reason === undefined || reason[1] + reason[0] > n) return invalid('CONNECTION_CLOSE truncated');
      p = reason[1] + reason[0];
    } else {
      // RFC 9000 12.4: any other frame in an Initial is a protocol violation.
      return invalid(`frame type 0x${type.toString(16)} not allowed in an Initial`);
    }
  }
  return undefined;
}
