// The datagram probe table: WireGuard and OpenVPN-over-UDP probes, and detectDatagrams() over all three.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import t from 'tap';
import { DATAGRAM_PROBES, detectDatagrams } from '../lib/detect/datagram.js';
import { probeOpenvpnUdp } from '../lib/detect/probes/openvpn-udp.js';
import { probeWireguard } from '../lib/detect/probes/wireguard.js';
import { UDP_ONLY_PROTOCOLS } from '../lib/detect/types.js';

const fixture = (dir: string, name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${dir}/${name}`, import.meta.url)));

/** A handshake initiation as wg(8) sends it: type 1, reserved zeros, then 144 bytes of keys and MACs. */
export function wireguardInitiation(): Uint8Array {
  const d = new Uint8Array(randomBytes(148));
  d.set([1, 0, 0, 0], 0);
  return d;
}

/** An OpenVPN TCP capture without its 2-byte length prefix is the same packet as sent over UDP. */
const openvpnUdp = [
  'openvpn-tcp-plain.bin',
  'openvpn-tcp-tls-auth.bin',
  'openvpn-tcp-tls-crypt.bin',
  'openvpn-tcp-tls-crypt-v2.bin',
].map((f) => fixture('first-bytes', f).subarray(2));

t.test('wireguard: exactly a handshake initiation matches', async (t) => {
  const init = wireguardInitiation();
  t.equal(probeWireguard(init).kind, 'match');
  t.equal(probeWireguard(init.subarray(0, 147)).kind, 'no-match', 'one byte short');
  const response = init.slice(0, 92);
  response[0] = 2;
  t.equal(probeWireguard(response).kind, 'no-match', 'a handshake response does not start a flow');
  const data = new Uint8Array(148);
  data[0] = 4;
  t.equal(probeWireguard(data).kind, 'no-match', 'a data message does not start a flow');
  const reserved = init.slice();
  reserved[2] = 1;
  t.equal(probeWireguard(reserved).kind, 'no-match', 'reserved bytes must be zero');
});

t.test('openvpn over UDP: real first packets match without a length prefix', async (t) => {
  for (const d of openvpnUdp)
    t.same(probeOpenvpnUdp(d), { kind: 'match', detection: { protocol: 'openvpn' } });
  t.equal(probeOpenvpnUdp(openvpnUdp[0]!.subarray(0, 10)).kind, 'no-match', 'a cut packet never grows');
  t.equal(probeOpenvpnUdp(new Uint8Array(0)).kind, 'no-match');
});

t.test('detectDatagrams routes each protocol by its first datagrams', async (t) => {
  t.match(detectDatagrams([wireguardInitiation()]), { kind: 'match', detection: { protocol: 'wireguard' } });
  t.match(detectDatagrams([openvpnUdp[1]!]), { kind: 'match', detection: { protocol: 'openvpn' } });
  t.match(detectDatagrams([fixture('quic', 'rfc9001-a2-client-initial.bin')]), {
    kind: 'match',
    detection: { protocol: 'quic', sni: 'example.com' },
  });
  t.match(detectDatagrams([Uint8Array.from(Buffer.from('hello'))]), { kind: 'no-match' });
  t.equal(detectDatagrams([]).kind, 'need-more');
});

t.test('the datagram table: one row per UDP protocol, disjoint signatures, frozen', async (t) => {
  t.same(
    DATAGRAM_PROBES.map((r) => r.protocol),
    ['quic', 'wireguard', 'openvpn'],
  );
  for (const p of UDP_ONLY_PROTOCOLS)
    t.ok(
      DATAGRAM_PROBES.some((r) => r.protocol === p),
      `${p} has a probe`,
    );
  t.ok(Object.isFrozen(DATAGRAM_PROBES));
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 1300 }),
      (d) => DATAGRAM_PROBES.filter((r) => r.probe([d]).kind === 'match').length <= 1,
    ),
    { numRuns: 10_000 },
  );
});
