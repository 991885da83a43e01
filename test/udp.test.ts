// UDP flows through a real sni-mux: routing by probe and SNI, held datagrams, limits (the rest: udp-lifecycle.test.ts).

import { readFileSync } from 'node:fs';
import t from 'tap';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { startMux } from './helpers/mux.js';
import { splitHello, udpBackend, udpClient, udpMuxConfig, wgInitiation } from './helpers/udp.js';

const fixture = (dir: string, name: string): Buffer =>
  readFileSync(new URL(`./fixtures/${dir}/${name}`, import.meta.url));

const openvpnReset = fixture('first-bytes', 'openvpn-tcp-tls-auth.bin').subarray(2);
const rfcInitial = fixture('quic', 'rfc9001-a2-client-initial.bin');

t.test('each UDP protocol reaches its own backend byte for byte, and replies come back', async (t) => {
  const [wg, ovpn, h3a, h3b, rest] = await Promise.all(
    ['wg:', 'ovpn:', 'a:', 'b:', 'rest:'].map((tag) => udpBackend(t, tag)),
  );
  const mux = await startMux(
    t,
    udpMuxConfig(`
[[route]]
name = "h3-a"
protocol = "quic"
sni = "example.com"
backend = "127.0.0.1:${h3a!.port}"
[[route]]
name = "h3-b"
sni = "b.example"
transport = "udp"
backend = "127.0.0.1:${h3b!.port}"
[[route]]
name = "wg"
protocol = "wireguard"
backend = "127.0.0.1:${wg!.port}"
[[route]]
name = "vpn-udp"
protocol = "openvpn"
transport = "udp"
backend = "127.0.0.1:${ovpn!.port}"
[[route]]
name = "udp-rest"
transport = "udp"
backend = "127.0.0.1:${rest!.port}"
[[route]]
name = "tcp"
backend = "127.0.0.1:1"
`),
  );
  const port = mux.udpPorts[0]!;
  const cases: [string, Buffer[], typeof wg][] = [
    ['wireguard', [wgInitiation()], wg],
    ['openvpn', [openvpnReset], ovpn],
    ['quic example.com', [rfcInitial], h3a],
    ['quic b.example split over two Initials, second first', splitHello('b.example').reverse(), h3b],
    ['junk to the catch-all', [Buffer.from('hello, anyone?')], rest],
  ];
  for (const [name, datagrams, backend] of cases) {
    const c = await udpClient(t, port);
    for (const d of datagrams) c.send(d);
    await backend!.until(datagrams.length);
    t.same(
      backend!.received.slice(-datagrams.length).map((r) => r.data.toString('hex')),
      datagrams.map((d) => d.toString('hex')),
      `${name}: the backend got the datagrams, in order, unchanged`,
    );
    const reply = await c.reply();
    t.same(reply, Buffer.concat([Buffer.from(backend!.tag), datagrams[0]!]), `${name}: the reply came back`);
    for (let i = 1; i < datagrams.length; i++) await c.reply();
    // Later datagrams of the flow go straight through, from the same backend socket.
    const seen = backend!.received.length;
    c.send(Buffer.from('next'));
    await backend!.until(seen + 1);
    t.equal(backend!.received.at(-1)!.data.toString(), 'next');
    t.equal(backend!.received.at(-1)!.port, backend!.received.at(-2)!.port, 'one backend socket per flow');
    await c.reply();
    c.close();
  }
  const samples = await scrape(adminPort(mux));
  t.equal(value(samples, 'snimux_udp_flows_total', { route: 'wg', protocol: 'wireguard' }), 1);
  t.equal(value(samples, 'snimux_udp_flows_total', { route: 'h3-b', protocol: 'quic' }), 1);
  t.equal(value(samples, 'snimux_udp_flows_total', { route: 'udp-rest', protocol: 'unknown' }), 1);
  t.equal(value(samples, 'snimux_udp_flows_active', { route: 'wg' }), 1);
  t.equal(value(samples, 'snimux_udp_datagrams_total', { route: 'h3-b', direction: 'client_to_backend' }), 3);
  t.equal(value(samples, 'snimux_udp_datagrams_total', { route: 'h3-b', direction: 'backend_to_client' }), 3);
  // The status page lists the UDP listener beside the TCP one.
  const status = (await (await fetch(`http://127.0.0.1:${adminPort(mux)}/status`)).json()) as {
    listeners: { listen: string; transport: string; port: number }[];
  };
  t.same(
    status.listeners.map((l) => [l.transport, l.port]),
    [
      ['tcp', mux.port],
      ['udp', port],
    ],
  );
});

t.test(
  'datagrams of an undecided flow are held in order; unroutable and invalid ones are dropped and counted',
  async (t) => {
    const a = await udpBackend(t, 'a:');
    const mux = await startMux(
      t,
      udpMuxConfig(`
[[route]]
name = "h3"
sni = "a.example"
transport = "udp"
backend = "127.0.0.1:${a.port}"
`),
    );
    const port = mux.udpPorts[0]!;
    // No route for this name: the flow is dropped once decided.
    const other = await udpClient(t, port);
    for (const d of splitHello('other.example')) other.send(d);
    // Junk and a corrupted Initial: no route, and invalid.
    const junk = await udpClient(t, port);
    junk.send(Buffer.from('junk'));
    const bad = Buffer.from(rfcInitial);
    bad[600]! ^= 1;
    junk.send(bad);
    await mux.waitForLog((l) => l.reject === 'invalid');
    const samples = await scrape(adminPort(mux));
    t.equal(
      value(samples, 'snimux_udp_rejected_datagrams_total', { reason: 'no_route' }),
      3,
      'two held datagrams and the junk',
    );
    t.equal(value(samples, 'snimux_udp_rejected_datagrams_total', { reason: 'invalid' }), 1);
    t.equal(a.received.length, 0);
    // The mux still serves.
    const ok = await udpClient(t, port);
    const hello = splitHello('a.example');
    for (const d of hello) ok.send(d);
    await a.until(2);
    t.same(
      a.received.map((r) => r.data),
      hello,
    );
  },
);

t.test('max_udp_flows and per-source limits drop new flows, live ones go on', async (t) => {
  const wg = await udpBackend(t, 'wg:');
  const mux = await startMux(
    t,
    udpMuxConfig(
      `[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:${wg.port}"\n`,
      '[limits]\nmax_udp_flows = 2\n',
    ),
  );
  const port = mux.udpPorts[0]!;
  const first = await udpClient(t, port);
  const second = await udpClient(t, port);
  first.send(wgInitiation());
  second.send(wgInitiation());
  await wg.until(2);
  const third = await udpClient(t, port);
  third.send(wgInitiation());
  await mux.waitForLog((l) => l.reject === 'flow_limit');
  first.send(Buffer.from('still here'));
  await wg.until(3);
  t.equal(wg.received[2]!.data.toString(), 'still here');
  const samples = await scrape(adminPort(mux));
  t.equal(value(samples, 'snimux_udp_rejected_datagrams_total', { reason: 'flow_limit' }), 1);
  t.equal(value(samples, 'snimux_udp_flows_active', { route: 'wg' }), 2);
});
