// curl through a real sni-mux to real web servers (nginx; python3 http.server for plain HTTP without nginx).
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { connectionLine, fdCount, fdsBackTo, type MuxProcess, startMux } from '../helpers/mux.js';
import { findProgram, freePorts, missing, program, run, startDaemon, tempDir } from '../helpers/programs.js';
import { certFiles, sha256 } from '../helpers/servers.js';

const nginx = findProgram('nginx') !== undefined;
const skip = missing('curl') || (nginx ? false : missing('python3'));
/** HTTPS, HTTP/2, h2c and keep-alive need nginx; plain HTTP falls back to python3 -m http.server (HTTP/1.0). */
const skipNginx = skip || missing('nginx');

/** Each backend serves index.html with its own name and the same 1 MiB blob.bin. */
const SITES = ['alpha', 'beta', 'alpha-h2', 'alpha-tls', 'beta-tls', 'h2c'] as const;
type Site = (typeof SITES)[number];

interface Env {
  mux: MuxProcess;
  blob: Buffer;
  baseline: number;
}

function nginxConfig(dir: string, ports: Record<Site, number>): string {
  const alpha = certFiles('alpha.test');
  const beta = certFiles('beta.test');
  const tls = (c: { certFile: string; keyFile: string }) =>
    `ssl_certificate ${c.certFile}; ssl_certificate_key ${c.keyFile}; ssl_protocols TLSv1.2 TLSv1.3;`;
  const server = (site: Site, listen: string, extra = '') =>
    `  server { listen 127.0.0.1:${ports[site]}${listen}; root ${join(dir, site)}; ${extra} }`;
  return [
    'error_log stderr notice;',
    `pid ${join(dir, 'nginx.pid')};`,
    'worker_processes 1;',
    'events { worker_connections 128; }',
    'http {',
    '  access_log off;',
    '  default_type application/octet-stream;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (k) => `  ${k}_temp_path ${join(dir, 'tmp', k)};`,
    ),
    server('alpha', ''),
    server('beta', ''),
    server('alpha-h2', ' ssl http2', tls(alpha)),
    server('alpha-tls', ' ssl', tls(alpha)),
    server('beta-tls', ' ssl', tls(beta)),
    // nginx 1.22 syntax; `http2` on a plain listen speaks HTTP/2 with prior knowledge (h2c).
    server('h2c', ' http2'),
    '}',
    '',
  ].join('\n');
}

async function setup(): Promise<Env> {
  const dir = tempDir(t, 'http');
  // nginx workers run as nobody when started as root: they must be able to read the site roots.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'tmp'));
  const blob = randomBytes(1 << 20);
  for (const site of SITES) {
    mkdirSync(join(dir, site));
    writeFileSync(join(dir, site, 'index.html'), `${site}\n`);
    writeFileSync(join(dir, site, 'blob.bin'), blob);
  }
  const ports = Object.fromEntries(SITES.map((s) => [s, 0] as const)) as Record<Site, number>;
  if (nginx) {
    const free = await freePorts(SITES.length);
    SITES.forEach((s, i) => {
      ports[s] = free[i]!;
    });
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfig(dir, ports));
    // -e: the startup error log, before nginx reads error_log from the config.
    await startDaemon(t, program('nginx'), ['-p', dir, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'], {
      ready: /start worker process/,
    });
  } else {
    for (const site of ['alpha', 'beta'] as const) {
      const py = await startDaemon(
        t,
        program('python3'),
        ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', join(dir, site)],
        { ready: /Serving HTTP on \S+ port \d+/ },
      );
      ports[site] = Number(/Serving HTTP on \S+ port (\d+)/.exec(py.output)![1]);
    }
    // Routes to servers that do not exist without nginx: their tests skip.
    const [unused] = await freePorts(1);
    for (const site of SITES) if (ports[site] === 0) ports[site] = unused!;
  }
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[[route]]
name = "alpha-http"
host = "alpha.test"
backend = "127.0.0.1:${ports.alpha}"
[[route]]
name = "beta-http"
host = ["beta.test", "*.beta.test"]
backend = "127.0.0.1:${ports.beta}"
[[route]]
name = "h2c"
protocol = "http"
backend = "127.0.0.1:${ports.h2c}"
[[route]]
name = "alpha-h2"
sni = "alpha.test"
alpn = "h2"
backend = "127.0.0.1:${ports['alpha-h2']}"
[[route]]
name = "alpha-tls"
sni = "alpha.test"
backend = "127.0.0.1:${ports['alpha-tls']}"
[[route]]
name = "beta-tls"
sni = ["beta.test", "*.beta.test"]
backend = "127.0.0.1:${ports['beta-tls']}"
`,
  );
  return { mux, blob, baseline: await fdCount(mux.pid) };
}

const env = skip ? undefined : await setup();

interface CurlResult {
  code: number | null;
  body: Buffer;
  /** curl's %{http_version}: "1.1", "2". */
  httpVersion: string;
  /** curl's %{local_port}: the client port in the mux's log line. */
  localPort: number;
  stderr: string;
}

/** curl with the name resolved to the mux (as DNS would), certificates not checked (self-signed). */
async function curl(name: string, url: string, args: string[] = []): Promise<CurlResult> {
  const port = env!.mux.port;
  const r = await run(program('curl'), [
    '-sS',
    '-k',
    '--max-time',
    '20',
    '--resolve',
    `${name}:${port}:127.0.0.1`,
    '-w',
    '\n%{http_version} %{local_port}',
    ...args,
    url.replace('PORT', String(port)),
  ]);
  const nl = r.stdout.lastIndexOf(0x0a);
  const [httpVersion, localPort] = r.stdout
    .subarray(nl + 1)
    .toString()
    .split(' ');
  return {
    code: r.code,
    body: r.stdout.subarray(0, nl),
    httpVersion: httpVersion!,
    localPort: Number(localPort),
    stderr: r.stderr,
  };
}

t.test('curl http://alpha.test reaches the backend its Host header routes to', { skip }, async (t) => {
  const r = await curl('alpha.test', 'http://alpha.test:PORT/');
  t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
  t.equal(r.body.toString(), 'alpha\n');
  t.match(await connectionLine(env!.mux, r.localPort), {
    route: 'alpha-http',
    protocol: 'http',
    host: 'alpha.test',
  });
});

t.test('a Host header with a wildcard name and mixed case routes to its backend', { skip }, async (t) => {
  const r = await curl('x', 'http://127.0.0.1:PORT/', ['-H', 'Host: WWW.Beta.Test']);
  t.equal(r.body.toString(), 'beta\n', 'the beta backend answered', { stderr: r.stderr });
  t.match(await connectionLine(env!.mux, r.localPort), { route: 'beta-http', host: 'www.beta.test' });
});

t.test(
  'two requests on one kept-alive connection both reach the routed backend',
  { skip: skipNginx },
  async (t) => {
    const url = 'http://alpha.test:PORT/';
    const r = await curl('alpha.test', url, [url.replace('PORT', String(env!.mux.port))]);
    t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
    t.equal(r.body.toString(), `alpha\n\n1.1 ${r.localPort}alpha\n`, 'both answers, the same client port');
    t.match(await connectionLine(env!.mux, r.localPort), { route: 'alpha-http' });
  },
);

t.test('a 1 MiB download over HTTP/1.1 arrives byte for byte', { skip }, async (t) => {
  const r = await curl('alpha.test', 'http://alpha.test:PORT/blob.bin');
  t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
  t.equal(sha256(r.body), sha256(env!.blob));
  const line = await connectionLine(env!.mux, r.localPort);
  t.ok((line.bytes_backend_to_client as number) > env!.blob.length, 'relayed, with the headers');
});

t.test(
  'curl https:// is routed by SNI, TLS passed through to the backend',
  { skip: skipNginx },
  async (t) => {
    const a = await curl('alpha.test', 'https://alpha.test:PORT/', ['--http1.1']);
    t.equal(a.code, 0, 'curl exits 0', { stderr: a.stderr });
    t.equal(a.body.toString(), 'alpha-tls\n');
    t.equal(a.httpVersion, '1.1');
    t.match(await connectionLine(env!.mux, a.localPort), {
      route: 'alpha-tls',
      protocol: 'tls',
      sni: 'alpha.test',
    });

    const b = await curl('www.beta.test', 'https://www.beta.test:PORT/', ['--http1.1']);
    t.equal(b.body.toString(), 'beta-tls\n', 'a wildcard sni name', { stderr: b.stderr });
    t.match(await connectionLine(env!.mux, b.localPort), { route: 'beta-tls', sni: 'www.beta.test' });
  },
);

t.test(
  'curl --http2 offers h2 by ALPN and reaches the h2 route of the same name',
  { skip: skipNginx },
  async (t) => {
    const r = await curl('alpha.test', 'https://alpha.test:PORT/', ['--http2']);
    t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
    t.equal(r.body.toString(), 'alpha-h2\n');
    t.equal(r.httpVersion, '2', 'HTTP/2 end to end');
    t.match(await connectionLine(env!.mux, r.localPort), {
      route: 'alpha-h2',
      sni: 'alpha.test',
      alpn: ['h2', 'http/1.1'],
    });
  },
);

t.test('a 1 MiB download over HTTP/2 arrives byte for byte', { skip: skipNginx }, async (t) => {
  const r = await curl('alpha.test', 'https://alpha.test:PORT/blob.bin', ['--http2']);
  t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
  t.equal(r.httpVersion, '2');
  t.equal(sha256(r.body), sha256(env!.blob));
  t.match(await connectionLine(env!.mux, r.localPort), { route: 'alpha-h2' });
});

t.test(
  'curl --http2-prior-knowledge (h2c) is recognised as http by its preface',
  { skip: skipNginx },
  async (t) => {
    const r = await curl('x', 'http://127.0.0.1:PORT/', ['--http2-prior-knowledge']);
    t.equal(r.code, 0, 'curl exits 0', { stderr: r.stderr });
    t.equal(r.body.toString(), 'h2c\n');
    t.equal(r.httpVersion, '2');
    const line = await connectionLine(env!.mux, r.localPort);
    t.match(line, { route: 'h2c', protocol: 'http' });
    t.equal(line.host, undefined, 'the preface has no Host header');
  },
);

t.test('an https name no route knows is closed before any TLS answer', { skip: skipNginx }, async (t) => {
  const r = await curl('gamma.test', 'https://gamma.test:PORT/');
  t.not(r.code, 0, 'curl fails');
  t.match(r.stderr, /SSL|TLS|reset|closed/i);
  t.match(await connectionLine(env!.mux, r.localPort), { reject: 'no_route', sni: 'gamma.test' });
});

t.test('afterwards the mux is alive, with as many open fds as at start', { skip }, async (t) => {
  const { mux, baseline } = env!;
  t.equal(mux.proc.exitCode, null, 'alive');
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fds back to baseline');
});
