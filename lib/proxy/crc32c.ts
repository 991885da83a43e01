// CRC-32C (Castagnoli), which a PROXY v2 header may carry in a PP2_TYPE_CRC32C TLV to be verified.

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32C of buf[start, end), with the 4 bytes at `zeroAt` read as zeros: the checksum field itself,
 * as the spec computes it, without copying the header.
 */
export function crc32c(buf: Uint8Array, start: number, end: number, zeroAt?: number): number {
  if (zeroAt === undefined) return (update(0xffffffff, buf, start, end) ^ 0xffffffff) >>> 0;
  let c = update(0xffffffff, buf, start, zeroAt);
  c = update(c, ZEROS, 0, 4);
  return (update(c, buf, zeroAt + 4, end) ^ 0xffffffff) >>> 0;
}

const ZEROS = new Uint8Array(4);

function update(crc: number, buf: Uint8Array, start: number, end: number): number {
  let c = crc;
  for (let i = start; i < end; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c;
}
