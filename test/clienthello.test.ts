// Specification of the ClientHello parser and the TLS probe, on real captured hellos and hand-made malformed ones.

import { readdirSync, readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { type HelloResult, parseClientHello } from '../lib/detect/clienthello.js';
import { probeTls } from '../lib/detect/probes/tls.js';
import {
  alpnData,
  buildClientHello,
  buildHandshake,
  concat,
  ext,
  latin1,
  sniData,
  u8,
  u16,
  u24,
  wrapRecords,
} from './helpers/hello-builder.js';

const fixtureDir = new URL('./fixtures/clienthello/', import.meta.url);

/** What each captured client sent; see test/fixtures/clienthello/README.md. */
const expected: Record<string, { sni: string | undefined; alpn: string[] }> = {
  'openssl-sni-alpn.bin': { sni: 'x.example.com', alpn: ['h2', 'http/1.1'] },
  'openssl-tls12.bin': { sni: 'x.example.com', alpn: ['h2', 'http/1.1'] },
  'openssl-nosni.bin': { sni: undefined, alpn: ['h2', 'http/1.1'] },
  'openssl-ffdhe8192.bin': { sni: 'big.example.com', alpn: [] },
  'curl.bin': { sni: 'a.example.com', alpn: ['h2', 'http/1.1'] },
  'curl-http2.bin': { sni: 'a.example.com', alpn: ['h2', 'http/1.1'] },
  'curl-http1.1.bin': { sni: 'a.example.com', alpn: ['http/1.1'] },
  'gnutls-cli.bin': { sni: 'g.example.com', alpn: ['h2', 'http/1.1'] },
  'node-tls.bin': { sni: 'n.example.com', alpn: ['h2', 'http/1.1'] },
};

const fixtures = readdirSync(fixtureDir)
  .filter((f) => f.endsWith('.bin'))
  .sort()
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, fixtureDir))) }));

function mustMatch(t: Test, r: HelloResult) {
  if (r.kind !== 'match') {
    t.fail(`expected match, got ${JSON.stringify(r)}`);
    throw new Error('no match');
  }
  return r.hello;
}

/** Every strict prefix must say need-more, and the whole must match: no early wrong answer. */
function checkPrefixes(t: Test, buf: Uint8Array): void {
  let bad = -1;
  for (let k = 0; k < buf.length; k++) {
    if (parseClientHello(buf.subarray(0, k)).kind !== 'need-more') {
      bad = k;
      break;
    }
  }
  t.equal(bad, -1, 'every strict prefix is need-more');
  t.equal(parseClientHello(buf).kind, 'match', 'the full hello matches');
}

/** The handshake message inside a single-record hello, for re-framing. */
function handshakeOf(buf: Uint8Array): Uint8Array {
  return buf.subarray(5);
}

t.test('captured fixtures', async (t) => {
  t.ok(fixtures.length >= 8, 'fixtures are present');
  for (const { name, bytes } of fixtures) {
    t.test(name, async (t) => {
      const want = expected[name];
      t.ok(want, 'fixture is described in the expectations table');
      const hello = mustMatch(t, parseClientHello(bytes));
      t.equal(hello.sni, want?.sni, 'sni');
      t.same(hello.alpn, want?.alpn, 'alpn');
      t.equal(hello.length, bytes.length, 'consumes exactly the captured records');
      t.equal(hello.recordVersion >> 8, 3, 'record version is 3.x');
      t.equal(hello.legacyVersion, 0x0303, 'legacy_version is TLS 1.2');
      checkPrefixes(t, bytes);
    });
  }
  t.test('TLS 1.3 clients list 1.3 in supported_versions; a 1.2-only client sends none', async (t) => {
    const v = (n: string) => mustMatch(t, parseClientHello(fixtures.find((f) => f.name === n)!.bytes));
    t.equal(v('openssl-sni-alpn.bin').supportedVersions[0], 0x0304);
    t.same(v('openssl-tls12.bin').supportedVersions, []);
    t.same(v('openssl-ffdhe8192.bin').supportedVersions, [0x0304]);
  });
});

t.test('bytes after the hello are not consumed', async (t) => {
  const hello = buildClientHello({ sni: 'a.example', alpn: ['h2'] });
  const extra = concat(hello, Uint8Array.of(20, 3, 3, 0, 1, 1), latin1('GET / HTTP/1.1'));
  const h = mustMatch(t, parseClientHello(extra));
  t.equal(h.length, hello.length);
  t.equal(h.sni, 'a.example');
});

t.test('a hello split across several records is reassembled', async (t) => {
  const hs = buildHandshake({ sni: 'split.example.com', alpn: ['h2', 'http/1.1'], grease: true });
  const splits: [string, number[]][] = [
    ['handshake type alone in the first record', [1]],
    ['handshake header split 2+2', [2, 2]],
    ['header then body in two', [4, 100]],
    ['three uneven records', [50, 7, 200]],
    ['one byte per record', new Array<number>(hs.length).fill(1)],
  ];
  for (const [name, split] of splits) {
    t.test(name, async (t) => {
      const buf = wrapRecords(hs, split);
      const h = mustMatch(t, parseClientHello(buf));
      t.equal(h.sni, 'split.example.com');
      t.same(h.alpn, ['h2', 'http/1.1']);
      t.equal(h.length, buf.length);
      if (split.length < 10) checkPrefixes(t, buf);
    });
  }
  t.test('a captured hello re-framed into records', async (t) => {
    for (const { name, bytes } of fixtures) {
      const buf = wrapRecords(handshakeOf(bytes), [3, 60, 90]);
      const h = mustMatch(t, parseClientHello(buf));
      t.equal(h.sni, expected[name]?.sni, name);
      t.same(h.alpn, expected[name]?.alpn, name);
    }
  });
  t.test('a 20 KB hello, larger than one record may carry, across two records', async (t) => {
    const buf = buildClientHello({ sni: 'huge.example', padTo: 20000, recordSplit: [16384] });
    const h = mustMatch(t, parseClientHello(buf));
    t.equal(h.sni, 'huge.example');
    t.equal(h.length, 20000 + 10);
  });
  t.test('the first record version is reported even when later ones differ', async (t) => {
    const hs = buildHandshake({ sni: 'v.example' });
    const buf = concat(wrapRecords(hs.subarray(0, 10), [], 0x0301), wrapRecords(hs.subarray(10), [], 0x0303));
    t.equal(mustMatch(t, parseClientHello(buf)).recordVersion, 0x0301);
  });
});

t.test('browser-like post-quantum hellos of 2 KB and more', async (t) => {
  const pq = buildClientHello({
    sni: 'pq.example.com',
    alpn: ['h2', 'http/1.1'],
    grease: true,
    keyShareBytes: 1216,
  });
  t.ok(pq.length > 1500, `hello is ${pq.length} bytes`);
  const h = mustMatch(t, parseClientHello(pq));
  t.equal(h.sni, 'pq.example.com');
  t.same(h.alpn, ['h2', 'http/1.1']);
  checkPrefixes(t, pq);
  const padded = buildClientHello({ sni: 'pq.example.com', grease: true, keyShareBytes: 1216, padTo: 2048 });
  t.equal(padded.length, 2048 + 5, 'padding brings it to exactly 2 KiB');
  t.equal(mustMatch(t, parseClientHello(padded)).sni, 'pq.example.com');
});

t.test('GREASE', async (t) => {
  const buf = buildClientHello({
    sni: 'g.example',
    alpn: ['h2'],
    grease: true,
    supportedVersions: [0x0304, 0x0303],
  });
  const h = mustMatch(t, parseClientHello(buf));
  t.same(h.supportedVersions, [0x0304, 0x0303], 'GREASE versions are dropped');
  t.same(h.alpn, ['h2'], 'GREASE extensions and cipher suites are skipped');
  const greaseAlpn = buildClientHello({ alpn: ['\x1a\x1a', 'h2'] });
  t.same(mustMatch(t, parseClientHello(greaseAlpn)).alpn, ['\x1a\x1a', 'h2'], 'ALPN names are kept as sent');
});

t.test('no server_name extension leaves sni undefined', async (t) => {
  const h = mustMatch(t, parseClientHello(buildClientHello({ alpn: ['h2'] })));
  t.equal(h.sni, undefined);
  t.notOk('sni' in h, 'no sni key at all');
  t.same(h.alpn, ['h2']);
  const bare = mustMatch(t, parseClientHello(buildClientHello({ supportedVersions: [] })));
  t.same(bare.alpn, []);
  t.same(bare.supportedVersions, []);
});

t.test('a hello without any extensions (old clients) matches', async (t) => {
  const body = concat(u16(0x0301), new Uint8Array(32), u8(0), u16(2), u16(0x002f), Uint8Array.of(1, 0));
  const buf = wrapRecords(concat(u8(1), u24(body.length), body), [], 0x0300);
  const h = mustMatch(t, parseClientHello(buf));
  t.equal(h.legacyVersion, 0x0301);
  t.equal(h.recordVersion, 0x0300);
  t.equal(h.sni, undefined);
});

t.test('SNI is normalised', async (t) => {
  const cases: [string, string][] = [
    ['WWW.Example.COM', 'www.example.com'],
    ['example.com.', 'example.com'],
    ['_acme-challenge.Example.org.', '_acme-challenge.example.org'],
    ['localhost', 'localhost'],
    ['10.0.0.1', '10.0.0.1'],
    [`${'a'.repeat(63)}.b`, `${'a'.repeat(63)}.b`],
  ];
  for (const [sent, want] of cases) {
    t.equal(mustMatch(t, parseClientHello(buildClientHello({ sni: sent }))).sni, want, sent);
  }
  const unknownType = concat(u16(8), u8(7), u16(1), u8(0x41), u8(0), u16(1), u8(0x61));
  t.equal(
    mustMatch(t, parseClientHello(buildClientHello({ sniData: unknownType }))).sni,
    'a',
    'unknown name types are skipped',
  );
});

/** Overwrite bytes of a copy at an offset. */
function patch(buf: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = buf.slice();
  out.set(bytes, at);
  return out;
}

const base = buildClientHello({ sni: 'ok.example', alpn: ['h2'] });
// Fixed offsets in a single-record hello: record header 5, handshake header 4, then the body.
const SID_LEN = 9 + 2 + 32;
const CS_LEN = SID_LEN + 1 + 32;
const csLen = (base[CS_LEN]! << 8) | base[CS_LEN + 1]!;
const COMP_LEN = CS_LEN + 2 + csLen;
const EXT_LEN = COMP_LEN + 2;

function withRecordLength(hs: Uint8Array, recLen: number, tail: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concat(u8(22), u16(0x0301), u16(recLen), hs, tail);
}

t.test('malformed handshakes are invalid with a specific reason', async (t) => {
  const hs = buildHandshake({ sni: 'ok.example', alpn: ['h2'] });
  const cases: [string, Uint8Array, RegExp][] = [
    ['record length zero', Uint8Array.of(22, 3, 1, 0, 0), /zero-length/],
    ['record length over 2^14+2048', Uint8Array.of(22, 3, 1, 0x48, 0x01), /exceeds/],
    ['handshake type is ServerHello', buildClientHello({ handshakeType: 2 }), /not a ClientHello/],
    [
      'handshake type known from the first fragment byte',
      Uint8Array.of(22, 3, 1, 0, 10, 11),
      /not a ClientHello/,
    ],
    ['hello longer than 64 KiB', Uint8Array.of(22, 3, 1, 0x40, 0, 1, 1, 0, 1), /64 KiB/],
    [
      'non-handshake record between fragments',
      patch(wrapRecords(hs, [20]), 25, [23]),
      /non-handshake record/,
    ],
    ['record version major 2 in a later record', patch(wrapRecords(hs, [20]), 26, [2]), /major/],
    ['trailing bytes after the hello in its record', withRecordLength(hs, hs.length + 2, u16(0)), /trailing/],
    ['legacy_version major not 3', buildClientHello({ legacyVersion: 0x0203 }), /legacy_version/],
    ['session_id longer than 32', patch(base, SID_LEN, [33]), /session_id/],
    ['cipher_suites odd', patch(base, CS_LEN, [0, csLen - 1]), /cipher_suites/],
    ['cipher_suites empty', patch(base, CS_LEN, [0, 0]), /cipher_suites/],
    ['cipher_suites overrun', patch(base, CS_LEN, [0x7f, 0xfe]), /overrun/],
    ['compression_methods empty', patch(base, COMP_LEN, [0]), /compression_methods/],
    ['compression_methods overrun', patch(base, COMP_LEN, [255]), /overrun|extensions/],
    ['extensions length too long', patch(base, EXT_LEN, [0x7f, 0xff]), /extensions length/],
    ['extensions length too short', patch(base, EXT_LEN, [0, 1]), /extensions length/],
    ['extension header truncated', buildClientHello({ extraExtensions: [u16(0x99)] }), /extension header/],
    ['extension data overrun', buildClientHello({ extraExtensions: [u16(0x99), u16(16)] }), /overruns/],
    ['hello body truncated', withRecordLength(concat(u8(1), u24(10), new Uint8Array(10)), 14), /truncated/],
    ['empty server_name', buildClientHello({ sniData: sniData(new Uint8Array(0)) }), /host name/],
    ['server_name list empty', buildClientHello({ sniData: u16(0) }), /list empty/],
    ['server_name extension without data', buildClientHello({ sniData: new Uint8Array(0) }), /truncated/],
    [
      'server_name list length mismatch',
      buildClientHello({ sniData: concat(u16(9), u8(0), u16(1), u8(0x61)) }),
      /match/,
    ],
    [
      'server_name entry overrun',
      buildClientHello({ sniData: concat(u16(4), u8(0), u16(9), u8(0x61)) }),
      /overrun/,
    ],
    ['server_name entry truncated', buildClientHello({ sniData: concat(u16(2), u8(0), u8(0)) }), /truncated/],
    [
      'only an unknown name type',
      buildClientHello({ sniData: concat(u16(4), u8(7), u16(1), u8(0x61)) }),
      /no host/,
    ],
    [
      'two host_name entries',
      buildClientHello({
        sniData: concat(u16(8), sniData(latin1('a')).subarray(2), sniData(latin1('b')).subarray(2)),
      }),
      /more than one/,
    ],
    [
      'duplicate server_name extension',
      buildClientHello({ sni: 'a.example', extraExtensions: [ext(0, sniData(latin1('b.example')))] }),
      /duplicate server_name/,
    ],
    ['server_name with a space', buildClientHello({ sni: 'a b.example' }), /host name/],
    ['server_name with a slash', buildClientHello({ sni: 'a/b.example' }), /host name/],
    ['server_name with a NUL', buildClientHello({ sni: 'evil.example\x00.good.example' }), /host name/],
    ['server_name with a high byte', buildClientHello({ sni: 'caf\xe9.example' }), /host name/],
    ['server_name with an empty label', buildClientHello({ sni: 'a..example' }), /host name/],
    ['server_name starting with a dot', buildClientHello({ sni: '.example' }), /host name/],
    ['server_name that is one dot', buildClientHello({ sni: '.' }), /host name/],
    ['server_name with two trailing dots', buildClientHello({ sni: 'example..' }), /host name/],
    ['server_name label of 64 bytes', buildClientHello({ sni: `${'a'.repeat(64)}.example` }), /host name/],
    ['server_name of 254 bytes', buildClientHello({ sni: `${'a.'.repeat(126)}ab` }), /host name/],
    ['ALPN list empty', buildClientHello({ alpnData: u16(0) }), /ALPN list empty/],
    [
      'ALPN extension without data',
      buildClientHello({ alpnData: new Uint8Array(0) }),
      /ALPN list length truncated/,
    ],
    [
      'ALPN list length mismatch',
      buildClientHello({ alpnData: concat(u16(9), u8(2), latin1('h2')) }),
      /ALPN list length/,
    ],
    [
      'ALPN name with zero length',
      buildClientHello({ alpnData: alpnData([new Uint8Array(0)]) }),
      /empty ALPN/,
    ],
    ['ALPN name overrun', buildClientHello({ alpnData: concat(u16(3), u8(5), latin1('h2')) }), /overruns/],
    [
      'duplicate ALPN extension',
      buildClientHello({ alpn: ['h2'], extraExtensions: [ext(16, alpnData([latin1('x')]))] }),
      /duplicate ALPN/,
    ],
    [
      'supported_versions odd',
      buildClientHello({ supportedVersions: [], extraExtensions: [ext(43, Uint8Array.of(3, 3, 4, 3))] }),
      /supported_versions/,
    ],
    [
      'supported_versions empty',
      buildClientHello({ supportedVersions: [], extraExtensions: [ext(43, new Uint8Array(0))] }),
      /supported_versions/,
    ],
    [
      'duplicate supported_versions',
      buildClientHello({ extraExtensions: [ext(43, Uint8Array.of(2, 3, 4))] }),
      /duplicate supported_versions/,
    ],
  ];
  for (const [name, buf, reason] of cases) {
    const r = parseClientHello(buf);
    t.equal(r.kind, 'invalid', name);
    if (r.kind === 'invalid') t.match(r.reason, reason, `${name}: ${r.reason}`);
    // A prefix of a malformed hello is either still undecided or already the same verdict.
    for (let k = 0; k < buf.length; k += 7) {
      const p = parseClientHello(buf.subarray(0, k)).kind;
      if (p !== 'need-more' && p !== 'invalid') t.fail(`${name}: prefix ${k} gave ${p}`);
    }
    const probed = probeTls(buf);
    t.same(
      probed,
      { kind: 'invalid', protocol: 'tls', reason: r.kind === 'invalid' ? r.reason : '' },
      `${name}: probe`,
    );
  }
});

t.test('other protocols are no-match so other probes can try', async (t) => {
  const cases: [string, Uint8Array][] = [
    ['HTTP request', latin1('GET / HTTP/1.1\r\nHost: a\r\n\r\n')],
    ['SSH banner', latin1('SSH-2.0-OpenSSH_9.2\r\n')],
    ['SSLv2-compatible hello', Uint8Array.of(0x80, 0x2e, 0x01, 0x03, 0x01)],
    ['TLS application data record', Uint8Array.of(23, 3, 3, 0, 5)],
    ['handshake type byte then a bad version', Uint8Array.of(22, 2, 0)],
    ['handshake type byte then a huge major', Uint8Array.of(22, 0xfe, 0xfd)],
  ];
  for (const [name, buf] of cases) {
    const r = parseClientHello(buf);
    t.equal(r.kind, 'no-match', name);
    t.equal(probeTls(buf).kind, 'no-match', `${name}: probe`);
  }
  t.equal(parseClientHello(new Uint8Array(0)).kind, 'need-more', 'no bytes yet');
  t.equal(parseClientHello(Uint8Array.of(22)).kind, 'need-more', 'just the record type');
  t.equal(parseClientHello(Uint8Array.of(22, 3)).kind, 'need-more', 'record type and major');
});

t.test('the TLS probe reports protocol, sni and alpn', async (t) => {
  t.same(probeTls(buildClientHello({ sni: 'Web.Example.', alpn: ['h2', 'http/1.1'] })), {
    kind: 'match',
    detection: { protocol: 'tls', sni: 'web.example', alpn: ['h2', 'http/1.1'] },
  });
  const noSni = probeTls(buildClientHello({}));
  t.same(noSni, { kind: 'match', detection: { protocol: 'tls', alpn: [] } });
  t.notOk(noSni.kind === 'match' && 'sni' in noSni.detection, 'no sni key without server_name');
  t.same(probeTls(base.subarray(0, 40)), { kind: 'need-more' });
});

t.test('random garbage never throws and gives a well-formed verdict', async (t) => {
  // Small deterministic PRNG so failures reproduce.
  let seed = 0x12345678;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const kinds = new Set(['match', 'need-more', 'no-match', 'invalid']);
  let bad = 0;
  for (let i = 0; i < 20000; i++) {
    const buf = new Uint8Array(rnd() % 600);
    for (let j = 0; j < buf.length; j++) buf[j] = rnd() & 0xff;
    // Half the time look like a TLS record so the deeper paths are exercised.
    if (i % 2 === 0 && buf.length > 9)
      buf.set([22, 3, 1, (buf.length - 5) >> 8, (buf.length - 5) & 0xff, 1], 0);
    let r: HelloResult;
    try {
      r = parseClientHello(buf);
    } catch (err) {
      t.fail(`threw on ${Buffer.from(buf).toString('hex')}: ${String(err)}`);
      return;
    }
    if (!kinds.has(r.kind)) bad++;
    if ((r.kind === 'invalid' || r.kind === 'no-match') && r.reason.length === 0) bad++;
  }
  t.equal(bad, 0);
});
