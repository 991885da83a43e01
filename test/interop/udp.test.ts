// Real UDP peers through sni-mux's listen_udp: ngtcp2 HTTP/3 clients reach two QUIC servers by SNI, and a
// real OpenVPN client completes its handshake over UDP.
//
// ngtcp2's GnuTLS examples (Debian ngtcp2-client/ngtcp2-server: gtlsclient, gtlsserver) do a full QUIC
// handshake and an HTTP/3 GET; the file each downloads says which server answered. OpenVPN runs with
// `--dev null` as in openvpn.test.ts, over `proto udp`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type MuxProcess, startMux } from '../helpers/mux.js';
import { makePki, OPENVPN_COMMON, openvpnServerArgs } from '../helpers/openvpn-pki.js';
import { freeUdpPort, missing, program, run, startDaemon, tempDir } from '../helpers/programs.js';
import { certFiles } from '../helpers/servers.js';

/**
 * ngtcp2 0.12's GnuTLS client sends its HOST argument as SNI ("localhost" for an address) and ignores
 * --sni, so the names must resolve to loopback: a private /etc/hosts in a user and mount namespace.
 */
async function namespacesWork(): Promise<boolean> {
  const unshare = missing('unshare') ? undefined : program('unshare');
  if (unshare === undefined) return false;
  const r = await run(unshare, ['-rm', 'true'], { timeoutMs: 10_000 });
  return r.code === 0;
}
const quicSkip =
  missing('gtlsclient', 'gtlsserver', 'openssl') ||
  ((await namespacesWork()) ? false : 'unshare -rm (user and mount namespaces) is not allowed here');
const openvpnSkip = missing('openvpn', 'openssl');

t.test(
  'ngtcp2 HTTP/3 clients reach two QUIC servers by SNI through one UDP port',
  { skip: quicSkip },
  async (t) => {
    const dir = tempDir(t, 'quic');
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost a.example b.example\n');
    const ports: number[] = [];
    for (const name of ['a', 'b']) {
      mkdirSync(join(dir, name));
      mkdirSync(join(dir, `dl-${name}`));
      const { keyFile, certFile } = certFiles(`${name}.example`);
      writeFileSync(join(dir, name, 'index.html'), `served by ${name}\n`);
      const port = await freeUdpPort();
      ports.push(port);
      await startDaemon(
        t,
        program('gtlsserver'),
        ['-d', join(dir, name), '127.0.0.1', String(port), keyFile, certFile],
        {
          cwd: dir,
          ready: /Using document root/,
        },
      );
    }
    const mux: MuxProcess = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
listen_udp = ["127.0.0.1:0"]
[timeouts]
udp_idle = "2s"
[[route]]
name = "h3-a"
protocol = "quic"
sni = "a.example"
backend = "127.0.0.1:${ports[0]}"
[[route]]
name = "h3-b"
protocol = "quic"
sni = "b.example"
backend = "127.0.0.1:${ports[1]}"
`,
    );
    const udpPort = mux.udpPorts[0]!;
    // QUIC v1 only: ngtcp2 0.12 knows v2 as a draft version; v2 is covered by the RFC 9369 vectors.
    for (const [name, version] of [
      ['a', 'v1'],
      ['b', 'v1'],
    ] as const) {
      const dl = join(dir, `dl-${name}`);
      const r = await run(
        program('unshare'),
        [
          '-rm',
          'sh',
          '-c',
          `mount --bind ${join(dir, 'hosts')} /etc/hosts && exec "$0" "$@"`,
          program('gtlsclient'),
          '-q',
          '--exit-on-all-streams-close',
          `--download=${dl}`,
          `--version=${version}`,
          `${name}.example`,
          String(udpPort),
          `https://${name}.example/index.html`,
        ],
        { cwd: dir, timeoutMs: 30_000 },
      );
      // gtlsclient exits 0 even when its handshake times out: the downloaded file is the verdict.
      t.equal(r.code, 0, `gtlsclient ${name}.example (${version}) exited: ${r.stderr.slice(-300)}`);
      t.equal(
        readFileSync(join(dl, 'index.html'), 'utf8'),
        `served by ${name}\n`,
        `${name}.example answered (${version})`,
      );
    }
    const lines = await Promise.all(
      ['h3-a', 'h3-b'].map((route) =>
        mux.waitForLog((l) => l.msg === 'udp flow closed' && l.route === route),
      ),
    );
    t.match(lines[0], { protocol: 'quic', sni: 'a.example', alpn: ['h3'], end: 'idle_timeout' });
    t.match(lines[1], { protocol: 'quic', sni: 'b.example', end: 'idle_timeout' });
    t.ok((lines[0]!.datagrams_backend_to_client as number) > 1, 'the handshake and the response came back');
    t.equal(mux.proc.exitCode, null, 'the mux is alive');
  },
);

t.test(
  'a real openvpn client completes its handshake over UDP through sni-mux',
  { skip: openvpnSkip },
  async (t) => {
    const dir = tempDir(t, 'openvpn-udp');
    await makePki(dir);
    const common = [...OPENVPN_COMMON, '--proto', 'udp'];
    const port = await freeUdpPort();
    const server = await startDaemon(
      t,
      program('openvpn'),
      [...common, ...openvpnServerArgs(port), '--tls-auth', 'ta.key', '0'],
      { cwd: dir, ready: /link local \(bound\)/ },
    );
    const mux = await startMux(
      t,
      `listen = ["127.0.0.1:0"]
listen_udp = ["127.0.0.1:0"]
[[route]]
name = "vpn-udp"
protocol = "openvpn"
transport = "udp"
backend = "127.0.0.1:${port}"
`,
    );
    const client = await startDaemon(
      t,
      program('openvpn'),
      [
        ...common,
        '--nobind',
        '--remote',
        '127.0.0.1',
        String(mux.udpPorts[0]),
        '--tls-client',
        '--cert',
        'client.crt',
        '--key',
        'client.key',
        '--remote-cert-tls',
        'server',
        '--tls-auth',
        'ta.key',
        '1',
      ],
      { cwd: dir, ready: /Initialization Sequence Completed/ },
    );
    t.match(client.output, /\[server\] Peer Connection Initiated/);
    await server.waitFor(/\[client\] Peer Connection Initiated/);
    await client.stop();
    await server.stop();
    const samples = mux.logs.filter((l) => l.reject !== undefined);
    t.same(samples, [], 'no datagram was dropped');
    t.equal(mux.proc.exitCode, null, 'the mux is alive');
  },
);
