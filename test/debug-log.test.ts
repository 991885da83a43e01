// [log] level = "debug" answers "why wasn't my client routed?": the first bytes, each probe's verdict,
// each route and why it did not match, each backend tried; trace adds socket events; info stays quiet.
import t from 'tap';
import { PROBES } from '../lib/detect/detect.js';
import { exchange } from './helpers/clients.js';
import { route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { connectionLine, type LogLine, startMux } from './helpers/mux.js';
import { closedPort, startEcho } from './helpers/servers.js';

const routes = (echo: number, down: number): string[] => [
  'listen = ["127.0.0.1:0", "127.0.0.2:0"]',
  route('blog', echo, { sni: 'blog.example' }),
  route('h2only', echo, { alpn: 'h2' }),
  route('ssh', echo, { protocol: 'ssh', listen: '127.0.0.2:0' }),
  route('vpn', echo, { protocol: 'openvpn' }),
  route('web', [down, echo], { protocol: 'http' }),
];

const byConn = (logs: LogLine[], conn: unknown, msg: string): LogLine | undefined =>
  logs.find((l) => l.conn === conn && l.msg.startsWith(msg));

t.test(
  'debug: a refused connection names its first bytes, every probe verdict and why each route failed',
  async (t) => {
    const echo = await startEcho(t);
    const mux = await startMux(
      t,
      [...routes(echo.port, await closedPort()), table('log', { level: 'debug' })].join('\n'),
    );

    const hello = buildClientHello({ sni: 'bio.example', alpn: ['http/1.1'] });
    const tls = await exchange(mux.port, hello);
    const refused = await connectionLine(mux, tls.localPort);
    t.match(
      refused,
      { level: 30, msg: 'connection refused: no_route', protocol: 'tls', sni: 'bio.example' },
      'info line says what was detected',
    );

    const detect = byConn(mux.logs, refused.conn, 'detect: ');
    t.match(
      detect,
      {
        level: 20,
        msg: 'detect: tls',
        bytes: hello.length,
        first_bytes: Buffer.from(hello.subarray(0, 64)).toString('hex'),
      },
      'first bytes as hex, capped at 64',
    );
    const probes = detect?.probes as string[];
    t.same(
      probes.map((p) => p.split(':')[0]),
      PROBES.map((p) => p.protocol),
      'every probe, in table order',
    );
    t.equal(probes[0], 'tls: match');
    t.match(probes[1], /^ssh: no-match \(does not start with "SSH-"\)$/);

    t.match(byConn(mux.logs, refused.conn, 'route: '), {
      level: 20,
      msg: 'route: none matched tls sni=bio.example alpn=http/1.1',
      candidates: [
        { route: 'blog', result: 'sni: bio.example matches none of blog.example' },
        { route: 'h2only', result: 'alpn: offered http/1.1, route wants h2' },
        { route: 'ssh', result: 'listen: only on 127.0.0.2:0' },
        { route: 'vpn', result: 'protocol: tls is not openvpn' },
        { route: 'web', result: 'protocol: tls is not http' },
      ],
    });

    const junk = await exchange(mux.port, Buffer.from('\x00\x01junk that no probe knows'));
    const unknown = await connectionLine(mux, junk.localPort);
    t.match(
      unknown,
      { msg: 'connection refused: no_route', protocol: 'unknown' },
      'unrecognised bytes say so at info',
    );
    t.match(byConn(mux.logs, unknown.conn, 'route: '), {
      msg: 'route: none matched unrecognised bytes',
      candidates: [
        { route: 'blog', result: 'protocol: no probe recognised the bytes, and this route needs a protocol' },
      ],
    });
  },
);

t.test('debug: each backend tried, in order, and the one that answered', async (t) => {
  const echo = await startEcho(t);
  const down = await closedPort();
  const mux = await startMux(t, [...routes(echo.port, down), table('log', { level: 'debug' })].join('\n'));
  const r = await exchange(mux.port, Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  const line = await connectionLine(mux, r.localPort);
  t.match(line, { route: 'web', backend: `127.0.0.1:${echo.port}` });
  t.match(byConn(mux.logs, line.conn, 'connect: trying'), {
    msg: 'connect: trying 2 backends in turn',
    backends: [`127.0.0.1:${down}`, `127.0.0.1:${echo.port}`],
  });
  t.match(byConn(mux.logs, line.conn, 'backend connect failed'), {
    backend: `127.0.0.1:${down}`,
    code: 'ECONNREFUSED',
  });
  t.match(byConn(mux.logs, line.conn, 'connect: backend connected'), { backend: `127.0.0.1:${echo.port}` });
  t.match(byConn(mux.logs, line.conn, 'route: web'), {
    candidates: [
      { route: 'blog', result: 'protocol: http is not tls' },
      { route: 'h2only', result: 'protocol: http is not tls' },
      { route: 'ssh', result: 'listen: only on 127.0.0.2:0' },
      { route: 'vpn', result: 'protocol: http is not openvpn' },
      { route: 'web', result: 'match' },
    ],
  });
  t.notOk(
    mux.logs.some((l) => l.level === 10),
    'no trace lines at debug',
  );
});

t.test('trace: socket events; info: no debug line at all', async (t) => {
  const echo = await startEcho(t);
  const traced = await startMux(
    t,
    [...routes(echo.port, echo.port), table('log', { level: 'trace' })].join('\n'),
  );
  // A TLS record header promising 512 bytes, then FIN: detection is still undecided at the half-close.
  const a = await exchange(traced.port, Buffer.from([0x16, 3, 1, 2, 0, 1, 0, 1, 0xfc]), { chunk: 4 });
  const line = await connectionLine(traced, a.localPort);
  await traced.waitForLog((l) => l.conn === line.conn && l.msg === 'socket: close');
  const events = traced.logs.filter((l) => l.conn === line.conn && l.level === 10);
  const names = events.map((l) => l.msg).filter((m) => m !== 'socket: data');
  t.same(names, ['socket: accepted', 'socket: end', 'socket: close'], 'accept, FIN, close in order');
  const data = events.filter((l) => l.msg === 'socket: data').map((l) => l.detail as number);
  t.equal(
    data.reduce((x, y) => x + y, 0),
    9,
    'one data event per chunk read while detecting, with its size',
  );

  const quiet = await startMux(t, routes(echo.port, echo.port).join('\n'));
  const b = await exchange(quiet.port, Buffer.from('SSH-2.0-x\r\n'));
  await connectionLine(quiet, b.localPort);
  t.notOk(
    quiet.logs.some((l) => l.level < 30),
    'nothing below info is even built at info',
  );
});
