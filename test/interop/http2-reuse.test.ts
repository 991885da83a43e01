// docs/operations.md's 421 snippet, run as written: an HTTP/2 connection opened for one name and reused
// for another (as browsers coalesce with a shared certificate) gets 421 from nginx, and a fresh
// connection for that name reaches the right backend through sni-mux.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import t from 'tap';
import { startMux } from '../helpers/mux.js';
import { nginxConf } from '../helpers/nginx.js';
import { freePorts, missing, program, startDaemon, tempDir } from '../helpers/programs.js';
import { certFiles } from '../helpers/servers.js';

const skip = missing('nginx', 'openssl');
const NAMES = ['blog.shared.test', 'bio.shared.test'] as const;

/** The nginx block of the shared-certificate section, as the docs show it. */
function docSnippet(): string {
  const docs = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');
  const section = docs.slice(docs.indexOf('## HTTP/2 connection reuse with shared certificates'));
  const block = /```nginx\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('no nginx block in the shared-certificate section');
  return block;
}

/** GETs / with this :authority on a session, resolving with the status and body. */
function get(
  session: http2.ClientHttp2Session,
  authority: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/', ':authority': authority });
    let status = 0;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.setEncoding('utf8').on('data', (s: string) => {
      body += s;
    });
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

function connect(port: number, servername: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

t.test(
  'a reused connection gets 421 for the other name; a fresh one reaches its backend',
  { skip },
  async (t) => {
    const dir = tempDir(t, 'h2reuse');
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'tmp'));
    // One wildcard certificate on both backends: what makes a browser coalesce.
    const cert = certFiles('*.shared.test');
    const ports = await freePorts(NAMES.length);
    const servers = NAMES.map((name, i) => {
      const root = join(dir, name);
      mkdirSync(root);
      writeFileSync(join(root, 'index.html'), `${name}\n`);
      return docSnippet()
        .replaceAll('8443', String(ports[i]))
        .replaceAll('blog.bjk.is', name)
        .replaceAll('/etc/nginx/certs/wildcard.bjk.is.crt', cert.certFile)
        .replaceAll('/etc/nginx/certs/wildcard.bjk.is.key', cert.keyFile)
        .replaceAll('/srv/blog', root)
        .replaceAll('listen ', 'listen 127.0.0.1:');
    });
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConf(dir, servers, 64));
    await startDaemon(t, program('nginx'), ['-p', dir, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'], {
      ready: /start worker process/,
    });
    const mux = await startMux(
      t,
      [
        'listen = ["127.0.0.1:0"]',
        ...NAMES.map(
          (name, i) =>
            `[[route]]\nname = "${name.split('.')[0]}"\nsni = "${name}"\nbackend = "127.0.0.1:${ports[i]}"`,
        ),
        '',
      ].join('\n'),
    );

    const blog = await connect(mux.port, 'blog.shared.test');
    t.teardown(() => blog.close());
    t.same(await get(blog, 'blog.shared.test'), { status: 200, body: 'blog.shared.test\n' });
    const misdirected = await get(blog, 'bio.shared.test');
    t.equal(misdirected.status, 421, "bio's request on blog's connection: 421, not blog's page");

    // What a browser does on 421: a new connection, whose SNI sni-mux routes to bio's backend.
    const bio = await connect(mux.port, 'bio.shared.test');
    t.teardown(() => bio.close());
    t.same(await get(bio, 'bio.shared.test'), { status: 200, body: 'bio.shared.test\n' });
  },
);
