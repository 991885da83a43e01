// UDP flows through a real sni-mux over time: idle timeout, reload, drain, and a flood (split from udp.test.ts
// to stay within tap's per-file timeout on a loaded box).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { adminPort, scrape, value } from './helpers/metrics.js';
import { rssBytes, startMux } from './helpers/mux.js';
import { rewriteAndReload } from './helpers/ops.js';
import { freeUdpPort } from './helpers/programs.js';
import { splitHello, udpBackend, udpClient, udpMuxConfig, wgInitiation } from './helpers/udp.js';

const _fixture = (dir: string, name: string): Buffer =>
  readFileSync(new URL(`./fixtures/${dir}/${name}`, import.meta.url));

t.test('a flow idle for udp_idle is forgotten; the next datagram starts a new flow', async (t) => {
  const wg = await udpBackend(t, 'wg:');
  const mux = await startMux(
    t,
    udpMuxConfig(
      `[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:${wg.port}"\n`,
      '[timeouts]\nudp_idle = "300ms"\n',
    ),
  );
  const c = await udpClient(t, mux.udpPorts[0]!);
  c.send(wgInitiation());
  await wg.until(1);
  await c.reply();
  const line = await mux.waitForLog((l) => l.msg === 'udp flow closed');
  t.match(line, {
    transport: 'udp',
    route: 'wg',
    protocol: 'wireguard',
    end: 'idle_timeout',
    client_port: c.port,
    datagrams_client_to_backend: 1,
    datagrams_backend_to_client: 1,
    bytes_client_to_backend: 148,
  });
  c.send(wgInitiation());
  await wg.until(2);
  t.not(wg.received[1]!.port, wg.received[0]!.port, 'a new flow has a new backend socket');
});

t.test('a reload keeps live flows on their backend; new flows take the new one', async (t) => {
  const [a, b] = await Promise.all([udpBackend(t, 'a:'), udpBackend(t, 'b:')]);
  const toml = (backend: number, port: number): string =>
    `listen = ["127.0.0.1:0"]\nlisten_udp = ["127.0.0.1:${port}"]\n[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:${backend}"\n`;
  const port = await freeUdpPort();
  const mux = await startMux(t, toml(a.port, port));
  const live = await udpClient(t, port);
  live.send(wgInitiation());
  await a.until(1);
  rewriteAndReload(mux, toml(b.port, port));
  await mux.waitForLog((l) => l.msg === 'config reloaded');
  live.send(Buffer.from('after reload'));
  await a.until(2);
  t.equal(a.received[1]!.data.toString(), 'after reload', 'the live flow stayed on its backend');
  const fresh = await udpClient(t, port);
  fresh.send(wgInitiation());
  await b.until(1);
  t.pass('a new flow went to the new backend');
});

t.test('drain: no new flows, live ones relay until they idle out, then the process exits', async (t) => {
  const wg = await udpBackend(t, 'wg:');
  const mux = await startMux(
    t,
    udpMuxConfig(
      `[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:${wg.port}"\n`,
      '[timeouts]\nudp_idle = "1s"\ndrain = "60s"\n',
    ),
  );
  const port = mux.udpPorts[0]!;
  const live = await udpClient(t, port);
  live.send(wgInitiation());
  await wg.until(1);
  mux.proc.kill('SIGTERM');
  await mux.waitForLog((l) => /drain|stopping|shutting/i.test(l.msg));
  live.send(Buffer.from('during drain'));
  await wg.until(2);
  t.equal(wg.received[1]!.data.toString(), 'during drain');
  const late = await udpClient(t, port);
  late.send(wgInitiation());
  await mux.waitForLog((l) => l.reject === 'shutdown');
  t.equal(await mux.exited, 0, 'exits once the flow idled out, long before drain');
  t.match(
    mux.logs.find((l) => l.msg === 'udp flow closed'),
    { end: 'idle_timeout' },
  );
});

t.test(
  'a flood of junk and of new flows past max_udp_flows leaves the process serving, memory bounded',
  async (t) => {
    const wg = await udpBackend(t, 'wg:');
    const mux = await startMux(
      t,
      udpMuxConfig(
        `[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:${wg.port}"\n[[route]]\nname = "h3"\nprotocol = "quic"\nbackend = "127.0.0.1:${wg.port}"\n`,
        '[limits]\nmax_udp_flows = 50\nmax_connections_per_source = 100000\n',
      ),
    );
    const port = mux.udpPorts[0]!;
    const before = await rssBytes(mux.pid);
    const clients = await Promise.all(Array.from({ length: 100 }, () => udpClient(t, port)));
    const half = splitHello('x.example')[0];
    // Bounded: 100 sources × 50 rounds of junk, unroutable Initials halves (held until undecided) and new flows.
    for (let round = 0; round < 50; round++) {
      for (const c of clients) {
        c.send(randomBytes(1 + (round % 1400)));
        c.send(half);
      }
      await new Promise((r) => setImmediate(r));
    }
    const extra = await Promise.all(Array.from({ length: 100 }, () => udpClient(t, port)));
    for (const c of extra) c.send(wgInitiation());
    await mux.waitForLog((l) => l.reject === 'flow_limit');
    const samples = await scrape(adminPort(mux));
    t.ok(
      (value(samples, 'snimux_udp_rejected_datagrams_total', { reason: 'flow_limit' }) ?? 0) > 0,
      'new flows past the limit were dropped',
    );
    const after = await rssBytes(mux.pid);
    t.ok(after - before < 64 * 1024 * 1024, `rss grew ${Math.round((after - before) / 1024)} KiB`);
    t.equal(mux.proc.exitCode, null, 'still running');
    const logLines = mux.logs.filter((l) => typeof l.reject === 'string').length;
    t.ok(logLines < 50, `refusals were logged ${logLines} times, not once per datagram`);
  },
);
