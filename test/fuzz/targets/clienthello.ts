// Fuzz target: the TLS ClientHello parser, with the verdict's shape and prefix consistency as invariants.
import { parseClientHello } from '../../../lib/detect/clienthello.js';
import { buildClientHello } from '../../helpers/hello-builder.js';
import { bytes, type FuzzTarget, fail, fixtures } from '../target.js';

const KINDS = new Set(['match', 'need-more', 'no-match', 'invalid']);

export const clienthello: FuzzTarget = {
  name: 'clienthello',
  about: 'parseClientHello: never throws, well-formed verdict, a decided prefix agrees with the whole',
  maxLen: 8192,
  seeds: () => [
    ...fixtures('clienthello'),
    buildClientHello({ sni: 'a.example', alpn: ['h2', 'http/1.1'], grease: true }),
    buildClientHello({ sni: 'split.example', alpn: ['h2'], recordSplit: [1, 3, 40, 100] }),
    buildClientHello({ alpn: ['http/1.1'], keyShareBytes: 1216, padTo: 2048 }),
  ],
  dictionary: [
    bytes('\x16\x03\x01'),
    bytes('\x16\x03\x03'),
    bytes('\x00\x00'), // server_name
    bytes('\x00\x10'), // ALPN
    bytes('\x00\x2b'), // supported_versions
    bytes('\x0a\x0a'), // GREASE
    bytes('\x03\x04'),
    bytes('\x02h2'),
    bytes('\x08http/1.1'),
    bytes('a.example.'),
  ],
  check(data) {
    const r = parseClientHello(data);
    if (!KINDS.has(r.kind)) fail(`unknown kind ${r.kind}`);
    if ((r.kind === 'no-match' || r.kind === 'invalid') && r.reason.length === 0)
      fail(`${r.kind} without reason`);
    if (r.kind === 'match') {
      const { sni, length } = r.hello;
      if (length > data.length) fail(`hello length ${length} beyond the ${data.length} bytes given`);
      if (sni !== undefined && (sni !== sni.toLowerCase() || sni.endsWith('.') || sni.length === 0))
        fail(`sni ${JSON.stringify(sni)} is not normalised`);
      if (parseClientHello(data.subarray(0, length)).kind !== 'match')
        fail('the hello alone does not match without the bytes after it');
    }
    // A decision on a prefix must be the decision on the whole: the mux decides on the first chunk that decides.
    for (const cut of cuts(data.length)) {
      const k = parseClientHello(data.subarray(0, cut)).kind;
      if (k !== 'need-more' && k !== r.kind)
        fail(`prefix of ${cut} bytes says ${k}, the whole says ${r.kind}`);
    }
  },
};

/** A few cut points spread over the input, including both ends of the record header. */
export function cuts(n: number): number[] {
  const out = [1, 2, 3, 5, 6, 9, 10, 43, 44];
  for (let i = 1; i < 8; i++) out.push(Math.floor((n * i) / 8));
  return out.filter((c) => c > 0 && c < n);
}
