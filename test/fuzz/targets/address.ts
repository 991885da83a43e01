// Fuzz target: address, CIDR and IP text parsers used by the config and by source matching.
import fc from 'fast-check';
import { parseEndpoint } from '../../../lib/net/address.js';
import { cidrContains, ipBytes, parseCidr } from '../../../lib/net/ip.js';
import { bytes, type FuzzTarget, fail } from '../target.js';

export const address: FuzzTarget = {
  name: 'address',
  about:
    'parseEndpoint, parseCidr, ipBytes: never throw; what they accept is well formed and contains itself',
  maxLen: 512,
  seeds: () =>
    [
      '127.0.0.1:443',
      '[2001:db8::1]:443',
      '[fe80::1%eth0]:22',
      'backend.lan:8443',
      '10.0.0.0/8',
      '2001:db8::/32',
      '::ffff:10.0.0.0/104',
      '::ffff:192.0.2.1',
      '1.2.3.4',
      '::',
    ].map(bytes),
  // Thousands of IPv4 results, so the address slab in lib/net/ip.ts runs out and is refilled.
  generated: () =>
    fc
      .sample(
        fc.oneof(
          fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 65536 })).map(([ip, port]) => `${ip}:${port}`),
          fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 65536 })).map(([ip, port]) => `[${ip}]:${port}`),
          fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 33 })).map(([ip, n]) => `${ip}/${n}`),
          fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 129 })).map(([ip, n]) => `${ip}/${n}`),
        ),
        { numRuns: 2000, seed: 7 },
      )
      .map(bytes),
  dictionary: [
    bytes(':'),
    bytes('::'),
    bytes('.'),
    bytes('/'),
    bytes('['),
    bytes(']'),
    bytes('%'),
    bytes('ffff'),
  ],
  check(data) {
    let text = '';
    for (const b of data) text += String.fromCharCode(b);
    const e = parseEndpoint(text);
    if (e.kind === 'ok') {
      const { port, host } = e.endpoint;
      if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`port ${port} accepted`);
      if (host.length === 0) fail('empty host accepted');
    }
    const c = parseCidr(text);
    if (c.kind === 'ok') {
      const { family, bytes: addr, prefix } = c.cidr;
      if (addr.length !== (family === 4 ? 4 : 16)) fail(`family ${family} with ${addr.length} bytes`);
      if (prefix < 0 || prefix > addr.length * 8) fail(`prefix ${prefix}`);
      if (!cidrContains(c.cidr, addr)) fail(`${text} does not contain its own address`);
    }
    const ip = ipBytes(text);
    if (ip !== undefined && ip.length !== 4 && ip.length !== 16) fail(`ipBytes gave ${ip.length} bytes`);
  },
};
