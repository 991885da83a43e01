// The PROXY protocol end to end: real nginx and HAProxy read sni-mux's headers, HAProxy sends one to it, forgeries fail.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { parseProxyHeader } from '../lib/proxy/parse.js';
import { captureFirstBytes } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { connectionLine, fdCount, fdsBackTo, type MuxProcess, startMux } from './helpers/mux.js';
import {
  freePort,
  freePorts,
  hasIpv6Loopback,
  missing,
  program,
  startDaemon,
  tempDir,
} from './helpers/programs.js';
import { certFiles, makeCert, startEcho, startRecorder } from './helpers/servers.js';

const NO_IPV6 = 'no IPv6 loopback on this box';

/** The "original client": a loopback address no daemon here uses, so seeing it proves it was carried. */
const CLIENT = '127.0.0.5';

interface Reply {
  /** Everything the server sent. */
  data: Buffer;
  localPort: number;
  errored: string | undefined;
}

interface SendOptions {
  host?: string;
  localAddress?: string | undefined;
  /** TLS with this server name (and ALPN http/1.1) instead of plain TCP. */
  servername?: string;
}

/** Connects (from localAddress), writes bytes, half-closes, and reads until the server closes. */
function send(port: number, bytes: Uint8Array | string, opts: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const where = { host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress };
    const s =
      opts.servername === undefined
        ? net.connect({ ...where, allowHalfOpen: true })
        : tls.connect({
            ...where,
            servername: opts.servername,
            ALPNProtocols: ['http/1.1'],
            rejectUnauthorized: false,
          });
    const chunks: Buffer[] = [];
    let localPort = 0;
    let errored: string | undefined;
    s.on(opts.servername === undefined ? 'connect' : 'secureConnect', () => {
      localPort = s.localPort!;
      s.write(bytes);
      // Over TLS, a half-close would be a close_notify some servers answer by closing: HTTP/1.0 ends it.
      if (opts.servername === undefined) s.end();
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end());
    s.on('error', (e: NodeJS.ErrnoException) => {
      errored = e.code ?? e.message;
    });
    s.on('close', () => resolve({ data: Buffer.concat(chunks), localPort, errored }));
  });
}

/** An HTTP/1.0 GET for `host`; resolves with the response body and the client's port. */
async function get(
  port: number,
  host: string,
  opts: SendOptions = {},
): Promise<{ body: string; localPort: number }> {
  const r = await send(port, `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`, opts);
  const text = r.data.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.') || split === -1)
    throw new Error(`not an HTTP response: ${JSON.stringify(text)}`);
  return { body: text.slice(split + 4).trim(), localPort: r.localPort };
}

/** nginx with a plain and an ssl server block, both `listen … proxy_protocol`, answering with what they read. */
async function startNginx(t: Test): Promise<{ plain: number; ssl: number }> {
  const dir = tempDir(t, 'nginx');
  const [plain, ssl] = await freePorts(2);
  const { certFile, keyFile } = certFiles('ssl.test');
  const answer = 'return 200 "$proxy_protocol_addr $proxy_protocol_port $remote_addr\\n";';
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  # As in docs/proxy-protocol.md: trust the header from sni-mux only, and log the client as remote_addr.
  set_real_ip_from 127.0.0.1;
  real_ip_header proxy_protocol;
  server {
    listen 127.0.0.1:${plain} proxy_protocol;
    location / { ${answer} }
  }
  server {
    listen 127.0.0.1:${ssl} ssl proxy_protocol;
    ssl_certificate ${certFile};
    ssl_certificate_key ${keyFile};
    location / { ${answer} }
  }
}
`,
  );
  await startDaemon(t, program('nginx'), ['-c', conf, '-g', 'daemon off;'], {
    ready: /start worker process/,
  });
  return { plain: plain!, ssl: ssl! };
}

/** HAProxy in master-worker mode, foreground; ready once the master has bound and forked. */
async function startHaproxy(t: Test, dir: string, cfg: string): Promise<void> {
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `global
  pidfile ${dir}/haproxy.pid
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
${cfg}`,
  );
  await startDaemon(t, program('haproxy'), ['-W', '-db', '-f', file], { ready: /Loading success/ });
}

t.test(
  'nginx reads the client from v1 and v2 headers, over plain HTTP and TLS, IPv4 and IPv6',
  { skip: missing('nginx') },
  async (t) => {
    const [nginx, ipv6] = await Promise.all([startNginx(t), hasIpv6Loopback()]);
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"${ipv6 ? ', "[::1]:0"' : ''}]
[[route]]
name = "v1"
host = "v1.test"
backend = "127.0.0.1:${nginx.plain}"
proxy_protocol = "v1"
[[route]]
name = "v2"
host = "v2.test"
backend = "127.0.0.1:${nginx.plain}"
proxy_protocol = "v2"
[[route]]
name = "tls"
sni = "ssl.test"
backend = "127.0.0.1:${nginx.ssl}"
proxy_protocol = "v2"
`,
    );
    for (const version of ['v1', 'v2']) {
      const r = await get(mux.port, `${version}.test`, { localAddress: CLIENT });
      t.equal(
        r.body,
        `${CLIENT} ${r.localPort} ${CLIENT}`,
        `${version}: $proxy_protocol_addr, port and real_ip`,
      );
      t.match(await connectionLine(mux, r.localPort), { route: version, client: CLIENT });
    }
    const s = await get(mux.port, 'ssl.test', { localAddress: CLIENT, servername: 'ssl.test' });
    t.equal(
      s.body,
      `${CLIENT} ${s.localPort} ${CLIENT}`,
      'TLS: the v2 header with SNI and ALPN TLVs before the hello',
    );
    await t.test('an IPv6 client arrives as itself', { skip: ipv6 ? false : NO_IPV6 }, async (t) => {
      for (const version of ['v1', 'v2']) {
        const r = await get(mux.ports[1]!, `${version}.test`, { host: '::1', localAddress: '::1' });
        t.equal(r.body, `::1 ${r.localPort} ::1`, version);
      }
    });
  },
);

t.test(
  'HAProxy with accept-proxy reads v1 and v2 headers, the SNI as the authority',
  { skip: missing('haproxy') },
  async (t) => {
    const dir = tempDir(t, 'haproxy-recv');
    const [plain, ssl] = await freePorts(2);
    const cert = makeCert('ha.test');
    const pem = join(dir, 'ha.test.pem');
    writeFileSync(pem, Buffer.concat([cert.cert, cert.key]));
    await startHaproxy(
      t,
      dir,
      `frontend fe
  mode http
  bind 127.0.0.1:${plain} accept-proxy
  bind 127.0.0.1:${ssl} accept-proxy ssl crt ${pem}
  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[fc_pp_authority]\\n"
`,
    );
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
[[route]]
name = "v1"
host = "v1.test"
backend = "127.0.0.1:${plain}"
proxy_protocol = "v1"
[[route]]
name = "tls"
sni = "ha.test"
backend = "127.0.0.1:${ssl}"
proxy_protocol = "v2"
`,
    );
    const r = await get(mux.port, 'v1.test', { localAddress: CLIENT });
    t.match(r.body, new RegExp(`^${CLIENT} ${r.localPort}\\b`), 'v1: HAProxy src is the client');
    const s = await get(mux.port, 'ha.test', { localAddress: CLIENT, servername: 'ha.test' });
    t.equal(
      s.body,
      `${CLIENT} ${s.localPort} ha.test`,
      'v2: src, and fc_pp_authority from the AUTHORITY TLV',
    );
  },
);

t.test(
  'Apache with RemoteIPProxyProtocol logs the client from v1 and v2 headers',
  { skip: missing('apache2') },
  async (t) => {
    const dir = tempDir(t, 'apache');
    const [port, ipv6] = await Promise.all([freePort(), hasIpv6Loopback()]);
    const conf = join(dir, 'httpd.conf');
    // Debian's layout; the snippet in docs/proxy-protocol.md is the last line.
    writeFileSync(
      conf,
      `ServerRoot /usr/lib/apache2
LoadModule mpm_event_module modules/mod_mpm_event.so
LoadModule authz_core_module modules/mod_authz_core.so
LoadModule remoteip_module modules/mod_remoteip.so
StartServers 1
ServerLimit 1
ThreadLimit 4
ThreadsPerChild 4
MaxRequestWorkers 4
MinSpareThreads 1
MaxSpareThreads 4
ServerName localhost
Listen 127.0.0.1:${port}
PidFile ${dir}/httpd.pid
ErrorLog "|/bin/cat"
LogLevel notice
User nobody
Group nogroup
DocumentRoot ${dir}
LogFormat "client=%a:%{remote}p peer=%{c}a" pp
CustomLog "|/bin/cat" pp
RemoteIPProxyProtocol On
`,
    );
    // Foreground master and one child, not -X: a single-process Apache ignores SIGTERM.
    const apache = await startDaemon(t, program('apache2'), ['-DFOREGROUND', '-f', conf], {
      ready: /resuming normal operations/,
    });
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"${ipv6 ? ', "[::1]:0"' : ''}]
[[route]]
name = "v1"
host = "v1.test"
backend = "127.0.0.1:${port}"
proxy_protocol = "v1"
[[route]]
name = "v2"
host = "v2.test"
backend = "127.0.0.1:${port}"
proxy_protocol = "v2"
`,
    );
    const clients: [string, string, number][] = [[CLIENT, '127.0.0.1', mux.port]];
    if (ipv6) clients.push(['::1', '::1', mux.ports[1]!]);
    for (const [client, host, muxPort] of clients) {
      for (const version of ['v1', 'v2']) {
        const r = await send(muxPort, `GET / HTTP/1.0\r\nHost: ${version}.test\r\n\r\n`, {
          host,
          localAddress: client,
        });
        t.match(r.data.toString(), /^HTTP\/1\.1 /, `${version} from ${client}: Apache answered`);
        const logged = await apache.waitFor(
          new RegExp(`client=${client.replaceAll('.', '\\.')}:${r.localPort} peer=127\\.0\\.0\\.1`),
        );
        t.ok(logged, `${version} from ${client}: %a is the client, %{c}a is sni-mux`);
      }
    }
  },
);

t.test('the v2 TLVs carry the SNI and ALPN, and the hello follows the header unchanged', async (t) => {
  const rec = await startRecorder(t, 'rec');
  const mux = await startMux(
    t,
    muxConfig(
      route('h2', rec.port, { sni: 'rec.test', alpn: 'h2', proxy_protocol: 'v2' }),
      route('v1', rec.port, { sni: 'v1.rec.test', proxy_protocol: 'v1' }),
    ),
  );
  const hello = (servername: string): Promise<Buffer> =>
    captureFirstBytes(
      (port) => tls.connect({ port, host: '127.0.0.1', servername, ALPNProtocols: ['http/1.1', 'h2'] }),
      200,
    );
  const h2 = await hello('rec.test');
  const sent = await send(mux.port, h2, { localAddress: CLIENT });
  const got = await rec.next();
  const r = parseProxyHeader(got);
  t.match(r, {
    kind: 'match',
    header: {
      version: 2,
      command: 'proxy',
      source: { address: CLIENT, port: sent.localPort },
      destination: { address: '127.0.0.1', port: mux.port },
      authority: 'rec.test',
      alpn: 'h2',
    },
  });
  if (r.kind === 'match') t.same(got.subarray(r.length), h2, 'then the ClientHello, byte for byte');
  t.match(
    await connectionLine(mux, sent.localPort),
    {
      route: 'h2',
      bytes_client_to_backend: h2.length,
    },
    'the header is not counted as client bytes',
  );

  const v1hello = await hello('v1.rec.test');
  const v1sent = await send(mux.port, v1hello, { localAddress: CLIENT });
  const v1got = await rec.next();
  const line = `PROXY TCP4 ${CLIENT} 127.0.0.1 ${v1sent.localPort} ${mux.port}\r\n`;
  t.equal(v1got.subarray(0, line.length).toString('latin1'), line, 'v1 has no TLVs: a line, then the hello');
  t.same(v1got.subarray(line.length), v1hello);
});

t.test(
  'HAProxy in front with send-proxy-v2: the backend behind sni-mux sees the original client',
  { skip: missing('haproxy') },
  async (t) => {
    const dir = tempDir(t, 'haproxy-front');
    const [rec, ipv6] = await Promise.all([startRecorder(t, 'behind'), hasIpv6Loopback()]);
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
[accept_proxy]
from = ["127.0.0.1"]
[[route]]
name = "web"
host = "front.test"
backend = "127.0.0.1:${rec.port}"
proxy_protocol = "v2"
`,
    );
    const [front, front6] = await freePorts(2);
    await startHaproxy(
      t,
      dir,
      `frontend fe
  mode tcp
  bind 127.0.0.1:${front}
  ${ipv6 ? `bind [::1]:${front6}` : ''}
  default_backend mux
backend mux
  mode tcp
  server mux 127.0.0.1:${mux.port} send-proxy-v2 proxy-v2-options crc32c
`,
    );
    const request = 'GET / HTTP/1.1\r\nHost: front.test\r\n\r\n';
    const r = await send(front!, request, { localAddress: CLIENT });
    t.match(r.data.toString(), /^behind /, 'the recorder answered through HAProxy and sni-mux');
    const got = await rec.next();
    const h = parseProxyHeader(got);
    t.match(
      h,
      {
        kind: 'match',
        header: {
          source: { address: CLIENT, port: r.localPort },
          destination: { address: '127.0.0.1', port: front },
        },
      },
      "sni-mux's own header names the client and the address it dialled at HAProxy",
    );
    if (h.kind === 'match')
      t.equal(got.subarray(h.length).toString(), request, "HAProxy's header was stripped");
    t.match(await connectionLine(mux, r.localPort), {
      client: CLIENT,
      proxy_peer: '127.0.0.1',
      route: 'web',
      end: 'client_closed',
    });

    await t.test(
      'an IPv6 client behind an IPv4 hop is still itself',
      { skip: ipv6 ? false : NO_IPV6 },
      async (t) => {
        const r6 = await send(front6!, request, { host: '::1', localAddress: '::1' });
        t.match(parseProxyHeader(await rec.next()), {
          kind: 'match',
          header: {
            family: 6,
            source: { address: '::1', port: r6.localPort },
            destination: { address: '::1', port: front6 },
          },
        });
      },
    );
  },
);

t.test('forged, missing and malformed headers are refused and counted; the mux keeps serving', async (t) => {
  const rec = await startRecorder(t, 'rec');
  const mux = await startMux(
    t,
    muxConfig(
      table('timeouts', { detect: '300ms' }),
      table('admin', { listen: '127.0.0.1:0' }),
      table('accept_proxy', { from: ['127.0.0.1'] }),
      route('any', rec.port),
    ),
  );
  const baseline = await fdCount(mux.pid);
  const v2sig = '\r\n\r\n\0\r\nQUIT\n';
  const v4block = '\x7f\0\0\x09\x7f\0\0\x01\x30\x39\x01\xbb';
  const v2 = (verCmd: number, fam: number, body: string, len = body.length): string =>
    `${v2sig}${String.fromCharCode(verCmd, fam, len >> 8, len & 0xff)}${body}`;
  const cases: [string, string, string | undefined, RegExp][] = [
    [
      'an untrusted peer sending v1',
      'PROXY TCP4 6.6.6.6 127.0.0.1 1 443\r\nGET / HTTP/1.0\r\n\r\n',
      '127.0.0.7',
      /not in accept_proxy/,
    ],
    ['an untrusted peer sending v2', `${v2(0x21, 0x11, v4block)}GET /`, '127.0.0.7', /not in accept_proxy/],
    ['a trusted peer without a header', 'GET / HTTP/1.0\r\n\r\n', undefined, /no PROXY header/],
    ['a bad v2 signature', `\r\n\r\n\0\r\nQUIX\n${'\x21\x11\0\x0c'}${v4block}`, undefined, /no PROXY header/],
    ['an unknown v1 protocol', 'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', undefined, /unknown protocol/],
    ['v1 with a bad address', 'PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n', undefined, /not an IPv4 address/],
    ['v1 with a bad port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n', undefined, /ports/],
    ['v1 without CRLF in 107 bytes', `PROXY UNKNOWN ${'x'.repeat(120)}`, undefined, /no CRLF/],
    ['an unknown v2 version', v2(0x31, 0x11, v4block), undefined, /unknown version 3/],
    ['an unknown v2 command', v2(0x2f, 0x11, v4block), undefined, /unknown command 15/],
    ['a v2 length too short', v2(0x21, 0x21, v4block), undefined, /shorter than the 36-byte/],
    ['a v2 TLV overrun', v2(0x21, 0x11, `${v4block}\x02\0\x40ab`), undefined, /overruns/],
    ['a truncated v1 header', 'PROXY TCP4 1.2.3.4 5.6', undefined, /cut short/],
    ['a truncated v2 header', v2(0x21, 0x11, v4block).slice(0, 20), undefined, /cut short/],
  ];
  const results = await Promise.all(
    cases.map(async ([what, bytes, from, detail]) => {
      const r = await send(mux.port, Buffer.from(bytes, 'latin1'), { localAddress: from });
      return { what, detail, r, line: await connectionLine(mux, r.localPort) };
    }),
  );
  for (const { what, detail, r, line } of results) {
    t.match(line, { reject: 'proxy_header', detail }, what);
    t.equal(r.data.length, 0, `${what}: nothing answered`);
  }

  // Sent in part, then silence: the header must be complete within timeouts.detect.
  const [slow, silent] = await Promise.all([sendAndWait(mux, 'PROXY TCP4 1.2.3.4'), sendAndWait(mux, '')]);
  t.match(slow, { reject: 'proxy_header', detail: 'PROXY header incomplete' });
  t.match(silent, { reject: 'proxy_header', detail: 'no PROXY header in time' });

  const request = 'GET /after HTTP/1.0\r\n\r\n';
  const ok = await send(mux.port, `PROXY TCP4 192.0.2.44 127.0.0.1 40404 443\r\n${request}`);
  t.match(ok.data.toString(), /^rec /, 'a good header from a trusted peer still gets through');
  t.equal((await rec.next()).toString(), request, 'header bytes never reach the backend');
  t.match(
    await connectionLine(mux, 40404),
    { client: '192.0.2.44', proxy_peer: '127.0.0.1', proxy_peer_port: ok.localPort, end: 'client_closed' },
    'the line names the client from the header and the proxy that sent it',
  );
  t.equal(rec.received.length, 1, 'no refused connection reached the backend');

  const refused = cases.length + 2;
  const samples = await scrape(adminPort(mux));
  t.equal(value(samples, 'snimux_rejected_connections_total', { reason: 'proxy_header' }), refused);
  t.equal(mux.proc.exitCode, null, 'still running');
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'file descriptors back to the baseline');
});

/** Sends bytes from a trusted peer and keeps the connection open until sni-mux closes it. */
async function sendAndWait(mux: MuxProcess, bytes: string): Promise<Record<string, unknown>> {
  const s = net.connect({ port: mux.port, host: '127.0.0.1' });
  s.on('error', () => {});
  await new Promise<void>((resolve) => s.on('connect', resolve));
  const port = s.localPort!;
  if (bytes.length > 0) s.write(bytes);
  const line = await connectionLine(mux, port);
  s.destroy();
  return line;
}

t.test('behind a trusted proxy, max_connections_per_source counts clients, not the proxy', async (t) => {
  const echo = await startEcho(t);
  const mux = await startMux(
    t,
    muxConfig(
      table('admin', { listen: '127.0.0.1:0' }),
      table('limits', { max_connections_per_source: 2 }),
      table('accept_proxy', { from: ['127.0.0.1'] }),
      route('echo', echo.port),
    ),
  );
  /** Opens a connection "from" client:port through the trusted peer; resolves with whether it was relayed. */
  const open = (client: string, port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect({ port: mux.port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.write(`PROXY TCP4 ${client} 127.0.0.1 ${port} 443\r\nhello`);
      s.once('data', () => resolve(true));
      s.once('close', () => resolve(false));
      t.teardown(() => s.destroy());
    });
  const relayed = [];
  for (const [client, port] of [
    ['198.51.100.1', 1001],
    ['198.51.100.1', 1002],
    ['198.51.100.2', 2001],
    ['198.51.100.2', 2002],
  ] as const) {
    relayed.push(await open(client, port));
  }
  t.same(relayed, [true, true, true, true], 'four connections from one proxy address, two per client');
  t.equal(await open('198.51.100.1', 1003), false, "a client's third is refused");
  const samples = await scrape(adminPort(mux));
  t.equal(value(samples, 'snimux_rejected_connections_total', { reason: 'limit' }), 1);
});
