// Fuzz target: the inbound PROXY protocol header parser (v1 text, v2 binary with TLVs and CRC32C).
import { buildProxyHeader } from '../../../lib/proxy/header.js';
import { inboundStep } from '../../../lib/proxy/inbound.js';
import { parseProxyHeader } from '../../../lib/proxy/parse.js';
import { bytes, type FuzzTarget, fail } from '../target.js';

const v4 = { ip: Uint8Array.of(192, 0, 2, 1), port: 51234 };
const v4dst = { ip: Uint8Array.of(198, 51, 100, 7), port: 443 };
const v6 = { ip: Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x20 : i === 15 ? 1 : 0)), port: 1 };

export const proxy: FuzzTarget = {
  name: 'proxy',
  about: 'parseProxyHeader and inboundStep: never throw, match lengths stay inside the input, prefixes agree',
  maxLen: 1024,
  seeds: () => [
    bytes('PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\nGET / HTTP/1.1\r\n'),
    bytes('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n'),
    bytes('PROXY UNKNOWN\r\n'),
    buildProxyHeader('v2', { source: v4, destination: v4dst }),
    buildProxyHeader('v2', { source: v6, destination: v4dst, authority: 'a.example', alpn: 'h2' }),
    buildProxyHeader('v2', {}),
    buildProxyHeader('v1', { source: v6, destination: v6 }),
  ],
  dictionary: [
    bytes('PROXY '),
    bytes('TCP4 '),
    bytes('TCP6 '),
    bytes('UNKNOWN'),
    bytes('\r\n'),
    bytes('\r\n\r\n\x00\r\nQUIT\n'),
    bytes('\x21\x11'),
    bytes('\x21\x21'),
    bytes('\x20\x00'),
    bytes('\x03\x00\x04'), // CRC32C TLV
    bytes('\x02\x00\x09a.example'),
    bytes('::ffff:'),
  ],
  check(data) {
    const r = parseProxyHeader(data);
    if (r.kind === 'match') {
      if (r.length < 15 || r.length > data.length) fail(`match of ${r.length} bytes in ${data.length}`);
      const h = r.header;
      if (h.command === 'proxy') {
        for (const e of [h.source, h.destination]) {
          if (e.ip.length !== (h.family === 4 ? 4 : 16))
            fail(`family ${h.family} with a ${e.ip.length}-byte address`);
          if (!Number.isInteger(e.port) || e.port < 0 || e.port > 65535) fail(`port ${e.port}`);
          if (e.address.length === 0) fail('empty address text');
        }
      }
      const again = parseProxyHeader(data.subarray(0, r.length));
      if (again.kind !== 'match' || again.length !== r.length)
        fail('the header alone does not parse the same');
    } else if (r.kind === 'invalid' && r.reason.length === 0) fail('invalid without reason');
    for (let cut = 1; cut < Math.min(data.length, 240); cut += 7) {
      const k = parseProxyHeader(data.subarray(0, cut)).kind;
      if (k !== 'need-more' && k !== r.kind && !(k === 'match' && r.kind === 'match'))
        fail(`prefix of ${cut} bytes says ${k}, the whole says ${r.kind}`);
    }
    inboundStep(data, true);
    inboundStep(data, false);
  },
};
