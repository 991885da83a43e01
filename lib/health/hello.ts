// The ClientHello the tls health check sends: enough for any TLS 1.2 or 1.3 server to answer with a ServerHello.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

const u16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const vec16 = (b: number[]): number[] => [...u16(b.length), ...b];
const ext = (type: number, data: number[]): number[] => [...u16(type), ...vec16(data)];

// AES-GCM and ChaCha20 for TLS 1.3, then ECDHE suites for 1.2 servers.
const SUITES = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
const GROUPS = [0x001d, 0x0017, 0x0018]; // x25519, secp256r1, secp384r1
const SIGNATURES = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807];

/** A ClientHello record for `sni`; a fresh x25519 key share each time, as a real client sends. */
export function healthClientHello(sni: string): Buffer {
  const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  const share = [...Buffer.from(jwk.x!, 'base64url')];
  const name = [...Buffer.from(sni, 'ascii')];
  const extensions = [
    ...ext(0x0000, vec16([0, ...vec16(name)])), // server_name
    ...ext(0x000a, vec16(GROUPS.flatMap(u16))), // supported_groups
    ...ext(0x000b, [1, 0]), // ec_point_formats: uncompressed
    ...ext(0x000d, vec16(SIGNATURES.flatMap(u16))), // signature_algorithms
    ...ext(0x002b, [4, ...u16(0x0304), ...u16(0x0303)]), // supported_versions: 1.3, 1.2
    ...ext(0x002d, [1, 1]), // psk_key_exchange_modes: psk_dhe_ke
    ...ext(0x0033, vec16([...u16(0x001d), ...vec16(share)])), // key_share: x25519
  ];
  const body = [
    ...u16(0x0303),
    ...randomBytes(32),
    32,
    ...randomBytes(32), // session id, for middlebox compatibility
    ...vec16(SUITES.flatMap(u16)),
    1,
    0, // compression: null
    ...vec16(extensions),
  ];
  const handshake = [1, (body.length >> 16) & 0xff, ...u16(body.length), ...body];
  return Buffer.from([0x16, 0x03, 0x01, ...u16(handshake.length), ...handshake]);
}

export type ServerHelloVerdict = 'server-hello' | 'need-more' | 'not-tls';

/** Whether a server's first bytes are a handshake record starting with a ServerHello (HelloRetryRequest included). */
export function serverHelloVerdict(b: Uint8Array): ServerHelloVerdict {
  if (b.length === 0) return 'need-more';
  if (b[0] !== 0x16) return 'not-tls';
  if (b.length < 6) return b.length < 2 || b[1] === 0x03 ? 'need-more' : 'not-tls';
  return b[1] === 0x03 && b[5] === 0x02 ? 'server-hello' : 'not-tls';
}
