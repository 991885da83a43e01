// Builds synthetic TLS ClientHellos, browser-like or deliberately malformed, for the parser's tests and benchmarks.

export interface HelloOptions {
  /** Host name for server_name, as latin1 bytes; omitted means no server_name extension. */
  sni?: string;
  /** ALPN protocol names; omitted or empty means no ALPN extension. */
  alpn?: string[];
  /** Add a padding extension so the handshake message (with its 4-byte header) is this many bytes. */
  padTo?: number;
  /** Add a hybrid post-quantum key share (X25519MLKEM768 is 1216 bytes) before the x25519 one. */
  keyShareBytes?: number;
  /** Sprinkle GREASE values into cipher suites, extensions, groups, key shares and versions, as Chrome does. */
  grease?: boolean;
  /** Split the handshake message into records with these fragment sizes; the rest goes in a last record. */
  recordSplit?: number[];
  /** Record layer version of every record; default 0x0301. */
  recordVersion?: number;
  /** ClientHello.legacy_version; default 0x0303. */
  legacyVersion?: number;
  /** supported_versions entries; default [0x0304, 0x0303]; empty omits the extension. */
  supportedVersions?: number[];
  /** Raw server_name extension data, replacing the one built from `sni`. */
  sniData?: Uint8Array;
  /** Raw ALPN extension data, replacing the one built from `alpn`. */
  alpnData?: Uint8Array;
  /** Complete extensions (type, length, data) appended after the built ones. */
  extraExtensions?: Uint8Array[];
  /** Handshake message type; default 1 (ClientHello). */
  handshakeType?: number;
  /** Byte that fills random, session_id and key shares; default 0x5a. */
  fill?: number;
}

export function u8(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff);
}

export function u16(v: number): Uint8Array {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}

export function u24(v: number): Uint8Array {
  return Uint8Array.of((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function filled(n: number, byte: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

/** One extension: type, 16-bit length, data. */
export function ext(type: number, data: Uint8Array): Uint8Array {
  return concat(u16(type), u16(data.length), data);
}

/** server_name extension data holding one host_name entry. */
export function sniData(host: Uint8Array): Uint8Array {
  const entry = concat(u8(0), u16(host.length), host);
  return concat(u16(entry.length), entry);
}

/** ALPN extension data for these protocol names. */
export function alpnData(names: Uint8Array[]): Uint8Array {
  const list = concat(...names.map((n) => concat(u8(n.length), n)));
  return concat(u16(list.length), list);
}

const GREASE = [0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa];

/** The handshake message (4-byte header and ClientHello body), before record framing. */
export function buildHandshake(o: HelloOptions = {}): Uint8Array {
  const fill = o.fill ?? 0x5a;
  const g = o.grease === true;
  const ciphers = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014];
  ciphers.push(0x009c, 0x009d, 0x002f, 0x0035);
  if (g) ciphers.unshift(GREASE[1]!);
  const groups = [0x001d, 0x0017, 0x0018];
  if (o.keyShareBytes !== undefined) groups.unshift(0x11ec);
  if (g) groups.unshift(GREASE[2]!);
  const versions = o.supportedVersions ?? [0x0304, 0x0303];
  const exts: Uint8Array[] = [];
  if (g) exts.push(ext(GREASE[3]!, new Uint8Array(0)));
  if (o.sniData !== undefined) exts.push(ext(0, o.sniData));
  else if (o.sni !== undefined) exts.push(ext(0, sniData(latin1(o.sni))));
  exts.push(ext(23, new Uint8Array(0)));
  exts.push(ext(0xff01, u8(0)));
  exts.push(ext(10, concat(u16(groups.length * 2), ...groups.map(u16))));
  exts.push(ext(11, Uint8Array.of(1, 0)));
  exts.push(ext(35, new Uint8Array(0)));
  if (o.alpnData !== undefined) exts.push(ext(16, o.alpnData));
  else if (o.alpn !== undefined && o.alpn.length > 0) exts.push(ext(16, alpnData(o.alpn.map(latin1))));
  exts.push(ext(5, Uint8Array.of(1, 0, 0, 0, 0)));
  const sigalgs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
  exts.push(ext(13, concat(u16(sigalgs.length * 2), ...sigalgs.map(u16))));
  exts.push(ext(18, new Uint8Array(0)));
  const shares: Uint8Array[] = [];
  if (g) shares.push(concat(u16(GREASE[2]!), u16(1), u8(0)));
  if (o.keyShareBytes !== undefined) {
    shares.push(concat(u16(0x11ec), u16(o.keyShareBytes), filled(o.keyShareBytes, fill)));
  }
  shares.push(concat(u16(0x001d), u16(32), filled(32, fill)));
  const shareList = concat(...shares);
  exts.push(ext(51, concat(u16(shareList.length), shareList)));
  exts.push(ext(45, Uint8Array.of(1, 1)));
  if (versions.length > 0) {
    const vs = g ? [GREASE[4]!, ...versions] : versions;
    exts.push(ext(43, concat(u8(vs.length * 2), ...vs.map(u16))));
  }
  exts.push(ext(27, Uint8Array.of(2, 0, 2)));
  if (g) exts.push(ext(GREASE[5]!, u8(0)));
  if (o.extraExtensions !== undefined) exts.push(...o.extraExtensions);

  const head = concat(
    u16(o.legacyVersion ?? 0x0303),
    filled(32, fill),
    u8(32),
    filled(32, fill),
    u16(ciphers.length * 2),
    ...ciphers.map(u16),
    Uint8Array.of(1, 0),
  );
  let extBytes = concat(...exts);
  // Padding extension (21): header 4 bytes + zeros, bringing the whole handshake message to padTo.
  const unpadded = 4 + head.length + 2 + extBytes.length;
  if (o.padTo !== undefined && o.padTo >= unpadded + 4) {
    extBytes = concat(extBytes, ext(21, new Uint8Array(o.padTo - unpadded - 4)));
  }
  const body = concat(head, u16(extBytes.length), extBytes);
  return concat(u8(o.handshakeType ?? 1), u24(body.length), body);
}

/** Frame handshake bytes into handshake records with the given fragment sizes; the rest goes in a last record. */
export function wrapRecords(hs: Uint8Array, split: number[] = [], recordVersion = 0x0301): Uint8Array {
  const parts: Uint8Array[] = [];
  let o = 0;
  for (const size of split) {
    if (o >= hs.length) break;
    const frag = hs.subarray(o, Math.min(hs.length, o + size));
    parts.push(concat(u8(22), u16(recordVersion), u16(frag.length), frag));
    o += frag.length;
  }
  if (o < hs.length) {
    const frag = hs.subarray(o);
    parts.push(concat(u8(22), u16(recordVersion), u16(frag.length), frag));
  }
  return concat(...parts);
}

/** A complete ClientHello as a client would send it: handshake message framed in one or more records. */
export function buildClientHello(o: HelloOptions = {}): Uint8Array {
  return wrapRecords(buildHandshake(o), o.recordSplit, o.recordVersion);
}
