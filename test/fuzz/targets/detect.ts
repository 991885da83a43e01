// Fuzz target: detect() over every probe, fed through the real PeekBuffer in chunks as a socket would.
import { detect } from '../../../lib/detect/detect.js';
import { PeekBuffer } from '../../../lib/detect/peek.js';
import { PROTOCOLS, type ProbeResult } from '../../../lib/detect/types.js';
import { bytes, type FuzzTarget, fail, fixtures } from '../target.js';

const PROTOCOL_SET = new Set<string>(PROTOCOLS);

/** Chunk size patterns the stream is cut into: byte by byte, odd sizes, a big first chunk. */
const CHUNKINGS: readonly (readonly number[])[] = [[1], [3, 1, 7], [64, 1], [517, 5]];

export const detectTarget: FuzzTarget = {
  name: 'detect',
  about:
    'detect(): never throws, well-formed verdict, same verdict whether the bytes come in one chunk or many',
  maxLen: 4096,
  seeds: () => [...fixtures('first-bytes'), ...fixtures('clienthello')],
  dictionary: [
    bytes('SSH-2.0-'),
    bytes('GET / HTTP/1.1\r\n'),
    bytes('CONNECT a:443 HTTP/1.1\r\n'),
    bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    bytes('Host: a.example\r\n'),
    bytes('\r\n\r\n'),
    bytes("<?xml version='1.0'?><stream:stream to='a.example' xmlns='jabber:client'"),
    bytes('0 name 17\n'),
    bytes('CNXN'),
    bytes('\x10\x00\x04MQTT\x04'),
    bytes('\x00\x00\x00\x08\x04\xd2\x16\x2f'),
    bytes('\x03\x00\x00\x13\x0e\xe0'),
    bytes('\x05\x01\x00'),
    bytes('\x04\x01'),
    bytes('\x00\x0e\x38'),
    bytes('\x16\x03\x01'),
  ],
  check(data) {
    const whole = detect(data);
    wellFormed(whole);
    const want = verdictKey(whole);
    for (const sizes of CHUNKINGS) {
      const got = verdictKey(streamed(data, sizes));
      if (got !== want) fail(`chunks of ${sizes.join(',')} give ${got}, one buffer gives ${want}`);
    }
  },
};

/** What the mux decides when the bytes arrive in chunks of these sizes (repeating the last): the first decision. */
export function streamed(data: Uint8Array, sizes: readonly number[]): ProbeResult {
  const peek = new PeekBuffer();
  let r: ProbeResult = { kind: 'need-more' };
  for (let off = 0, k = 0; off < data.length; k++) {
    const size = sizes[Math.min(k, sizes.length - 1)]!;
    // A fresh buffer per chunk, as each socket read is: PeekBuffer keeps the first one without copying.
    peek.append(data.slice(off, off + size));
    off += size;
    r = detect(peek.view());
    if (r.kind !== 'need-more') return r;
  }
  if (!sameBytes(peek.take(), data)) fail('PeekBuffer did not hand back exactly the bytes appended');
  return r;
}

/** A verdict as a comparable string: the kind and everything that routes. */
export function verdictKey(r: ProbeResult): string {
  if (r.kind === 'match') return `match ${JSON.stringify(r.detection)}`;
  if (r.kind === 'invalid') return `invalid ${r.protocol}`;
  return r.kind;
}

function wellFormed(r: ProbeResult): void {
  if (r.kind === 'match') {
    const d = r.detection;
    if (!PROTOCOL_SET.has(d.protocol)) fail(`match of unknown protocol ${d.protocol}`);
    if (d.sni !== undefined && (d.sni !== d.sni.toLowerCase() || d.sni.endsWith('.')))
      fail(`sni ${JSON.stringify(d.sni)} is not normalised`);
    if (d.host !== undefined && d.host !== d.host.toLowerCase())
      fail(`host ${JSON.stringify(d.host)} is not lowercased`);
  } else if (r.kind === 'invalid') {
    if (!PROTOCOL_SET.has(r.protocol) || r.reason.length === 0)
      fail(`bad invalid verdict ${JSON.stringify(r)}`);
  } else if (r.kind === 'no-match') {
    if (r.reason.length === 0) fail('no-match without reason');
  } else if (r.kind !== 'need-more') {
    fail(`unknown kind ${JSON.stringify(r)}`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
