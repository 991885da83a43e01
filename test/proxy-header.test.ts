// The PROXY header builder and parser: spec examples, every malformation, and properties over 10,000s of headers.
import fc from 'fast-check';
import {
  Command,
  INETProtocol,
  IPv6Address,
  IPv6ProxyAddress,
  Peer,
  TransportProtocol,
  V1ProxyProtocol,
  V2ProxyProtocol,
} from 'proxy-protocol-js';
import t, { type Test } from 'tap';
import { formatIp, parseCidr, parseIpText } from '../lib/net/ip.js';
import { crc32c } from '../lib/proxy/crc32c.js';
import { buildProxyHeader, type ProxyHeaderInfo, V2_SIGNATURE } from '../lib/proxy/header.js';
import { inboundStep, isTrustedPeer } from '../lib/proxy/inbound.js';
import { headerAlpn, outboundHeader } from '../lib/proxy/outbound.js';
import { matchProxySignature, type ProxyParseResult, parseProxyHeader } from '../lib/proxy/parse.js';
import { property, RUNS } from './helpers/property.js';

const KINDS = ['match', 'need-more', 'no-match', 'invalid'];

const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const ip = (text: string): Uint8Array => {
  const b = parseIpText(text, text.includes(':') ? 6 : 4);
  if (b === undefined) throw new Error(`bad test address ${text}`);
  return b;
};
const v4info: ProxyHeaderInfo = {
  source: { ip: ip('192.0.2.10'), port: 51234 },
  destination: { ip: ip('198.51.100.1'), port: 443 },
};

/** A v2 header as bytes: signature, then the given version/command, family/transport, length and body. */
function v2(verCmd: number, famProto: number, body: number[], length = body.length): Uint8Array {
  return Uint8Array.from([...V2_SIGNATURE, verCmd, famProto, length >> 8, length & 0xff, ...body]);
}
const V4_BODY = [192, 0, 2, 10, 198, 51, 100, 1, 0xc8, 0x22, 0x01, 0xbb];

/** Appends a PP2_TYPE_CRC32C TLV to a v2 header and fixes its length, as HAProxy's crc32c option does. */
function withCrc(h: Uint8Array): Uint8Array {
  const out = new Uint8Array(h.length + 7);
  out.set(h);
  out.set([0x03, 0, 4], h.length);
  const len = out.length - 16;
  out[14] = len >> 8;
  out[15] = len & 0xff;
  const crc = crc32c(out, 0, out.length);
  new DataView(out.buffer).setUint32(h.length + 3, crc);
  return out;
}

function expectInvalid(t: Test, buf: Uint8Array, reason: RegExp, what: string): void {
  const r = parseProxyHeader(buf);
  t.equal(r.kind, 'invalid', what);
  if (r.kind === 'invalid') t.match(r.reason, reason, `${what}: reason`);
}

t.test('v1 lines as the spec writes them', async (t) => {
  t.equal(
    Buffer.from(buildProxyHeader('v1', v4info)).toString('latin1'),
    'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n',
  );
  const v6 = buildProxyHeader('v1', {
    source: { ip: ip('2001:db8::1'), port: 1 },
    destination: { ip: ip('::1'), port: 65535 },
  });
  t.equal(Buffer.from(v6).toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 1 65535\r\n');
  t.equal(Buffer.from(buildProxyHeader('v1', {})).toString('latin1'), 'PROXY UNKNOWN\r\n', 'no addresses');
  const mixed = buildProxyHeader('v1', {
    source: { ip: ip('2001:db8::7'), port: 5 },
    destination: { ip: ip('127.0.0.1'), port: 443 },
  });
  t.equal(
    Buffer.from(mixed).toString('latin1'),
    'PROXY TCP6 2001:db8::7 ::ffff:127.0.0.1 5 443\r\n',
    'an IPv4 end beside an IPv6 one is written IPv4-mapped',
  );
  const bad = buildProxyHeader('v1', { ...v4info, source: { ip: ip('192.0.2.1'), port: 70000 } });
  t.equal(Buffer.from(bad).toString('latin1'), 'PROXY UNKNOWN\r\n', 'an impossible port gives UNKNOWN');

  const longest = ascii(
    'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n',
  );
  t.equal(longest.length, 104);
  const r = parseProxyHeader(longest);
  t.match(r, { kind: 'match', length: 104, header: { version: 1, command: 'proxy', family: 6 } });
  const payload = Buffer.concat([
    ascii('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'),
    ascii('GET /'),
  ]);
  t.match(parseProxyHeader(payload), {
    kind: 'match',
    length: 56,
    header: { source: { address: '255.255.255.255', port: 65535 } },
  });
  t.match(parseProxyHeader(ascii('PROXY UNKNOWN\r\n')), {
    kind: 'match',
    length: 15,
    header: { command: 'local' },
  });
  t.match(
    parseProxyHeader(ascii('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX')),
    { kind: 'match', length: 35, header: { command: 'local' } },
    'whatever follows UNKNOWN is ignored',
  );
  t.match(
    parseProxyHeader(ascii('PROXY TCP6 ::ffff:1 ::1 9 9\r\n')),
    { kind: 'match', header: { family: 6, source: { address: '::ffff:1' } } },
    '"::ffff:1" is IPv6 text, not a mapped IPv4 address',
  );
  t.match(parseProxyHeader(ascii('PROXY TCP6 ::ffff:10.1.2.3 ::1 9 9\r\n')), {
    kind: 'match',
    header: { family: 6, source: { address: '::ffff:10.1.2.3' } },
  });
});

t.test('v1: every kind of malformed line is invalid, with a reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /unknown protocol "TCP5"/],
    ['PROXY \r\n', /unknown protocol ""/],
    ['PROXY TCP4 999.2.3.4 5.6.7.8 1 2\r\n', /"999.2.3.4" is not an IPv4/],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', /not an IPv4/],
    ['PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', /not an IPv4/],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /not an IPv4/],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /not an IPv6/],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', /not an IPv6/],
    ['PROXY TCP6 ::1 1:2:3:4:5:6:7:8:9 1 2\r\n', /not an IPv6/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n', /ports/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n', /ports/],
    ['PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', /single spaces/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', /single spaces/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /CRLF/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r2\r\n', /byte 0x0d/],
    ['PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n', /byte 0x09/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00ff\r\n', /byte 0xff/],
    [`PROXY UNKNOWN ${'x'.repeat(100)}\r\n`, /no CRLF within 107 bytes/],
  ];
  for (const [line, reason] of cases) expectInvalid(t, ascii(line), reason, JSON.stringify(line));
});

t.test('v2 headers: addresses, LOCAL, and the TLVs proxy-protocol-js leaves out of the length', async (t) => {
  const h = buildProxyHeader('v2', { ...v4info, authority: 'blog.bjk.is', alpn: 'h2' });
  const tlvs = [0x01, 0, 2, ...ascii('h2'), 0x02, 0, 11, ...ascii('blog.bjk.is')];
  t.same([...h], [...v2(0x21, 0x11, [...V4_BODY, ...tlvs])], 'byte for byte, the length covering the TLVs');
  t.match(parseProxyHeader(h), {
    kind: 'match',
    length: h.length,
    header: {
      version: 2,
      command: 'proxy',
      family: 4,
      source: { address: '192.0.2.10', port: 51234 },
      destination: { address: '198.51.100.1', port: 443 },
      authority: 'blog.bjk.is',
      alpn: 'h2',
    },
  });
  const local = buildProxyHeader('v2', {});
  t.same([...local], [...v2(0x20, 0x00, [])], 'no addresses: LOCAL, UNSPEC');
  t.match(parseProxyHeader(local), { kind: 'match', length: 16, header: { version: 2, command: 'local' } });

  const v6 = buildProxyHeader('v2', {
    source: { ip: ip('2001:db8::5'), port: 40000 },
    destination: { ip: ip('::1'), port: 8443 },
  });
  t.equal(v6.length, 16 + 36);
  t.equal(v6[13], 0x21, 'AF_INET6, STREAM');
  t.match(parseProxyHeader(v6), {
    kind: 'match',
    header: { family: 6, source: { address: '2001:db8::5', port: 40000 }, destination: { address: '::1' } },
  });

  // What a health check sends (HAProxy "check-send-proxy"): LOCAL, whatever the block holds.
  t.match(parseProxyHeader(v2(0x20, 0x11, V4_BODY)), {
    kind: 'match',
    length: 28,
    header: { command: 'local' },
  });
  t.match(
    parseProxyHeader(v2(0x21, 0x00, [])),
    { kind: 'match', header: { command: 'local' } },
    'PROXY, UNSPEC',
  );
  t.match(
    parseProxyHeader(v2(0x21, 0x31, new Array(216).fill(0x2f))),
    { kind: 'match', length: 232, header: { command: 'local' } },
    'a UNIX socket client names no IP: keep the connection address',
  );
  t.match(
    parseProxyHeader(v2(0x21, 0x12, V4_BODY)),
    { kind: 'match', header: { command: 'local' } },
    'UDP, as HAProxy',
  );
  const ssl = [0x20, 0, 5, 0x07, 0, 0, 0, 0];
  t.match(
    parseProxyHeader(v2(0x21, 0x11, [...V4_BODY, ...ssl, 0x04, 0, 0])),
    { kind: 'match', header: { command: 'proxy', source: { address: '192.0.2.10' } } },
    'PP2_TYPE_SSL and NOOP TLVs are skipped',
  );
  const crc = withCrc(h);
  t.match(
    parseProxyHeader(crc),
    { kind: 'match', length: crc.length, header: { alpn: 'h2' } },
    'a good CRC32C',
  );
  const withPayload = Buffer.concat([h, ascii('\x16\x03\x01')]);
  t.match(
    parseProxyHeader(withPayload),
    { kind: 'match', length: h.length },
    'the client bytes after it are not eaten',
  );
});

t.test('a header HAProxy 2.6 sent with "send-proxy-v2 proxy-v2-options crc32c" verifies', async (t) => {
  const captured = Buffer.from(
    '0d0a0d0a000d0a515549540a211100137f0000017f000001a79446ab030004900055ee6869',
    'hex',
  );
  t.match(parseProxyHeader(captured), {
    kind: 'match',
    length: 35,
    header: { source: { address: '127.0.0.1', port: 42900 }, destination: { port: 18091 } },
  });
  captured[20] = captured[20]! ^ 1;
  expectInvalid(t, captured, /CRC32C does not match/, 'one flipped bit');
});

t.test('v2: every kind of malformed header is invalid, with a reason', async (t) => {
  expectInvalid(t, v2(0x11, 0x11, V4_BODY), /unknown version 1/, 'version 1 in a v2 header');
  expectInvalid(t, v2(0x31, 0x11, V4_BODY), /unknown version 3/, 'version 3');
  expectInvalid(t, v2(0x22, 0x11, V4_BODY), /unknown command 2/, 'command 2');
  expectInvalid(t, v2(0x2f, 0x11, V4_BODY), /unknown command 15/, 'command 15');
  expectInvalid(t, v2(0x21, 0x41, V4_BODY), /unknown address family 4/, 'family 4');
  expectInvalid(t, v2(0x21, 0x13, V4_BODY), /unknown transport protocol 3/, 'transport 3');
  expectInvalid(
    t,
    v2(0x21, 0x11, V4_BODY.slice(0, 8)),
    /length 8 is shorter than the 12-byte/,
    'IPv4 length 8',
  );
  expectInvalid(
    t,
    v2(0x21, 0x21, V4_BODY),
    /length 12 is shorter than the 36-byte/,
    'IPv6 with an IPv4 block',
  );
  expectInvalid(t, v2(0x21, 0x11, [...V4_BODY, 0x01, 0]), /2 stray byte/, 'half a TLV');
  expectInvalid(
    t,
    v2(0x21, 0x11, [...V4_BODY, 0x02, 0, 9, 0x61]),
    /TLV 0x2 of 9 bytes overruns/,
    'TLV overrun',
  );
  expectInvalid(t, v2(0x21, 0x11, [...V4_BODY, 0x03, 0, 2, 0, 0]), /CRC32C TLV of 2 bytes/, 'short CRC');
  const crc = withCrc(buildProxyHeader('v2', v4info));
  crc[18] = crc[18]! ^ 1;
  expectInvalid(t, crc, /CRC32C does not match/, 'a flipped address bit under a CRC');
  t.equal(
    parseProxyHeader(v2(0x31, 0x11, []).subarray(0, 13)).kind,
    'invalid',
    'a bad version is refused at once',
  );
});

t.test('prefixes wait, other bytes are no PROXY header at all', async (t) => {
  for (const h of [buildProxyHeader('v1', v4info), buildProxyHeader('v2', { ...v4info, alpn: 'h2' })]) {
    for (let n = 0; n < h.length; n++)
      t.equal(parseProxyHeader(h.subarray(0, n)).kind, 'need-more', `${n} bytes`);
  }
  for (const s of [
    'GET / HTTP/1.1\r\n',
    '\x16\x03\x01\x02\x00',
    'SSH-2.0-OpenSSH_9.2\r\n',
    'PROXI',
    '\r\n\r\n\0\r\nQUIX\n',
  ]) {
    t.equal(parseProxyHeader(ascii(s)).kind, 'no-match', JSON.stringify(s));
  }
  t.equal(matchProxySignature(ascii('PROXY ')).kind, 'match');
  t.equal(matchProxySignature(V2_SIGNATURE).kind, 'match');
  t.equal(matchProxySignature(ascii('PROX')).kind, 'need-more');
  t.equal(matchProxySignature(V2_SIGNATURE.subarray(0, 11)).kind, 'need-more');
  t.equal(matchProxySignature(ascii('PROXYZ')).kind, 'no-match');
  t.equal(matchProxySignature(ascii('\x16\x03')).kind, 'no-match');
});

t.test('headers proxy-protocol-js builds parse here, and ours parse there', async (t) => {
  const theirs1 = new V1ProxyProtocol(
    INETProtocol.TCP4,
    new Peer('10.1.2.3', 1000),
    new Peer('10.9.9.9', 443),
  ).build();
  t.match(parseProxyHeader(ascii(theirs1)), {
    kind: 'match',
    header: { source: { address: '10.1.2.3', port: 1000 } },
  });
  const theirs2 = new V2ProxyProtocol(
    Command.PROXY,
    TransportProtocol.STREAM,
    new IPv6ProxyAddress(
      IPv6Address.createFrom([0x20, 1, 0xd, 0xb8, ...new Array(11).fill(0), 9]),
      7,
      IPv6Address.createFrom(new Array(15).fill(0).concat(1)),
      8,
    ),
  ).build();
  t.match(parseProxyHeader(theirs2), {
    kind: 'match',
    header: { source: { address: '2001:db8::9', port: 7 }, destination: { address: '::1', port: 8 } },
  });
  const ours1 = V1ProxyProtocol.parse(Buffer.from(buildProxyHeader('v1', v4info)).toString('latin1'));
  t.match(ours1, {
    source: { ipAddress: '192.0.2.10', port: 51234 },
    destination: { ipAddress: '198.51.100.1', port: 443 },
  });
  const ours2 = V2ProxyProtocol.parse(buildProxyHeader('v2', v4info));
  t.match(ours2, { command: Command.PROXY, proxyAddress: { sourcePort: 51234, destinationPort: 443 } });
});

t.test('IPv6 text is RFC 5952, as URL hosts print it; IPv4-mapped keeps its dotted tail', async (t) => {
  t.equal(formatIp(ip('2001:0db8:0000:0000:0000:0000:0000:0001')), '2001:db8::1');
  t.equal(formatIp(ip('2001:db8:0:1:1:1:1:1')), '2001:db8:0:1:1:1:1:1', 'one zero group is not "::"');
  t.equal(formatIp(ip('2001:0:0:1:0:0:0:1')), '2001:0:0:1::1', 'the longest run');
  t.equal(formatIp(ip('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1', 'the first of equal runs');
  t.equal(formatIp(ip('::')), '::');
  t.equal(formatIp(ip('1::')), '1::');
  t.equal(formatIp(ip('::ffff:192.0.2.1')), '::ffff:192.0.2.1');
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 0, max: 7 }),
      (b, zeros) => {
        b.fill(0, 0, zeros * 2); // make zero runs common
        if (b[10] === 0xff && b[11] === 0xff) b[11] = 0; // mapped form differs by design
        const text = formatIp(b);
        return text === new URL(`http://[${text}]/`).hostname.slice(1, -1) && Buffer.from(ip(text)).equals(b);
      },
    ),
    { numRuns: RUNS },
  );
});

t.test('CRC-32C is Castagnoli', async (t) => {
  t.equal(crc32c(ascii('123456789'), 0, 9), 0xe3069283);
  t.equal(
    crc32c(ascii('123456789WXYZ!'), 0, 14, 9),
    crc32c(ascii('123456789\0\0\0\0!'), 0, 14),
    'zeroed field',
  );
});

t.test('outbound: the header carries the client, the listener address, SNI and one ALPN', async (t) => {
  const facts = {
    source: ip('203.0.113.9'),
    clientPort: 4000,
    proxyHeader: undefined,
    client: { localAddress: '::ffff:127.0.0.1', localPort: 8443 },
    sni: 'app.example',
    alpn: ['http/1.1', 'h2'],
    route: { alpn: ['h2'] },
  };
  t.match(parseProxyHeader(outboundHeader('v2', facts)), {
    kind: 'match',
    header: {
      family: 4,
      source: { address: '203.0.113.9', port: 4000 },
      destination: { address: '127.0.0.1', port: 8443 },
      authority: 'app.example',
      alpn: 'h2',
    },
  });
  const inbound = parseProxyHeader(ascii('PROXY TCP6 2001:db8::2 2001:db8::1 5555 443\r\n'));
  if (inbound.kind !== 'match') throw new Error('fixture');
  const relayed = { ...facts, source: ip('2001:db8::2'), clientPort: 5555, proxyHeader: inbound.header };
  t.equal(
    Buffer.from(outboundHeader('v1', relayed)).toString('latin1'),
    'PROXY TCP6 2001:db8::2 2001:db8::1 5555 443\r\n',
    'behind a front proxy, the destination is the one its header named',
  );
  t.equal(headerAlpn(['a', 'b'], undefined), 'a');
  t.equal(headerAlpn(['a', 'b'], ['b']), 'b');
  t.equal(headerAlpn(['a'], ['z']), 'a');
  t.equal(headerAlpn([], undefined), undefined);
});

t.test('inbound: trusted peers must send a header, others must not', async (t) => {
  const from = ['10.0.0.0/8', '::1'].map((s) => {
    const c = parseCidr(s);
    if (c.kind !== 'ok') throw new Error(s);
    return c.cidr;
  });
  t.ok(isTrustedPeer(from, ip('10.2.3.4')));
  t.ok(isTrustedPeer(from, ip('::1')));
  t.notOk(isTrustedPeer(from, ip('11.0.0.1')));
  t.notOk(isTrustedPeer(undefined, ip('10.2.3.4')), 'no [accept_proxy]: nobody');
  t.notOk(isTrustedPeer(from, undefined));
  const hdr = buildProxyHeader('v1', v4info);
  t.match(inboundStep(hdr, true), { kind: 'header', length: hdr.length });
  t.match(inboundStep(hdr, false), { kind: 'refuse', reason: /not in accept_proxy.from/ });
  t.match(inboundStep(V2_SIGNATURE, false), { kind: 'refuse' });
  t.match(inboundStep(ascii('GET / HTTP/1.1\r\n'), true), { kind: 'refuse', reason: /no PROXY header/ });
  t.match(inboundStep(ascii('GET / HTTP/1.1\r\n'), false), { kind: 'none' });
  t.match(inboundStep(ascii('PRO'), false), { kind: 'wait' });
  t.match(inboundStep(hdr.subarray(0, 20), true), { kind: 'wait' });
  t.match(inboundStep(ascii('PROXY TCP9\r\n'), true), { kind: 'refuse', reason: /TCP9/ });
});

// Properties.

const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const endpoint = fc.record({ ip: fc.oneof(v4, v6), port: fc.integer({ min: 0, max: 65535 }) });
const info: fc.Arbitrary<ProxyHeaderInfo> = fc.record(
  {
    source: endpoint,
    destination: endpoint,
    authority: fc.stringMatching(/^[a-z0-9.-]{1,60}$/),
    alpn: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => String.fromCharCode(...b)),
  },
  { requiredKeys: ['source', 'destination'] },
);
const version = fc.constantFrom('v1' as const, 'v2' as const);

function wellFormed(buf: Uint8Array): ProxyParseResult {
  const r = parseProxyHeader(buf);
  if (!KINDS.includes(r.kind)) throw new Error(`unexpected kind ${r.kind}`);
  if (r.kind === 'invalid' && r.reason.length === 0) throw new Error('empty reason');
  if (r.kind === 'match' && (r.length < 15 || r.length > buf.length)) throw new Error(`length ${r.length}`);
  return r;
}

/** The 16-byte form of an address, so IPv4 and IPv4-mapped ends compare equal. */
const as16 = (b: Uint8Array): string =>
  Buffer.from(b.length === 16 ? b : Uint8Array.from([...new Array(10).fill(0), 0xff, 0xff, ...b])).toString(
    'hex',
  );

t.test('property: built headers parse back to what they were built from, payload untouched', async (t) => {
  property(
    t,
    'holds',
    fc.property(version, info, fc.uint8Array({ maxLength: 64 }), (ver, i, payload) => {
      const h = buildProxyHeader(ver, i);
      const r = wellFormed(Buffer.concat([h, payload]));
      if (r.kind !== 'match' || r.length !== h.length || r.header.command !== 'proxy') return false;
      const { source, destination } = r.header;
      const same =
        as16(source.ip) === as16(i.source!.ip) &&
        as16(destination.ip) === as16(i.destination!.ip) &&
        source.port === i.source!.port &&
        destination.port === i.destination!.port &&
        formatIp(source.ip) === source.address;
      if (ver === 'v1') return same && r.header.authority === undefined;
      return same && r.header.authority === i.authority && r.header.alpn === i.alpn;
    }),
  );
});

t.test('property: every truncation of a valid header is need-more', async (t) => {
  property(
    t,
    'holds',
    fc.property(version, info, fc.nat(), (ver, i, cut) => {
      const h = buildProxyHeader(ver, i);
      return wellFormed(h.subarray(0, cut % h.length)).kind === 'need-more';
    }),
  );
});

t.test('property: a mutated header never throws and is invalid or a match', async (t) => {
  property(
    t,
    'holds',
    fc.property(version, info, fc.nat(), fc.integer({ min: 1, max: 255 }), (ver, i, pos, x) => {
      const h = buildProxyHeader(ver, i).slice();
      const at = pos % h.length;
      h[at] = h[at]! ^ x;
      const kind = wellFormed(h).kind;
      if (kind === 'match' || kind === 'invalid') return true;
      // The exceptions, each for a reason: a broken signature is no header at all; a longer v2
      // length or a v1 line that lost its CRLF is a header still arriving.
      const sigEnd = ver === 'v1' ? 6 : 12;
      if (kind === 'no-match') return at < sigEnd;
      return ver === 'v1' ? at >= h.length - 2 : at === 14 || at === 15;
    }),
  );
});

t.test('property: under a CRC32C, any changed address byte is invalid', async (t) => {
  property(
    t,
    'holds',
    fc.property(info, fc.nat(), fc.integer({ min: 1, max: 255 }), (i, pos, x) => {
      const h = withCrc(buildProxyHeader('v2', i));
      const addrLen = h[13] === 0x11 ? 12 : 36;
      const at = 16 + (pos % addrLen);
      h[at] = h[at]! ^ x;
      return wellFormed(h).kind === 'invalid';
    }),
  );
});

t.test('property: arbitrary bytes never throw; a match is the same on its own bytes', async (t) => {
  const sigPrefixed = fc
    .tuple(
      fc.constantFrom(ascii('PROXY '), ascii('PROXY TCP4 '), ascii('PROXY TCP6 '), V2_SIGNATURE),
      fc.uint8Array({ maxLength: 200 }),
    )
    .map(([sig, rest]) => Uint8Array.from([...sig, ...rest]));
  const v2Like = fc
    .tuple(
      fc.integer({ min: 0, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.uint8Array({ maxLength: 120 }),
    )
    .map(([a, b, rest]) => v2(a, b, [...rest]));
  property(
    t,
    'holds',
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), sigPrefixed, v2Like), (buf) => {
      const r = wellFormed(buf);
      if (r.kind !== 'match') return true;
      return JSON.stringify(wellFormed(buf.slice(0, r.length))) === JSON.stringify(r);
    }),
  );
});
