// A real WireGuard handshake through sni-mux's listen_udp: two wireguard-go peers (Debian's userspace
// WireGuard, a tun device each) with the client's endpoint set to the mux, next to an OpenVPN route on
// the same UDP port. wireguard-go binds every address, so the peers and the mux run in a network
// namespace this test creates, where loopback is the only interface.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { muxConfig, route, table } from '../helpers/config.js';
import { startMux } from '../helpers/mux.js';
import { missing, program, run, startDaemon, tempDir } from '../helpers/programs.js';

const ns = `snimux-wg-${process.pid}`;

async function netnsWorks(): Promise<boolean> {
  const r = await run(program('ip'), ['netns', 'add', ns]);
  if (r.code !== 0) return false;
  await run(program('ip'), ['netns', 'del', ns]);
  return true;
}
const skip =
  missing('wireguard-go', 'wg', 'ip') ||
  (existsSync('/dev/net/tun') ? false : '/dev/net/tun is missing: wireguard-go needs a tun device') ||
  ((await netnsWorks()) ? false : '`ip netns add` is not allowed here (needs CAP_SYS_ADMIN)');

/** A WireGuard key pair in wg(8)'s base64 form, the private key in a file as `wg set` wants it. */
function keyPair(dir: string, name: string): { keyFile: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const b64 = (url: string | undefined): string => Buffer.from(url!, 'base64url').toString('base64');
  const keyFile = join(dir, `${name}.key`);
  writeFileSync(keyFile, `${b64(privateKey.export({ format: 'jwk' }).d)}\n`, { mode: 0o600 });
  return { keyFile, publicKey: b64(publicKey.export({ format: 'jwk' }).x) };
}

/** Runs a command inside the namespace; a failure fails the test with its stderr. */
async function inNs(t: Test, args: string[]): Promise<string> {
  const r = await run(program('ip'), ['netns', 'exec', ns, ...args]);
  t.equal(r.code, 0, [args.join(' '), r.stderr.trim()].filter(Boolean).join(': '));
  return r.text;
}

/** A wireguard-go interface in the namespace, in the foreground, logging each handshake step. */
function wireguard(t: Test, iface: string) {
  return startDaemon(t, program('ip'), ['netns', 'exec', ns, program('wireguard-go'), '-f', iface], {
    env: { ...process.env, LOG_LEVEL: 'verbose' },
    ready: /UAPI listener started/,
  });
}

t.test(
  'a wireguard-go client completes its handshake with a wireguard-go server through sni-mux',
  { skip },
  async (t) => {
    const ip = program('ip');
    t.equal((await run(ip, ['netns', 'add', ns])).code, 0, 'network namespace created');
    t.teardown(async () => {
      await run(ip, ['netns', 'del', ns]);
    });
    await inNs(t, ['ip', 'link', 'set', 'lo', 'up']);
    const dir = tempDir(t, 'wireguard');
    const server = keyPair(dir, 'server');
    const client = keyPair(dir, 'client');
    // Interface names are at most 15 characters; the UAPI sockets in /run/wireguard are shared by all
    // namespaces, so the names carry the pid.
    const [sIf, cIf] = [`wgs${process.pid}`, `wgc${process.pid}`];
    const wgServer = await wireguard(t, sIf);
    const wgClient = await wireguard(t, cIf);
    // Ports are free in a namespace of our own.
    await inNs(t, ['wg', 'set', sIf, 'listen-port', '51820', 'private-key', server.keyFile]);
    await inNs(t, ['wg', 'set', sIf, 'peer', client.publicKey, 'allowed-ips', '10.99.0.2/32']);
    await inNs(t, ['ip', 'link', 'set', sIf, 'up']);

    const mux = await startMux(
      t,
      muxConfig(
        'listen_udp = ["127.0.0.1:0"]',
        table('timeouts', { drain: '1s' }),
        route('vpn-udp', 1194, { protocol: 'openvpn', transport: 'udp' }),
        route('wg', 51820, { protocol: 'wireguard' }),
      ),
      [],
      ['ip', 'netns', 'exec', ns],
    );
    const endpoint = `127.0.0.1:${mux.udpPorts[0]}`;
    await inNs(t, ['wg', 'set', cIf, 'listen-port', '51821', 'private-key', client.keyFile]);
    // A persistent keepalive makes the client handshake at once, then send its first data packet.
    await inNs(t, [
      'wg',
      'set',
      cIf,
      'peer',
      server.publicKey,
      'allowed-ips',
      '10.99.0.1/32',
      'endpoint',
      endpoint,
      'persistent-keepalive',
      '25',
    ]);
    await inNs(t, ['ip', 'link', 'set', cIf, 'up']);

    await wgServer.waitFor(/Received handshake initiation/);
    await wgClient.waitFor(/Received handshake response/);
    t.pass('the handshake completed: initiation and response went through the mux');
    await wgServer.waitFor(/Receiving keepalive packet/);
    t.pass("the client's first data packet of the session reached the server");

    const handshakes = await inNs(t, ['wg', 'show', cIf, 'latest-handshakes']);
    t.match(handshakes, new RegExp(`^${server.publicKey.replace(/[+/]/g, '\\$&')}\\t[1-9]\\d*\\n$`));
    // The server saw the client at the mux's backend socket, not at the client's own port 51821.
    const seen = (await inNs(t, ['wg', 'show', sIf, 'endpoints'])).trim().split('\t')[1];
    t.match(seen, /^127\.0\.0\.1:\d+$/);
    t.not(seen, '127.0.0.1:51821', 'the server answered the mux, which relayed to the client');

    t.equal(mux.proc.exitCode, null, 'the mux is alive');
    t.equal(await mux.stop(), 0, 'the mux stops cleanly');
    t.match(
      mux.logs.find((l) => l.msg === 'udp flow closed'),
      { transport: 'udp', route: 'wg', protocol: 'wireguard', client_port: 51821 },
      'one flow, on the WireGuard route, logged when it ends',
    );
  },
);
