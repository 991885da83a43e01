// openssl s_client and gnutls-cli through a real sni-mux to openssl s_server backends, routed by SNI and ALPN.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { fdCount, fdsBackTo, type MuxProcess, nextConnectionLine, startMux } from '../helpers/mux.js';
import { type Daemon, freePorts, missing, program, run, startDaemon, tempDir } from '../helpers/programs.js';
import { certFiles } from '../helpers/servers.js';

const skip = missing('openssl');
const skipGnutls = skip || missing('gnutls-cli');

/** One s_server per backend, each with a certificate of its own name, reversing each line it gets. */
const BACKENDS = [
  { name: 'alpha.test', args: [] },
  { name: 'beta.test', args: [] },
  // Same server name, other backend: chosen by ALPN.
  { name: 'alpha-h2.backend', args: ['-alpn', 'h2'] },
  // Asks for a client certificate and checks it against the client's (self-signed) one.
  { name: 'mtls.test', args: ['-Verify', '1', '-CAfile', certFiles('client.mtls').certFile] },
] as const;

interface Env {
  servers: Map<string, Daemon>;
  mux: MuxProcess;
  baseline: number;
}

async function setup(): Promise<Env> {
  const ports = await freePorts(BACKENDS.length);
  const servers = new Map<string, Daemon>();
  await Promise.all(
    BACKENDS.map(async (b, i) => {
      const { certFile, keyFile } = certFiles(b.name);
      const args = [
        's_server',
        '-accept',
        `127.0.0.1:${ports[i]}`,
        '-cert',
        certFile,
        '-key',
        keyFile,
        '-rev',
        ...b.args,
      ];
      servers.set(b.name, await startDaemon(t, program('openssl'), args, { ready: /^ACCEPT$/m }));
    }),
  );
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[[route]]
name = "alpha-h2"
sni = "alpha.test"
alpn = "h2"
backend = "127.0.0.1:${ports[2]}"
[[route]]
name = "alpha"
sni = "alpha.test"
backend = "127.0.0.1:${ports[0]}"
[[route]]
name = "beta"
sni = "beta.test"
backend = "127.0.0.1:${ports[1]}"
[[route]]
name = "mtls"
sni = "mtls.test"
backend = "127.0.0.1:${ports[3]}"
[[route]]
name = "other-tls"
protocol = "tls"
backend = "127.0.0.1:${ports[1]}"
`,
  );
  return { servers, mux, baseline: await fdCount(mux.pid) };
}

const env = skip ? undefined : await setup();

/** 64 lines of 1000 random characters and s_server -rev's answer: each line reversed, then it closes. */
function payload(): { input: string; expected: string } {
  const lines = Array.from({ length: 64 }, () => randomBytes(750).toString('base64'));
  return {
    input: `${lines.join('\n')}\nCLOSE\n`,
    expected: `${lines.map((l) => [...l].reverse().join('')).join('\n')}\n`,
  };
}

/** s_client waits for the server to close (-ign_eof) and never reads our lines as commands. */
function sClient(args: string[], input: string) {
  const port = env!.mux.port;
  return run(
    program('openssl'),
    ['s_client', '-connect', `127.0.0.1:${port}`, '-ign_eof', '-nocommands', ...args],
    {
      input,
    },
  );
}

const serverFor: Record<string, string> = { 'alpha.test': 'alpha.test', 'beta.test': 'beta.test' };

for (const version of ['1.2', '1.3'] as const) {
  for (const name of ['alpha.test', 'beta.test']) {
    t.test(
      `openssl s_client, TLS ${version}, SNI ${name}: reaches ${name}'s s_server, bytes round-trip`,
      { skip },
      async (t) => {
        const { mux, servers } = env!;
        const server = servers.get(serverFor[name]!)!;
        const mark = server.output.length;
        const { input, expected } = payload();
        const r = await sClient(['-servername', name, `-tls${version.replace('.', '_')}`], input);
        t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
        t.match(r.text, `subject=CN = ${name}\n`, 'the certificate of the backend for this name');
        t.match(r.text, `New, TLSv${version}, Cipher is `);
        t.ok(r.text.includes(expected), '64 KB reversed by the backend, intact');
        await server.waitFor(new RegExp(`Protocol version: TLSv${version.replace('.', '\\.')}`), mark);
        t.match(await nextConnectionLine(mux), {
          route: name.split('.')[0],
          protocol: 'tls',
          sni: name,
          end: /^(client|backend)_closed$/,
        });
      },
    );
  }
}

t.test('openssl s_client -alpn h2 goes to the ALPN route of the same name', { skip }, async (t) => {
  const { mux } = env!;
  const r = await sClient(['-servername', 'alpha.test', '-alpn', 'h2'], 'over h2\nCLOSE\n');
  t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
  t.match(r.text, 'subject=CN = alpha-h2.backend\n');
  t.match(r.text, 'ALPN protocol: h2\n');
  t.match(r.text, '2h revo\n');
  t.match(await nextConnectionLine(mux), { route: 'alpha-h2', sni: 'alpha.test', alpn: ['h2'] });

  const other = await sClient(['-servername', 'alpha.test', '-alpn', 'http/1.1'], 'x\nCLOSE\n');
  t.match(other.text, 'subject=CN = alpha.test\n', 'another ALPN goes to the name route');
  t.match(await nextConnectionLine(mux), { route: 'alpha', alpn: ['http/1.1'] });
});

t.test(
  'a client certificate crosses the mux and the backend verifies it (mutual TLS)',
  { skip },
  async (t) => {
    const { mux, servers } = env!;
    const server = servers.get('mtls.test')!;
    const mark = server.output.length;
    const client = certFiles('client.mtls');
    const r = await sClient(
      ['-servername', 'mtls.test', '-cert', client.certFile, '-key', client.keyFile],
      'with a client certificate\nCLOSE\n',
    );
    t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
    t.match(r.text, 'subject=CN = mtls.test\n');
    t.match(r.text, 'etacifitrec tneilc a htiw\n');
    await server.waitFor(/Peer certificate: CN = client\.mtls\n(?:.*\n)*?Verification: OK/, mark);
    t.pass('the backend saw and verified the client certificate');
    t.match(await nextConnectionLine(mux), { route: 'mtls', sni: 'mtls.test' });
  },
);

t.test('a TLS session saved through the mux is resumed through the mux', { skip }, async (t) => {
  const { mux } = env!;
  const session = join(tempDir(t, 'tls-session'), 'session.pem');
  const first = await sClient(['-servername', 'alpha.test', '-sess_out', session], 'first\nCLOSE\n');
  t.match(first.text, 'New, TLSv1.3', 'a full handshake', { stderr: first.stderr });
  t.match(first.text, 'tsrif\n');
  const again = await sClient(['-servername', 'alpha.test', '-sess_in', session], 'again\nCLOSE\n');
  t.match(again.text, 'Reused, TLSv1.3', 'the backend resumed the session', { stderr: again.stderr });
  t.match(again.text, 'niaga\n');
  t.match(await nextConnectionLine(mux), { route: 'alpha' });
  t.match(await nextConnectionLine(mux), { route: 'alpha' });
});

t.test('openssl s_client without SNI reaches the protocol = "tls" route', { skip }, async (t) => {
  const { mux } = env!;
  const r = await sClient(['-noservername'], 'no name\nCLOSE\n');
  t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
  t.match(r.text, 'subject=CN = beta.test\n');
  t.match(r.text, 'eman on\n');
  const line = await nextConnectionLine(mux);
  t.match(line, { route: 'other-tls', protocol: 'tls' });
  t.equal(line.sni, undefined);
});

t.test('a ClientHello with a 1 KB ffdhe8192 key share still routes by SNI', { skip }, async (t) => {
  const { mux } = env!;
  const r = await sClient(
    ['-servername', 'beta.test', '-tls1_3', '-groups', 'ffdhe8192'],
    'big hello\nCLOSE\n',
  );
  t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
  t.match(r.text, 'subject=CN = beta.test\n');
  t.match(r.text, 'Server Temp Key: DH, 8192 bits', 'the big key share was used');
  t.match(r.text, 'olleh gib\n');
  t.match(await nextConnectionLine(mux), { route: 'beta', sni: 'beta.test' });
});

function gnutlsCli(args: string[], input: string) {
  const port = env!.mux.port;
  return run(program('gnutls-cli'), ['--insecure', '-p', String(port), ...args, '127.0.0.1'], { input });
}

for (const [version, priority] of [
  ['1.2', 'NORMAL:-VERS-TLS1.3'],
  ['1.3', 'NORMAL'],
] as const) {
  for (const name of ['alpha.test', 'beta.test']) {
    t.test(
      `gnutls-cli, TLS ${version}, SNI ${name}: reaches ${name}'s s_server, bytes round-trip`,
      { skip: skipGnutls },
      async (t) => {
        const { mux } = env!;
        const { input, expected } = payload();
        const r = await gnutlsCli(['--sni-hostname', name, '--priority', priority], input);
        t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
        t.match(r.text, `subject \`CN=${name}'`);
        t.match(r.text, `- Description: (TLS${version}`);
        t.ok(r.text.includes(expected), '64 KB reversed by the backend, intact');
        t.match(await nextConnectionLine(mux), { route: name.split('.')[0], protocol: 'tls', sni: name });
      },
    );
  }
}

t.test('gnutls-cli --alpn h2 goes to the ALPN route', { skip: skipGnutls }, async (t) => {
  const { mux } = env!;
  const r = await gnutlsCli(['--sni-hostname', 'alpha.test', '--alpn', 'h2'], 'gnutls h2\nCLOSE\n');
  t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
  t.match(r.text, "subject `CN=alpha-h2.backend'");
  t.match(r.text, '- Application protocol: h2');
  t.match(r.text, '2h sltung\n');
  t.match(await nextConnectionLine(mux), { route: 'alpha-h2', alpn: ['h2'] });
});

t.test('afterwards the mux is alive, with as many open fds as at start', { skip }, async (t) => {
  const { mux, baseline } = env!;
  t.equal(mux.proc.exitCode, null, 'alive');
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fds back to baseline');
});
