// OpenSSH through a real sni-mux: the ssh client reaches a real sshd with key auth, by protocol and by on_timeout.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  connectionLine,
  fdCount,
  fdsBackTo,
  type MuxProcess,
  nextConnectionLine,
  startMux,
} from '../helpers/mux.js';
import {
  type Daemon,
  freePort,
  hasIpv6Loopback,
  missing,
  program,
  run,
  startDaemon,
  tempDir,
} from '../helpers/programs.js';

/** A session that ran its command ends with a FIN from either side: ssh and sshd both close. */
const CLEAN_END = /^(client|backend)_closed$/;

const skip = missing('sshd', 'ssh', 'ssh-keygen');
const user = userInfo().username;

interface Env {
  sshd: Daemon;
  /** Routes ssh by protocol; also listens on [::1] when the box has IPv6 loopback. */
  mux: MuxProcess;
  ipv6: boolean;
  /** Routes ssh with on_timeout = true, as sslh users do. */
  timeoutMux: MuxProcess;
  clientKey: string;
  baseline: number;
}

async function startSshd(dir: string): Promise<Daemon> {
  const keygen = program('ssh-keygen');
  for (const k of ['host_key', 'client_key']) {
    const r = await run(keygen, [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      `sni-mux-test-${k}`,
      '-f',
      join(dir, k),
    ]);
    if (r.code !== 0) throw new Error(`ssh-keygen ${k} failed: ${r.stderr}`);
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  // As root, sshd insists on its privilege separation directory (Debian's init script makes it).
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'PrintMotd no',
      'LogLevel INFO',
      '',
    ].join('\n'),
  );
  // sshd re-executes itself, so it needs its absolute path; -D foreground, -e logs to stderr.
  return startDaemon(t, program('sshd'), ['-D', '-e', '-f', config], {
    ready: /Server listening on 127\.0\.0\.1 port/,
  });
}

async function setup(): Promise<Env> {
  const dir = tempDir(t, 'ssh');
  const [sshd, ipv6] = await Promise.all([startSshd(dir), hasIpv6Loopback()]);
  const backend = (sshd.output.match(/Server listening on 127\.0\.0\.1 port (\d+)/) ?? [])[1];
  const listen = ipv6 ? '["127.0.0.1:0", "[::1]:0"]' : '["127.0.0.1:0"]';
  const [mux, timeoutMux] = await Promise.all([
    startMux(
      t,
      `listen = ${listen}
[[route]]
name = "ssh"
protocol = "ssh"
backend = "127.0.0.1:${backend}"
`,
    ),
    startMux(
      t,
      `listen = ["127.0.0.1:0"]
[timeouts]
detect = "300ms"
[[route]]
name = "ssh"
protocol = "ssh"
on_timeout = true
backend = "127.0.0.1:${backend}"
`,
    ),
  ]);
  return {
    sshd,
    mux,
    ipv6,
    timeoutMux,
    clientKey: join(dir, 'client_key'),
    baseline: await fdCount(mux.pid),
  };
}

const env = skip ? undefined : await setup();

/** `ssh` as a user would script it: key auth, no prompts, no known_hosts, no ~/.ssh/config. */
function ssh(port: number, command: string, opts: { input?: Buffer; host?: string } = {}) {
  const e = env!;
  return run(
    program('ssh'),
    [
      '-F',
      '/dev/null',
      '-p',
      String(port),
      '-i',
      e.clientKey,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      `${user}@${opts.host ?? '127.0.0.1'}`,
      command,
    ],
    { input: opts.input },
  );
}

t.test(
  'ssh runs a command on a real sshd through the mux, with key auth as the current user',
  { skip },
  async (t) => {
    const { mux, sshd } = env!;
    const mark = sshd.output.length;
    const r = await ssh(mux.port, 'echo hello-through-mux');
    t.equal(r.stderr, '', 'no ssh errors');
    t.equal(r.text, 'hello-through-mux\n');
    t.equal(r.code, 0);
    await sshd.waitFor(new RegExp(`Accepted publickey for ${user} from 127\\.0\\.0\\.1`), mark);
    t.match(await nextConnectionLine(mux, (l) => l.route === 'ssh'), {
      route: 'ssh',
      protocol: 'ssh',
      // After the command both ends close: whichever FIN reaches the mux first names the end.
      end: CLEAN_END,
    });
  },
);

t.test('the remote exit status comes back through the mux', { skip }, async (t) => {
  const { mux } = env!;
  const r = await ssh(mux.port, 'exit 7');
  t.equal(r.code, 7);
  t.match(await nextConnectionLine(mux, (l) => l.route === 'ssh'), { protocol: 'ssh' });
});

t.test('1 MiB through `cat` on the server comes back byte for byte', { skip }, async (t) => {
  const { mux } = env!;
  const sent = randomBytes(1 << 20);
  const r = await ssh(mux.port, 'cat', { input: sent });
  t.equal(r.code, 0, 'exits 0', { stderr: r.stderr });
  t.equal(r.stdout.length, sent.length);
  t.ok(r.stdout.equals(sent), 'identical bytes');
  const line = await nextConnectionLine(mux, (l) => l.route === 'ssh');
  t.ok((line.bytes_client_to_backend as number) > sent.length, 'the upload was relayed (plus SSH framing)');
  t.ok((line.bytes_backend_to_client as number) > sent.length, 'the echo was relayed (plus SSH framing)');
});

t.test('four ssh sessions at once each get their own answer', { skip }, async (t) => {
  const { mux } = env!;
  const results = await Promise.all(Array.from({ length: 4 }, (_, i) => ssh(mux.port, `echo session-${i}`)));
  t.same(
    results.map((r) => r.text),
    Array.from({ length: 4 }, (_, i) => `session-${i}\n`),
  );
  t.same(
    results.map((r) => r.code),
    Array(4).fill(0),
  );
  for (let i = 0; i < 4; i++) await nextConnectionLine(mux, (l) => l.route === 'ssh');
});

const skipIpv6 = skip || (env?.ipv6 ? false : 'no IPv6 on loopback here ([::1] cannot be bound)');

t.test('ssh over IPv6 to a [::1] listener reaches the IPv4 sshd', { skip: skipIpv6 }, async (t) => {
  const { mux } = env!;
  const r = await ssh(mux.ports[1]!, 'echo via-ipv6', { host: '::1' });
  t.equal(r.text, 'via-ipv6\n', 'the command ran', { stderr: r.stderr });
  t.match(await nextConnectionLine(mux, (l) => l.route === 'ssh'), { client: '::1', protocol: 'ssh' });
});

t.test('with on_timeout = true, ssh is still recognised by its banner', { skip }, async (t) => {
  const { timeoutMux } = env!;
  const r = await ssh(timeoutMux.port, 'echo hello-through-mux');
  t.equal(r.text, 'hello-through-mux\n', 'the command ran', { stderr: r.stderr });
  t.match(await nextConnectionLine(timeoutMux, (l) => l.route === 'ssh'), {
    route: 'ssh',
    protocol: 'ssh',
    end: CLEAN_END,
  });
});

t.test(
  'with on_timeout = true, a client that waits for the server gets sshd’s banner',
  { skip },
  async (t) => {
    const { timeoutMux } = env!;
    const { banner, localPort } = await new Promise<{ banner: string; localPort: number }>(
      (resolve, reject) => {
        const s = net.connect(timeoutMux.port, '127.0.0.1');
        let got = '';
        s.setEncoding('utf8');
        s.on('error', reject);
        s.on('data', (d: string) => {
          got += d;
          if (!got.includes('\n')) return;
          resolve({ banner: got, localPort: s.localPort! });
          s.destroy();
        });
      },
    );
    t.match(banner, /^SSH-2\.0-OpenSSH_/);
    const line = await connectionLine(timeoutMux, localPort);
    t.equal(line.route, 'ssh');
    t.equal(line.protocol, undefined, 'routed by the timeout, nothing was detected');
  },
);

t.test('afterwards the mux is alive, with as many open fds as at start', { skip }, async (t) => {
  const { mux, baseline } = env!;
  t.equal(mux.proc.exitCode, null, 'alive');
  t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fds back to baseline');
});
