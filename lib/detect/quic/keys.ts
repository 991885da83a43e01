// Client Initial packet protection keys (RFC 9001 5.2, RFC 9369 3.3): public by design, derived from the DCID.

import { createCipheriv, createHmac } from 'node:crypto';

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;

/** What one version changes in Initial protection: the salt and the HKDF labels. */
interface VersionParams {
  readonly salt: Buffer;
  readonly key: string;
  readonly iv: string;
  readonly hp: string;
}

const V1: VersionParams = {
  salt: Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'),
  key: 'quic key',
  iv: 'quic iv',
  hp: 'quic hp',
};
const V2: VersionParams = {
  salt: Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex'),
  key: 'quicv2 key',
  iv: 'quicv2 iv',
  hp: 'quicv2 hp',
};

/** The AEAD key and IV of a client's Initial packets, and the header protection key. */
export interface InitialKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly hp: Buffer;
}

/** HKDF-Expand-Label (RFC 8446 7.1) with an empty context, for outputs of at most one SHA-256 block. */
function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = `tls13 ${label}`;
  const info = Buffer.alloc(2 + 1 + full.length + 1 + 1);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  info.write(full, 3, 'latin1');
  info[3 + full.length] = 0; // empty context
  info[4 + full.length] = 1; // HKDF-Expand counter T(1)
  return createHmac('sha256', secret).update(info).digest().subarray(0, length);
}

/** Client Initial keys for `version` (QUIC_V1 or QUIC_V2) and the client's Destination Connection ID. */
export function clientInitialKeys(version: number, dcid: Uint8Array): InitialKeys {
  const p = version === QUIC_V2 ? V2 : V1;
  const initial = createHmac('sha256', p.salt).update(dcid).digest(); // HKDF-Extract
  const client = expandLabel(initial, 'client in', 32);
  return {
    key: expandLabel(client, p.key, 16),
    iv: expandLabel(client, p.iv, 12),
    hp: expandLabel(client, p.hp, 16),
  };
}

/** The 5-byte header protection mask for a 16-byte ciphertext sample (AES-128-ECB, RFC 9001 5.4.3). */
export function headerMask(hp: Buffer, sample: Uint8Array): Buffer {
  const c = createCipheriv('aes-128-ecb', hp, null);
  c.setAutoPadding(false);
  return c.update(sample);
}
