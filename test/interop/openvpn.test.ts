// A real OpenVPN TCP client completes its TLS handshake with a real OpenVPN server through sni-mux, in each wrapping.
//
// `--dev null` (OpenVPN's null device, made for its own loopback tests) runs a point-to-point
// TLS tunnel with no tun device, so no root, no /dev/net/tun and no interface. The handshake is
// the whole of what sni-mux must get right: the client's first packet has to be recognised, and
// every control-channel byte relayed both ways, for "Peer Connection Initiated" to be logged.
import t from 'tap';
import { fdCount, fdsBackTo, type MuxProcess, nextConnectionLine, startMux } from '../helpers/mux.js';
import { makePki, OPENVPN_COMMON, openvpnServerArgs } from '../helpers/openvpn-pki.js';
import { type Daemon, freePorts, missing, program, startDaemon, tempDir } from '../helpers/programs.js';

const skip = missing('openvpn', 'openssl');

/** How the control channel is wrapped; each makes a different first packet for the probe. */
const WRAPPINGS = {
  /** P_CONTROL_HARD_RESET_CLIENT_V2 in the clear. */
  plain: { server: [], client: [] },
  /** The same reset with an HMAC (SHA1 by default) and replay packet id before the reliability header. */
  'tls-auth': { server: ['--tls-auth', 'ta.key', '0'], client: ['--tls-auth', 'ta.key', '1'] },
  /** Encrypted reliability header: only the packet id is in the clear. */
  'tls-crypt': { server: ['--tls-crypt', 'ta.key'], client: ['--tls-crypt', 'ta.key'] },
  /** P_CONTROL_HARD_RESET_CLIENT_V3, ending with the client's wrapped key (WKc). */
  'tls-crypt-v2': {
    server: ['--tls-crypt-v2', 'v2-server.key'],
    client: ['--tls-crypt-v2', 'v2-client.key'],
  },
} as const satisfies Record<string, { server: readonly string[]; client: readonly string[] }>;
type Wrapping = keyof typeof WRAPPINGS;

interface Pair {
  server: Daemon;
  port: number;
  mux: MuxProcess;
  baseline: number;
}

async function startPair(dir: string, wrapping: Wrapping, port: number): Promise<Pair> {
  const server = await startDaemon(
    t,
    program('openvpn'),
    [...OPENVPN_COMMON, '--proto', 'tcp-server', ...openvpnServerArgs(port), ...WRAPPINGS[wrapping].server],
    { cwd: dir, ready: /Listening for incoming TCP connection on/ },
  );
  const mux = await startMux(
    t,
    `listen = ["127.0.0.1:0"]
[[route]]
name = "openvpn"
protocol = "openvpn"
backend = "127.0.0.1:${port}"
`,
  );
  return { server, port, mux, baseline: await fdCount(mux.pid) };
}

async function setup(): Promise<{ dir: string; pairs: Record<Wrapping, Pair> }> {
  const dir = tempDir(t, 'openvpn');
  await makePki(dir);
  const names = Object.keys(WRAPPINGS) as Wrapping[];
  const ports = await freePorts(names.length);
  const pairs = await Promise.all(names.map((w, i) => startPair(dir, w, ports[i]!)));
  return { dir, pairs: Object.fromEntries(names.map((w, i) => [w, pairs[i]!])) as Record<Wrapping, Pair> };
}

const env = skip ? undefined : await setup();

// Each handshake waits on OpenVPN's one-second timers: run the four side by side.
t.jobs = 4;

for (const wrapping of Object.keys(WRAPPINGS) as Wrapping[]) {
  t.test(
    `an openvpn client (${wrapping}) completes its handshake with the openvpn server`,
    { skip },
    async (t) => {
      const { dir, pairs } = env!;
      const { server, port, mux, baseline } = pairs[wrapping];
      const mark = server.output.length;
      const client = await startDaemon(
        t,
        program('openvpn'),
        [
          ...OPENVPN_COMMON,
          '--proto',
          'tcp-client',
          '--remote',
          '127.0.0.1',
          String(mux.port),
          '--tls-client',
          '--cert',
          'client.crt',
          '--key',
          'client.key',
          '--remote-cert-tls',
          'server',
          // Fail instead of retrying forever, so a broken relay ends the test with the client's log.
          '--connect-retry-max',
          '1',
          ...WRAPPINGS[wrapping].client,
        ],
        { cwd: dir, ready: /Initialization Sequence Completed/ },
      );
      t.match(client.output, /VERIFY OK: depth=0, CN=server/, 'the client verified the server certificate');
      t.match(client.output, /\[server\] Peer Connection Initiated/);
      await server.waitFor(/VERIFY OK: depth=0, CN=client/, mark);
      await server.waitFor(/\[client\] Peer Connection Initiated/, mark);
      await server.waitFor(/Initialization Sequence Completed/, mark);

      await client.stop();
      const line = await nextConnectionLine(mux);
      t.match(line, { route: 'openvpn', protocol: 'openvpn', backend: `127.0.0.1:${port}` });
      t.ok((line.bytes_client_to_backend as number) > 0, 'bytes relayed to the server');
      t.ok((line.bytes_backend_to_client as number) > 0, 'bytes relayed to the client');
      t.equal(mux.proc.exitCode, null, 'the mux is alive');
      t.equal(await fdsBackTo(mux.pid, baseline), baseline, 'fds back to baseline');
    },
  );
}
