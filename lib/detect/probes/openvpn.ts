// The OpenVPN probe: over TCP a client's first packet is a length-prefixed P_CONTROL_HARD_RESET_CLIENT.

import { matched, NEED_MORE, noMatch, type Probe } from '../types.js';

const MATCH = matched('openvpn');
const BAD_LENGTH = noMatch('length prefix is not that of an OpenVPN hard reset');
const BAD_OPCODE = noMatch('opcode is not P_CONTROL_HARD_RESET_CLIENT_V1/V2/V3 with key id 0');
const BAD_LAYOUT = noMatch('packet is not a first hard reset (plain, tls-auth, tls-crypt or tls-crypt-v2)');

// Opcode byte = opcode << 3 | key_id; a hard reset always starts key id 0.
const HARD_RESET_CLIENT_V1 = 1 << 3;
const HARD_RESET_CLIENT_V2 = 7 << 3;
const HARD_RESET_CLIENT_V3 = 10 << 3;

/** opcode(1) + session id(8) + ack count(1) + message packet id(4): the reset with no tls wrapping. */
const MIN_RESET = 14;
/** V1/V2 resets are small even with a 64-byte tls-auth HMAC; OpenVPN's own port-share caps them at 255. */
const MAX_RESET = 255;
/** tls-crypt: opcode + session id + packet id(4) + net time(4) + 256-bit tag, then >= 5 encrypted bytes. */
const TLS_CRYPT_HEADER = 1 + 8 + 8 + 32;
const TLS_CRYPT_MIN = TLS_CRYPT_HEADER + 5;
/** tls-crypt-v2 appends the wrapped client key WKc: 2-byte length + 32-byte tag + 256-byte key + metadata. */
const WKC_MIN = 290;
const WKC_MAX = 1024; // TLS_CRYPT_V2_MAX_WKC_LEN
const V3_MIN = TLS_CRYPT_MIN + WKC_MIN;
/** OpenVPN's port-share accepts V3 resets below 1024 + 255 bytes. */
const V3_MAX = 1024 + 255 - 1;
/** tls-auth HMAC sizes: MD5, SHA1, SHA224, SHA256, SHA384, SHA512. */
const HMAC_SIZES = [16, 20, 28, 32, 48, 64] as const;
/**
 * The replay packet id of a fresh session's first packet is 1; a little slack for retransmissions
 * (the reliability layer runs over TCP too).
 */
const MAX_FIRST_PACKET_ID = 0xff;
/** OpenVPN 2.6 starts at 0x0f000001 to announce early negotiation support (EARLY_NEG_START). */
const EARLY_NEG_START = 0x0f000000;

function u32(buf: Uint8Array, i: number): number {
  return ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
}

function isFirstPacketId(buf: Uint8Array, i: number): boolean {
  const id = u32(buf, i);
  const low = id >= EARLY_NEG_START ? id - EARLY_NEG_START : id;
  return low >= 1 && low <= MAX_FIRST_PACKET_ID;
}

/** Ack count 0 then message packet id 0: a client's first control message acks nothing and is number 0. */
function isFirstMessage(buf: Uint8Array, i: number): boolean {
  return buf[i] === 0 && u32(buf, i + 1) === 0;
}

/** One reset packet of `len` bytes (after the length prefix) starting at offset 2 of buf. */
function isResetV1V2(buf: Uint8Array, len: number): boolean {
  // No wrapping: opcode, session id, then the reliability header in the clear.
  if (isFirstMessage(buf, 2 + 9)) return true;
  // tls-auth: session id, HMAC, packet id, net time, then the reliability header in the clear.
  for (let k = 0; k < HMAC_SIZES.length; k++) {
    const h = HMAC_SIZES[k]!;
    if (len >= MIN_RESET + h + 8 && isFirstPacketId(buf, 2 + 9 + h) && isFirstMessage(buf, 2 + 9 + h + 8)) {
      return true;
    }
  }
  // tls-crypt: the reliability header is encrypted; only the packet id is in the clear.
  return len >= TLS_CRYPT_MIN && isFirstPacketId(buf, 2 + 9);
}

function isResetV3(buf: Uint8Array, len: number): boolean {
  if (!isFirstPacketId(buf, 2 + 9)) return false;
  // WKc ends the packet and ends with its own length, which must fit after the tls-crypt part.
  const end = 2 + len;
  const wkc = (buf[end - 2]! << 8) | buf[end - 1]!;
  return wkc >= WKC_MIN && wkc <= WKC_MAX && wkc <= len - TLS_CRYPT_MIN;
}

/**
 * Matches a complete first packet: 2-byte big-endian length, opcode byte 0x08/0x38/0x50 (hard reset client
 * V1/V2/V3, key id 0), and a body laid out as a fresh session's first reset in one of OpenVPN's wrappings.
 * Needs the whole packet (at most 1280 bytes; the client sends it at once and then waits for the server).
 * sslh only checks that the length prefix equals the bytes read, which any length-prefixed protocol passes.
 * Static-key (--secret) mode has no opcode and is not recognised.
 */
export const probeOpenvpn: Probe = (buf) => {
  const n = buf.length;
  if (n === 0) return NEED_MORE;
  if (buf[0]! > V3_MAX >> 8) return BAD_LENGTH;
  if (n === 1) return NEED_MORE;
  const len = (buf[0]! << 8) | buf[1]!;
  const small = len >= MIN_RESET && len <= MAX_RESET;
  const v3 = len >= V3_MIN && len <= V3_MAX;
  if (!small && !v3) return BAD_LENGTH;
  if (n === 2) return NEED_MORE;
  const op = buf[2]!;
  if (op === HARD_RESET_CLIENT_V3) {
    if (!v3) return BAD_LENGTH;
  } else if (op === HARD_RESET_CLIENT_V2 || op === HARD_RESET_CLIENT_V1) {
    if (!small) return BAD_LENGTH;
  } else {
    return BAD_OPCODE;
  }
  if (n < 2 + len) return NEED_MORE;
  const ok = op === HARD_RESET_CLIENT_V3 ? isResetV3(buf, len) : isResetV1V2(buf, len);
  return ok ? MATCH : BAD_LAYOUT;
};
