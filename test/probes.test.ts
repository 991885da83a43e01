// Specification of the non-TLS probes and detect(): real clients' first bytes, near-misses, the probe table.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import t, { type Test } from 'tap';
import { DATAGRAM_PROBES } from '../lib/detect/datagram.js';
import { detect, PROBES } from '../lib/detect/detect.js';
import { probeAdb } from '../lib/detect/probes/adb.js';
import {
  HTTP_METHODS,
  MAX_SCAN,
  normalizeHost,
  probeHttp,
  scanHttpHeaders,
} from '../lib/detect/probes/http.js';
import { probeMqtt } from '../lib/detect/probes/mqtt.js';
import { probeOpenvpn } from '../lib/detect/probes/openvpn.js';
import { probePostgres } from '../lib/detect/probes/postgres.js';
import { probeRdp } from '../lib/detect/probes/rdp.js';
import { probeSocks5 } from '../lib/detect/probes/socks5.js';
import { probeSsh } from '../lib/detect/probes/ssh.js';
import { probeTinc } from '../lib/detect/probes/tinc.js';
import { probeXmpp, XMPP_MAX_HEADER } from '../lib/detect/probes/xmpp.js';
import {
  PROTOCOLS,
  type Probe,
  type ProbeResult,
  type Protocol,
  UDP_ONLY_PROTOCOLS,
} from '../lib/detect/types.js';

const firstBytesDir = new URL('./fixtures/first-bytes/', import.meta.url);
const helloDir = new URL('./fixtures/clienthello/', import.meta.url);

/** What each file in test/fixtures/first-bytes is; see its README.md for how each was made. */
const expected: Record<string, { protocol: Protocol; host?: string }> = {
  'adb-connect.bin': { protocol: 'adb' },
  'adb-spec-empty-then-cnxn.bin': { protocol: 'adb' },
  'http-curl-connect.bin': { protocol: 'http', host: 'example.net' },
  'http-curl-get.bin': { protocol: 'http', host: '127.0.0.1' },
  'http-curl-h2-prior-knowledge.bin': { protocol: 'http' },
  'http-curl-host-header.bin': { protocol: 'http', host: 'www.example.com' },
  'http-curl-ipv6-host.bin': { protocol: 'http', host: '[::1]' },
  'http-curl-post.bin': { protocol: 'http', host: 'api.example.org' },
  'mqtt-mosquitto-v31.bin': { protocol: 'mqtt' },
  'mqtt-mosquitto-v311.bin': { protocol: 'mqtt' },
  'mqtt-mosquitto-v5.bin': { protocol: 'mqtt' },
  'openvpn-spec-v1.bin': { protocol: 'openvpn' },
  'openvpn-tcp-plain.bin': { protocol: 'openvpn' },
  'openvpn-tcp-tls-auth.bin': { protocol: 'openvpn' },
  'openvpn-tcp-tls-auth-sha256.bin': { protocol: 'openvpn' },
  'openvpn-tcp-tls-crypt.bin': { protocol: 'openvpn' },
  'openvpn-tcp-tls-crypt-v2.bin': { protocol: 'openvpn' },
  'postgres-psql-sslrequest.bin': { protocol: 'postgres' },
  'postgres-psql-startup.bin': { protocol: 'postgres' },
  'postgres-spec-cancelrequest.bin': { protocol: 'postgres' },
  'postgres-spec-gssencrequest.bin': { protocol: 'postgres' },
  'rdp-spec-cookie.bin': { protocol: 'rdp' },
  'rdp-spec-nla-no-cookie.bin': { protocol: 'rdp' },
  'socks4-curl.bin': { protocol: 'socks5' },
  'socks4a-curl.bin': { protocol: 'socks5' },
  'socks5-curl.bin': { protocol: 'socks5' },
  'socks5-curl-userpass.bin': { protocol: 'socks5' },
  'ssh-openssh.bin': { protocol: 'ssh' },
  'tinc-1.0.bin': { protocol: 'tinc' },
  'tinc-spec-1.1.bin': { protocol: 'tinc' },
  'tinc-spec-invitation.bin': { protocol: 'tinc' },
  'xmpp-go-sendxmpp.bin': { protocol: 'xmpp' },
  'xmpp-spec-no-declaration.bin': { protocol: 'xmpp' },
  'xmpp-spec-server-dialback.bin': { protocol: 'xmpp' },
};

interface Capture {
  name: string;
  bytes: Uint8Array;
  protocol: Protocol;
  host?: string;
}

const captures: Capture[] = readdirSync(firstBytesDir)
  .filter((f) => f.endsWith('.bin'))
  .map((name) => {
    const e = expected[name];
    if (e === undefined) throw new Error(`${name} is not described in probes.test.ts (expected)`);
    return { name, bytes: new Uint8Array(readFileSync(new URL(name, firstBytesDir))), ...e };
  });

// The TLS engineer's captured ClientHellos: no non-TLS probe may claim them.
const hellos: Capture[] = readdirSync(helloDir)
  .filter((f) => f.endsWith('.bin'))
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, helloDir))), protocol: 'tls' }));

const probeOf = (p: Protocol): Probe => PROBES.find((row) => row.protocol === p)!.probe;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

function kindOf(probe: Probe, bytes: Uint8Array | string): ProbeResult['kind'] {
  return probe(typeof bytes === 'string' ? ascii(bytes) : bytes).kind;
}

/** Asserts each case's verdict kind; cases are [bytes, kind]. */
function verdicts(t: Test, probe: Probe, cases: Array<[Uint8Array | string, ProbeResult['kind']]>): void {
  for (const [bytes, kind] of cases) {
    const shown = typeof bytes === 'string' ? JSON.stringify(bytes) : Buffer.from(bytes).toString('hex');
    t.equal(kindOf(probe, bytes), kind, `${shown} → ${kind}`);
  }
}

t.test('every fixture file is described, and every protocol but tls has a capture', async (t) => {
  t.same(Object.keys(expected).sort(), captures.map((c) => c.name).sort());
  for (const p of PROTOCOLS) {
    // UDP-only protocols have their captures in test/quic.test.ts and test/udp-probes.test.ts.
    if (p !== 'tls' && !UDP_ONLY_PROTOCOLS.includes(p))
      t.ok(
        captures.some((c) => c.protocol === p),
        `a capture for ${p}`,
      );
  }
});

t.test(
  'a real client is need-more at every prefix until its probe matches, then match to the end',
  async (t) => {
    for (const c of captures) {
      const probe = probeOf(c.protocol);
      let firstMatch = -1;
      let ok = true;
      for (let k = 0; k <= c.bytes.length; k++) {
        const kind = probe(c.bytes.subarray(0, k)).kind;
        if (firstMatch < 0 && kind === 'match') firstMatch = k;
        const want = firstMatch < 0 ? 'need-more' : 'match';
        if (kind !== want) {
          t.fail(`${c.name}: prefix of ${k} bytes is ${kind}, want ${want}`);
          ok = false;
          break;
        }
      }
      if (ok) t.ok(firstMatch > 0, `${c.name}: need-more for ${firstMatch} bytes, then match`);
    }
  },
);

t.test('detect() names the right protocol and host for every capture', async (t) => {
  for (const c of captures) {
    const r = detect(c.bytes);
    const want: ProbeResult = {
      kind: 'match',
      detection: c.host === undefined ? { protocol: c.protocol } : { protocol: c.protocol, host: c.host },
    };
    t.same(r, want, c.name);
  }
});

t.test('no probe matches another protocol, at any prefix of any capture or ClientHello', async (t) => {
  for (const c of [...captures, ...hellos]) {
    let stolen = 0;
    for (let k = 0; k <= c.bytes.length; k++) {
      const prefix = c.bytes.subarray(0, k);
      for (const row of PROBES) {
        if (row.protocol === c.protocol) continue;
        const r = row.probe(prefix);
        if (r.kind === 'match' || r.kind === 'invalid') {
          t.fail(`${c.name}: ${row.protocol} says ${r.kind} at ${k} bytes`);
          stolen++;
        }
      }
      const d = detect(prefix);
      if (d.kind === 'match' && d.detection.protocol !== c.protocol) {
        t.fail(`${c.name}: detect() picks ${d.detection.protocol} at ${k} bytes`);
        stolen++;
      }
    }
    t.equal(stolen, 0, `${c.name}: only ${c.protocol} claims it`);
  }
});

t.test('the probe table', async (t) => {
  t.equal(PROBES[0]!.protocol, 'tls', 'TLS is asked first');
  t.same(
    PROBES.map((r) => r.protocol).sort(),
    PROTOCOLS.filter((p) => !UDP_ONLY_PROTOCOLS.includes(p)).sort(),
    'one row per stream protocol',
  );
  t.same(
    [...new Set([...PROBES, ...DATAGRAM_PROBES].map((r) => r.protocol))].sort(),
    [...PROTOCOLS].sort(),
    'every protocol has a probe in the stream or the datagram table',
  );
  t.equal(PROBES.at(-1)!.protocol, 'socks5', 'SOCKS, the weakest signature, is asked last');
  t.ok(
    PROBES.findIndex((r) => r.protocol === 'openvpn') < PROBES.findIndex((r) => r.protocol === 'socks5'),
    'OpenVPN before SOCKS',
  );
  t.ok(Object.isFrozen(PROBES), 'the table cannot be changed at run time');
});

t.test('detect() verdicts', async (t) => {
  t.same(detect(new Uint8Array(0)), { kind: 'need-more' }, 'nothing yet: need-more');
  t.same(detect(ascii('\xff\xfe garbage')), { kind: 'no-match', reason: 'no probe matched' });
  t.same(detect(ascii('GE')), { kind: 'need-more' }, 'a method prefix');
  const folded = detect(ascii('GET / HTTP/1.1\r\n Host: a\r\n'));
  t.equal(folded.kind, 'invalid', 'HTTP beyond doubt but malformed: invalid');
  t.equal(folded.kind === 'invalid' && folded.protocol, 'http');
  // OpenVPN wants the whole 1025-byte V3 packet; these bytes are already a SOCKS4 request: that match wins.
  const socks4 = hex('04 01 5000 7f000001 00');
  t.equal(probeOpenvpn(socks4).kind, 'need-more');
  t.same(
    detect(socks4),
    { kind: 'match', detection: { protocol: 'socks5' } },
    'a later match beats need-more',
  );
  // The one overlap: a complete V3 reset whose first 12 bytes are also a SOCKS4 request. Table order decides.
  const reset = new Uint8Array(2 + 0x401);
  reset.set(hex('0401 50 0102030405616263 00000001'));
  reset.set(hex('0200'), reset.length - 2); // WKc length 512
  t.same(detect(reset.subarray(0, 12)), { kind: 'match', detection: { protocol: 'socks5' } });
  t.equal(probeSocks5(reset).kind, 'match');
  t.same(
    detect(reset),
    { kind: 'match', detection: { protocol: 'openvpn' } },
    'OpenVPN is asked before SOCKS',
  );
  t.equal(detect(ascii('\xff')), detect(ascii('\xfe')), 'no-match is one shared value, not a new object');
});

t.test('verdicts that carry no data are shared frozen values (no allocation per call)', async (t) => {
  const inputs = [new Uint8Array(0), ascii('\xff\xff\xff\xff'), ascii('SSH-2.0-x'), hex('0000000804d2162f')];
  for (const row of PROBES) {
    if (row.protocol === 'tls') continue;
    for (const x of inputs) {
      const a = row.probe(x);
      if (a.kind === 'match' && row.protocol === 'http') continue;
      t.equal(row.probe(x), a, `${row.protocol} on ${Buffer.from(x).toString('hex')}: same object`);
      t.ok(Object.isFrozen(a), `${row.protocol}: frozen`);
    }
  }
});

t.test('ssh: "SSH-" digits "." digits "-"', async (t) => {
  verdicts(t, probeSsh, [
    ['', 'need-more'],
    ['S', 'need-more'],
    ['SS', 'need-more'],
    ['SSH', 'need-more'],
    ['SSH-', 'need-more'],
    ['SSH-2.0', 'need-more'],
    ['SSH-2.0-', 'match'],
    ['SSH-1.99-OpenSSH_3.9p1\r\n', 'match'],
    ['SSH-1.5-', 'match'],
    ['ssh-2.0-', 'no-match'],
    ['SSX', 'no-match'],
    ['SSH_2.0-', 'no-match'],
    ['SSH--', 'no-match'],
    ['SSH-2-0-', 'no-match'],
    ['SSH-2.-', 'no-match'],
    ['SSH-2.0 OpenSSH', 'no-match'],
    ['SSH-1234.0-', 'no-match'],
    ['GET /', 'no-match'],
  ]);
});

t.test('openvpn: a complete hard reset, in any wrapping', async (t) => {
  const sid = '0123456789abcdef';
  const plain = hex(`000e 38 ${sid} 00 00000000`);
  verdicts(t, probeOpenvpn, [
    [plain, 'match'],
    [cat(plain, ascii('more')), 'match'],
    [hex('00'), 'need-more'],
    [hex('000e'), 'need-more'],
    [hex('000e38'), 'need-more'],
    [plain.subarray(0, 15), 'need-more'],
    [hex(`000e 39 ${sid} 00 00000000`), 'no-match'], // key id 1
    [hex(`000e 30 ${sid} 00 00000000`), 'no-match'], // P_DATA_V1
    [hex(`000e 40 ${sid} 00 00000000`), 'no-match'], // P_CONTROL_HARD_RESET_SERVER_V2
    [hex(`000e 38 ${sid} 01 00000000`), 'no-match'], // acks something
    [hex(`000e 38 ${sid} 00 00000001`), 'no-match'], // not message 0
    [hex('000d'), 'no-match'], // too short for a reset
    [hex('0100'), 'no-match'], // 256: too long for V1/V2, too short for V3
    [hex(`0100 38`), 'no-match'],
    [hex('05'), 'no-match'], // longer than any reset
    [hex('0005 68656c6c6f'), 'no-match'], // length-prefixed, as sslh would accept
    [hex('1603010200'), 'no-match'], // a TLS record
    [hex('0000000804d2162f'), 'no-match'], // PostgreSQL SSLRequest
  ]);
  // tls-auth with a SHA1 HMAC: packet id 1, then the clear reliability header.
  const hmac = 'a5'.repeat(20);
  verdicts(t, probeOpenvpn, [
    [hex(`002a 38 ${sid} ${hmac} 00000001 6b06a503 00 00000000`), 'match'],
    [hex(`002a 38 ${sid} ${hmac} 0f000001 6b06a503 00 00000000`), 'match'], // 2.6 early negotiation
    [hex(`002a 38 ${sid} ${hmac} 00000000 6b06a503 00 00000000`), 'no-match'], // packet id 0
    [hex(`002a 38 ${sid} ${hmac} 00001000 6b06a503 00 00000000`), 'no-match'], // not a first packet
    [hex(`002a 38 ${sid} ${hmac} 00000001 6b06a503 02 00000000`), 'no-match'], // acks
  ]);
  // tls-crypt-v2: the packet ends with WKc's length, which must fit.
  const v2 = captures.find((c) => c.name === 'openvpn-tcp-tls-crypt-v2.bin')!.bytes;
  const tooLong = Uint8Array.from(v2);
  tooLong[tooLong.length - 2] = 0x04; // WKc length 0x042b > 1024
  const tooShort = Uint8Array.from(v2);
  tooShort[tooShort.length - 2] = 0x00; // WKc length 0x2b < 290
  verdicts(t, probeOpenvpn, [
    [v2, 'match'],
    [v2.subarray(0, v2.length - 1), 'need-more'],
    [tooLong, 'no-match'],
    [tooShort, 'no-match'],
  ]);
});

t.test('http: request line, then the Host header', async (t) => {
  verdicts(t, probeHttp, [
    ['', 'need-more'],
    ['G', 'need-more'],
    ['GE', 'need-more'],
    ['GET', 'need-more'],
    ['GET ', 'need-more'],
    ['PROP', 'need-more'],
    ['GET / HTTP/1.1', 'need-more'],
    ['GET / HTTP/1.1\r', 'need-more'],
    ['GET / HTTP/1.1\r\n', 'need-more'],
    ['GET / HTTP/1.1\r\nUser-Agent: x\r\n', 'need-more'],
    ['GET / HTTP/1.1\r\nHost: example.com', 'need-more'],
    ['GET / HTTP/1.1\r\nHost: example.com\r', 'need-more'],
    ['GET / HTTP/1.0\r\n\r\n', 'match'],
    ['GET / HTTP/1.0\n\n', 'match'],
    ['GET / HTTP/1.1\r\nHost: example.com\r\n', 'match'],
    ['GETX / HTTP/1.1\r\n', 'no-match'],
    ['get / HTTP/1.1\r\n', 'no-match'],
    ['BREW / HTTP/1.1\r\n', 'no-match'],
    ['GET  / HTTP/1.1\r\n', 'no-match'],
    ['GET /\x01 HTTP/1.1\r\n', 'no-match'],
    ['GET /\t HTTP/1.1\r\n', 'no-match'],
    ['GET /\r\n', 'no-match'], // HTTP/0.9
    ['GET / HTTP/2.0\r\n', 'no-match'],
    ['GET / HTTP/1.x\r\n', 'no-match'],
    ['GET / http/1.1\r\n', 'no-match'],
    ['GET / HTTP/1.1 \r\n', 'no-match'],
    ['GET / HTTP/1.1\rX', 'no-match'],
    ['GET / HTTP/1.1\r\n Host: a\r\n', 'invalid'], // obs-fold
    ['GET / HTTP/1.1\r\nHost : a\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\n: a\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nX\x00: a\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nX: a\x00\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nX: a\rb\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\n\rX', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: exa mple.com\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: a:b:c\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: a:65536\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: [::1\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: ::1\r\n', 'invalid'],
    ['GET / HTTP/1.1\r\nHost: caf\xe9.example\r\n', 'invalid'],
    [`GET / HTTP/1.1\r\nHost: ${'a'.repeat(600)}\r\n`, 'invalid'],
  ]);
  for (const m of HTTP_METHODS.filter((m) => m !== 'PRI')) {
    t.equal(kindOf(probeHttp, `${m} /x HTTP/1.1\r\n\r\n`), 'match', `${m} is a method`);
    for (let k = 1; k <= m.length; k++) t.equal(kindOf(probeHttp, m.slice(0, k)), 'need-more');
  }
});

t.test('http: detection.host is the first Host header, normalised', async (t) => {
  const hostOf = (headers: string): string | undefined => {
    const r = probeHttp(ascii(`GET / HTTP/1.1\r\n${headers}`));
    if (r.kind !== 'match') throw new Error(`not a match: ${JSON.stringify(r)}`);
    return r.detection.host;
  };
  t.equal(hostOf('Host: Example.COM\r\n'), 'example.com', 'lowercased');
  t.equal(hostOf('hOsT: example.com.:8080\r\n'), 'example.com', 'any case of the name; port and dot dropped');
  t.equal(hostOf('Host: \t example.com \t\r\n'), 'example.com', 'spaces and tabs trimmed');
  t.equal(hostOf('Host:example.com\n'), 'example.com', 'no space, bare LF');
  t.equal(hostOf('Host: example.com:\r\n'), 'example.com', 'empty port');
  t.equal(hostOf('Host: 192.0.2.1:80\r\n'), '192.0.2.1');
  t.equal(hostOf('Host: [2001:DB8::1]:443\r\n'), '[2001:db8::1]', 'IPv6 keeps its brackets');
  t.equal(hostOf('Host: [::ffff:192.0.2.1]\r\n'), '[::ffff:192.0.2.1]');
  t.equal(hostOf('Host: xn--caf-dma.example\r\n'), 'xn--caf-dma.example', 'IDNs arrive as punycode');
  t.equal(hostOf('Host: a%2Db.example\r\n'), 'a%2db.example', 'pct-encoding kept, lowercased');
  t.equal(hostOf('Accept: */*\r\nX-Forwarded-Host: evil\r\nHost: good\r\n'), 'good', 'other headers skipped');
  t.equal(hostOf('Host: first\r\nHost: second\r\n'), 'first', 'the first Host header wins');
  t.equal(hostOf('Host:\r\n'), undefined, 'an empty Host is no host');
  t.equal(hostOf('Accept: */*\r\n\r\nHost: body\r\n'), undefined, 'headers end at the blank line');
  const r = probeHttp(ascii('CONNECT example.net:443 HTTP/1.1\r\nHost: example.net:443\r\n\r\n'));
  t.same(r, { kind: 'match', detection: { protocol: 'http', host: 'example.net' } }, 'CONNECT');
});

t.test('http: normalizeHost and scanHttpHeaders', async (t) => {
  t.equal(normalizeHost('WWW.Example.COM.:8080'), 'www.example.com');
  t.equal(normalizeHost('[::1]:80'), '[::1]');
  t.equal(normalizeHost('  '), '');
  t.equal(normalizeHost('.'), undefined);
  t.equal(normalizeHost(':80'), undefined);
  t.equal(normalizeHost('a:123456'), undefined);
  t.equal(normalizeHost('a%zz'), undefined);
  t.equal(normalizeHost('[]'), undefined);
  t.equal(normalizeHost('[fe80::1]x'), undefined);
  t.equal(normalizeHost('[1.2.3.4]'), undefined, 'brackets hold IPv6 only');
  t.equal(normalizeHost("a_b~c!$&'()*+,;=.example"), "a_b~c!$&'()*+,;=.example", 'RFC 3986 reg-name');
  const req = ascii('X: 1\r\nHost: h.example\r\n');
  t.same(scanHttpHeaders(req, 0), { kind: 'host', host: 'h.example' });
  t.same(scanHttpHeaders(req, req.length), { kind: 'need-more' });
  t.same(scanHttpHeaders(ascii('X: 1\r\n\r\n'), 0), { kind: 'end' });
});

t.test('http: HTTP/2 prior knowledge is the exact 24-byte preface', async (t) => {
  const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
  for (let k = 1; k < preface.length; k++) t.equal(kindOf(probeHttp, preface.slice(0, k)), 'need-more');
  t.same(probeHttp(ascii(preface)), { kind: 'match', detection: { protocol: 'http' } });
  verdicts(t, probeHttp, [
    ['PRI * HTTP/1.1\r\n', 'no-match'],
    ['PRI / HTTP/2.0\r\n\r\nSM\r\n\r\n', 'no-match'],
    ['PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n', 'no-match'],
  ]);
});

t.test('xmpp: a stream tag with a jabber namespace', async (t) => {
  const tag = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
  verdicts(t, probeXmpp, [
    ['', 'need-more'],
    ['<', 'need-more'],
    ['<?xm', 'need-more'],
    ["<?xml version='1.0'?>", 'need-more'],
    ["<?xml version='1.0'?>\n<stream:stream to='a' xmlns='jab", 'need-more'],
    [tag, 'match'],
    [`<?xml version='1.0' encoding='UTF-8'?>\r\n${tag}`, 'match'],
    [`\xef\xbb\xbf${tag}`, 'match'], // UTF-8 BOM
    [`  \n${tag}`, 'match'],
    ["<stream xmlns='jabber:client'>", 'match'], // default namespace, no prefix
    ["<s:stream xmlns:s='http://etherx.jabber.org/streams'>", 'match'],
    ['<?xmx', 'no-match'],
    ['<html><body>jabber</body></html>', 'no-match'],
    ["<stream:streams xmlns='jabber:client'>", 'no-match'],
    ["<mystream xmlns='jabber:client'>", 'no-match'],
    ['<stream:stream>', 'no-match'],
    ["<stream:stream to='a'>jabber", 'no-match'],
    ["<stream:stream to='\x01' xmlns='jabber:client'>", 'no-match'],
    ['{"jabber": 1}', 'no-match'],
    ['GET /jabber HTTP/1.1\r\n', 'no-match'],
  ]);
  const late = `<stream:stream ${'x'.repeat(XMPP_MAX_HEADER)} xmlns='jabber:client'>`;
  t.equal(kindOf(probeXmpp, late), 'no-match', 'the namespace must come within XMPP_MAX_HEADER bytes');
  t.equal(kindOf(probeXmpp, ' '.repeat(XMPP_MAX_HEADER)), 'no-match', 'whitespace cannot keep it waiting');
});

t.test('socks5: greeting with known methods; SOCKS4 and 4a requests', async (t) => {
  verdicts(t, probeSocks5, [
    ['', 'need-more'],
    [hex('05'), 'need-more'],
    [hex('0502'), 'need-more'],
    [hex('050200'), 'need-more'],
    [hex('050100'), 'match'],
    [hex('05020002'), 'match'],
    [hex('050180'), 'match'], // private method
    [hex('050109'), 'match'],
    [hex('0500'), 'no-match'],
    [hex('050104'), 'no-match'], // unassigned
    [hex('05010a'), 'no-match'],
    [hex('0501ff'), 'no-match'], // "no acceptable methods" is a server's answer
    [hex('06'), 'no-match'],
    [hex('04'), 'need-more'],
    [hex('0401'), 'need-more'],
    [hex('0401 0050 7f000001'), 'need-more'],
    [hex('0401 0050 7f000001 626f62'), 'need-more'],
    [hex('0401 0050 7f000001 626f6200'), 'match'],
    [hex('0402 0050 7f000001 00'), 'match'], // BIND
    [hex('0403 0050 7f000001 00'), 'no-match'],
    [hex('0401 0050 7f000001 01 00'), 'no-match'], // control character in the user id
    [hex('0401 0050 00000001 00'), 'need-more'], // 4a: the host name follows
    [hex('0401 0050 00000001 00 6100'), 'match'],
    [hex('0401 0050 00000001 00 00'), 'no-match'], // empty host name
    [cat(hex('0401 0050 7f000001'), ascii('u'.repeat(256)), hex('00')), 'no-match'],
  ]);
  const many = cat(hex('05ff'), new Uint8Array(255));
  t.equal(kindOf(probeSocks5, many), 'match', '255 methods');
  t.equal(kindOf(probeSocks5, many.subarray(0, 256)), 'need-more', 'until all 255 are here');
});

t.test('tinc: the ID line', async (t) => {
  verdicts(t, probeTinc, [
    ['', 'need-more'],
    ['0', 'need-more'],
    ['0 ', 'need-more'],
    ['0 alice', 'need-more'],
    ['0 alice 17', 'need-more'],
    ['0 alice 17.', 'need-more'],
    ['0 alice 17\n', 'match'],
    ['0 my_node_2 17.7\n', 'match'],
    ['0 ?abc+/-_ 17.1\n', 'match'],
    ['1 alice 17\n', 'no-match'],
    ['0alice', 'no-match'],
    ['0  alice 17\n', 'no-match'],
    ['0 al-ice 17\n', 'no-match'],
    ['0 alice 17.x', 'no-match'],
    ['0 alice 17.7.1\n', 'no-match'],
    ['0 alice 1234\n', 'no-match'],
    ['0 alice x\n', 'no-match'],
    ['0 alice 17\r\n', 'no-match'],
    [`0 ${'a'.repeat(300)} 17\n`, 'no-match'],
  ]);
});

t.test('adb: CNXN with "host:" payload, optionally after the empty message', async (t) => {
  const cnxn = captures.find((c) => c.name === 'adb-connect.bin')!.bytes;
  const withByte = (i: number, v: number): Uint8Array => {
    const b = Uint8Array.from(cnxn);
    b[i] = v;
    return b;
  };
  verdicts(t, probeAdb, [
    ['', 'need-more'],
    ['CN', 'need-more'],
    [cnxn.subarray(0, 28), 'need-more'],
    [cnxn.subarray(0, 29), 'match'],
    ['CNXX', 'no-match'],
    ['CONNECT', 'no-match'],
    [withByte(7, 0x02), 'no-match'], // version 0x02000001
    [withByte(12, 0x00), 'no-match'], // data length 0
    [withByte(15, 0x01), 'no-match'], // data length > 1 MiB
    [withByte(20, 0x00), 'no-match'], // magic
    [withByte(24, 0x48), 'no-match'], // "Host:"
    [hex('00'.repeat(20)), 'need-more'],
    [hex('00'.repeat(24)), 'no-match'], // empty message needs magic ffffffff
    [cat(hex(`${'00'.repeat(20)}ffffffff`), cnxn), 'match'],
    [cat(hex(`${'00'.repeat(20)}ffffffff`), ascii('CNXX')), 'no-match'],
  ]);
});

t.test('rdp: TPKT + X.224 Connection Request', async (t) => {
  const cr = hex('03000013 0e e0 0000 1234 00 01 00 0800 03000000');
  verdicts(t, probeRdp, [
    ['', 'need-more'],
    [cr.subarray(0, 4), 'need-more'],
    [cr.subarray(0, 10), 'need-more'],
    [cr.subarray(0, 11), 'match'], // SRC-REF may be anything
    [cr, 'match'],
    [hex('030000130f'), 'no-match'], // LI does not fit the TPKT length
    [hex('030000130e d0'), 'no-match'], // Connection Confirm, a server's answer
    [hex('030000130e e0 0001'), 'no-match'], // DST-REF not 0
    [hex('030000130e e0 0000 0000 10'), 'no-match'], // class 1
    [hex('03000009 04'), 'no-match'], // too short for a CR
    [hex('03000200'), 'no-match'], // longer than LI can describe
    [hex('0200'), 'no-match'],
    [hex('0301'), 'no-match'],
  ]);
});

t.test('postgres: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage', async (t) => {
  verdicts(t, probePostgres, [
    ['', 'need-more'],
    [hex('000000'), 'need-more'],
    [hex('0000000804d216'), 'need-more'],
    [hex('0000000804d2162f'), 'match'],
    [hex('0000000804d21630'), 'match'],
    [hex('0000000c04d2162f'), 'no-match'], // SSLRequest must be 8 bytes
    [hex('0000001004d2162e'), 'match'],
    [hex('0000000c04d2162e'), 'no-match'], // too short for a cancel key
    [hex('0000000804d21631'), 'no-match'], // unknown request code
    [hex('0000000900030000'), 'need-more'],
    [hex('000000090003000000'), 'match'], // no parameters
    [hex('0000001000030000 75736572'), 'match'],
    [hex('0000001000030002 75736572'), 'match'], // protocol 3.2
    [hex('0000001000030000 00'), 'no-match'], // list ends, but the length says more
    [hex('0000001000030000 01'), 'no-match'],
    [hex('0000001000020000'), 'no-match'], // protocol 2.0
    [hex('0000000800030000'), 'no-match'], // too short for a StartupMessage
    [hex('00002711'), 'no-match'], // 10001 bytes
    [hex('0001'), 'no-match'],
    [hex('00000007'), 'no-match'],
    [hex('0000001005'), 'no-match'],
  ]);
});

t.test('mqtt: CONNECT with protocol name and level', async (t) => {
  verdicts(t, probeMqtt, [
    ['', 'need-more'],
    [hex('10'), 'need-more'],
    [hex('1011 0004 4d51'), 'need-more'],
    [hex('1011 0004 4d515454 04'), 'need-more'],
    [hex('1011 0004 4d515454 04 02'), 'match'],
    [hex('10c801 0004 4d515454 05 c2'), 'match'], // two-byte remaining length (200)
    [hex('1013 0006 4d5149736470 03 00'), 'match'],
    [hex('12'), 'no-match'], // CONNECT with flags
    [hex('20'), 'no-match'], // CONNACK
    [hex('1009'), 'no-match'], // shorter than a variable header
    [hex('1080808080'), 'no-match'], // five-byte remaining length
    [hex('1011 0104'), 'no-match'],
    [hex('1011 0005'), 'no-match'],
    [hex('1011 0004 4d515458'), 'no-match'],
    [hex('1011 0004 4d515454 03'), 'no-match'], // MQTT with level 3
    [hex('1013 0006 4d5149736470 04'), 'no-match'], // MQIsdp with level 4
    [hex('1011 0004 4d515454 04 03'), 'no-match'], // reserved flag
    [hex('100a 0006 4d5149736470'), 'no-match'], // too short for MQIsdp
  ]);
});

// Live clients: the bytes arrive as the client writes them, and detect() runs on each arrival.

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a real client against 127.0.0.1:0 and returns detect()'s verdict after each arrival until decided. */
async function detectLive(t: Test, client: (port: number) => [string, string[]]): Promise<ProbeResult[]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  let child: ChildProcess | undefined;
  t.teardown(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    server.close();
  });
  const verdicts = new Promise<ProbeResult[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('client sent nothing decisive')), 10_000);
    server.once('connection', (sock) => {
      const seen: ProbeResult[] = [];
      let buf = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = detect(buf);
        seen.push(r);
        if (r.kind !== 'need-more') {
          clearTimeout(timer);
          sock.destroy();
          resolve(seen);
        }
      });
    });
  });
  const [cmd, args] = client(port);
  child = spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, PGPASSWORD: 'x' } });
  return verdicts;
}

const live: Array<[string, Protocol, (port: number) => [string, string[]]]> = [
  [
    'ssh',
    'ssh',
    (port) => [
      'ssh',
      [
        '-p',
        `${port}`,
        '-F',
        '/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '127.0.0.1',
      ],
    ],
  ],
  ['curl', 'http', (port) => ['curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}/`]]],
  [
    'psql',
    'postgres',
    (port) => ['psql', [`host=127.0.0.1 port=${port} user=u dbname=d sslmode=prefer gssencmode=disable`]],
  ],
];

for (const [cmd, protocol, client] of live) {
  t.test(
    `live ${cmd}: detect() says ${protocol}`,
    { skip: have(cmd) ? false : `${cmd} not installed` },
    async (t) => {
      const seen = await detectLive(t, client);
      const last = seen.at(-1)!;
      t.equal(last.kind === 'match' && last.detection.protocol, protocol);
      t.ok(
        seen.slice(0, -1).every((r) => r.kind === 'need-more'),
        'need-more before',
      );
    },
  );
}

t.test('HTTP: Host must come within the first MAX_SCAN bytes, so a trickle cannot cost O(n²)', async (t) => {
  const head = 'GET / HTTP/1.1\r\nX-Pad: ';
  const padded = Buffer.from(`${head}${'a'.repeat(MAX_SCAN)}\r\nHost: late.example\r\n\r\n`);
  const r = probeHttp(padded);
  t.equal(r.kind, 'invalid');
  const early = Buffer.from(
    `GET / HTTP/1.1\r\nHost: early.example\r\nX-Pad: ${'a'.repeat(MAX_SCAN)}\r\n\r\n`,
  );
  t.match(probeHttp(early), { kind: 'match', detection: { host: 'early.example' } });
});
