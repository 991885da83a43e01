// Fuzz target: the HTTP/1.x probe and Host header normalisation, which decide host routing.
import { normalizeHost, probeHttp } from '../../../lib/detect/probes/http.js';
import { bytes, type FuzzTarget, fail, fixtures } from '../target.js';

export const http: FuzzTarget = {
  name: 'http',
  about:
    'probeHttp and normalizeHost: never throw, a routed host is normalised and stable under renormalising',
  maxLen: 20_000,
  seeds: () => [
    ...fixtures('first-bytes').filter((b) => /^[A-Z]{3,7} /.test(String.fromCharCode(...b.subarray(0, 8)))),
    bytes('GET / HTTP/1.1\r\nHost: Example.COM.:8080\r\n\r\n'),
    bytes('GET / HTTP/1.1\nhost:[::1]:80\n\n'),
    bytes('POST /x HTTP/1.0\r\nA: b\r\nHost:\t a%41.b \r\n\r\n'),
    bytes('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  ],
  dictionary: [
    bytes('Host:'),
    bytes('host: '),
    bytes('\r\n'),
    bytes('\n'),
    bytes('\r'),
    bytes(' HTTP/1.1'),
    bytes('[::1]'),
    bytes(':443'),
    bytes('%41'),
    bytes('\t'),
    bytes('OPTIONS * '),
    bytes('CONNECT '),
  ],
  check(data) {
    const r = probeHttp(data);
    if (r.kind === 'match') {
      if (r.detection.protocol !== 'http') fail(`match of ${r.detection.protocol}`);
      const host = r.detection.host;
      if (host !== undefined) {
        if (host === '') fail('empty host reported as a routing key');
        if (!isNormal(host)) fail(`host ${JSON.stringify(host)} is not normalised`);
      }
    } else if (r.kind === 'invalid' && r.protocol !== 'http') fail(`invalid for ${r.protocol}`);
    // The same bytes as a Host value on their own.
    let value = '';
    for (let i = 0; i < Math.min(data.length, 300); i++) value += String.fromCharCode(data[i]!);
    const h = normalizeHost(value);
    if (h !== undefined && h !== '' && !isNormal(h))
      fail(`normalizeHost(${JSON.stringify(value)}) = ${JSON.stringify(h)} is not normalised`);
  },
};

/**
 * Lowercase, no port, no blanks, and normalising again changes nothing but one more trailing dot:
 * "P.." gives "p." and ".." gives ".", which no configured name (no empty labels) can match.
 */
function isNormal(h: string): boolean {
  if (h !== h.toLowerCase() || /\s/.test(h)) return false;
  if (!h.startsWith('[') && h.includes(':')) return false;
  const again = normalizeHost(h);
  return again === h || (h.endsWith('.') && (again === h.slice(0, -1) || h === '.'));
}
