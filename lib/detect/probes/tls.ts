// The TLS probe: turns a ClientHello parse of a connection's first bytes into a routing verdict.

import { parseClientHello } from '../clienthello.js';
import { NEED_MORE, type Probe } from '../types.js';

/** Matches a complete TLS ClientHello and exposes its SNI and ALPN for routing. */
export const probeTls: Probe = (buf) => {
  const r = parseClientHello(buf);
  switch (r.kind) {
    case 'match': {
      const { sni, alpn } = r.hello;
      return {
        kind: 'match',
        detection: sni === undefined ? { protocol: 'tls', alpn } : { protocol: 'tls', sni, alpn },
      };
    }
    case 'need-more':
      return NEED_MORE;
    case 'no-match':
      return r;
    case 'invalid':
      return { kind: 'invalid', protocol: 'tls', reason: r.reason };
  }
};
