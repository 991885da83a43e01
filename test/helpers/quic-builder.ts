// Builds protected QUIC v1/v2 client Initial packets (RFC 9001 5, RFC 9369) for the QUIC parser's tests.

import { createCipheriv } from 'node:crypto';
import { clientInitialKeys, headerMask, QUIC_V1, QUIC_V2 } from '../../lib/detect/quic/keys.js';
import { concat, u8 } from './hello-builder.js';

export { QUIC_V1, QUIC_V2 };

/** A variable-length integer (RFC 9000 16), in its shortest encoding. */
export function varint(v: number): Uint8Array {
  if (v < 0x40) return Uint8Array.of(v);
  if (v < 0x4000) return Uint8Array.of(0x40 | (v >> 8), v & 0xff);
  if (v < 0x40000000) return Uint8Array.of(0x80 | (v >>> 24), (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  throw new Error('varint too large for the builder');
}

/** A CRYPTO frame carrying stream bytes at `offset`. */
export function cryptoFrame(offset: number, data: Uint8Array): Uint8Array {
  return concat(u8(0x06), varint(offset), varint(data.length), data);
}

export interface InitialOptions {
  version?: number;
  dcid: Uint8Array;
  scid?: Uint8Array;
  token?: Uint8Array;
  packetNumber?: number;
  /** Packet number length in bytes, 1-4; default 4 as in RFC 9001 A.2. */
  pnLength?: number;
  /** Frames, concatenated; PADDING is added to reach `datagramSize`. */
  frames: Uint8Array;
  /** Pad so the packet is this many bytes; default 1200 (RFC 9000 14.1). 0 adds no padding. */
  datagramSize?: number;
}

/** One protected client Initial packet. */
export function buildInitial(o: InitialOptions): Uint8Array {
  const version = o.version ?? QUIC_V1;
  const pnLen = o.pnLength ?? 4;
  const pn = o.packetNumber ?? 0;
  const scid = o.scid ?? new Uint8Array(0);
  const token = o.token ?? new Uint8Array(0);
  const typeBits = version === QUIC_V2 ? 1 : 0;
  const head = concat(
    u8(0xc0 | (typeBits << 4) | (pnLen - 1)),
    Uint8Array.of(version >>> 24, (version >> 16) & 0xff, (version >> 8) & 0xff, version & 0xff),
    u8(o.dcid.length),
    o.dcid,
    u8(scid.length),
    scid,
    varint(token.length),
    token,
  );
  const target = o.datagramSize ?? 1200;
  // 2-byte length field, so the header size does not depend on the padding.
  const fixed = head.length + 2 + pnLen + 16;
  const padding = Math.max(0, target - fixed - o.frames.length);
  const plain = concat(o.frames, new Uint8Array(padding));
  const length = pnLen + plain.length + 16;
  const pnBytes = new Uint8Array(pnLen);
  for (let i = 0; i < pnLen; i++) pnBytes[pnLen - 1 - i] = (pn >>> (8 * i)) & 0xff;
  const header = concat(head, Uint8Array.of(0x40 | (length >> 8), length & 0xff), pnBytes);
  const keys = clientInitialKeys(version, o.dcid);
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i]! ^= (pn >>> (8 * i)) & 0xff;
  const enc = createCipheriv('aes-128-gcm', keys.key, nonce);
  enc.setAAD(header);
  const sealed = concat(enc.update(plain), enc.final(), enc.getAuthTag());
  const packet = concat(header, sealed);
  const pnOffset = header.length - pnLen;
  const mask = headerMask(keys.hp, packet.subarray(pnOffset + 4, pnOffset + 20));
  packet[0]! ^= mask[0]! & 0x0f;
  for (let i = 0; i < pnLen; i++) packet[pnOffset + i]! ^= mask[1 + i]!;
  return packet;
}
