// UDP in the config: listen_udp, [timeouts] udp_idle, [limits] max_udp_flows, route transport, quic/wireguard.

import t from 'tap';
import { formatProblem, parseConfig } from '../lib/config/load.js';
import type { Config } from '../lib/config/types.js';

const FILE = '/etc/sni-mux/mux.toml';

function ok(t: { fail(message: string): void }, text: string): Config {
  const r = parseConfig(text, FILE);
  if (r.kind !== 'ok') {
    t.fail(r.errors.map(formatProblem).join('\n'));
    throw new Error('config did not parse');
  }
  return r.config;
}

function errors(text: string): string[] {
  const r = parseConfig(text, FILE);
  return r.kind === 'error' ? r.errors.map(formatProblem) : [];
}

function warnings(text: string): string[] {
  const r = parseConfig(text, FILE);
  return r.kind === 'ok' ? r.warnings.map(formatProblem) : [];
}

const HEAD = 'listen = ["127.0.0.1:443"]\nlisten_udp = ["127.0.0.1:443", "[::1]:443"]\n';

t.test("the issue's example parses into UDP routes", async (t) => {
  const c = ok(
    t,
    `${HEAD}
[timeouts]
udp_idle = "120s"

[limits]
max_udp_flows = 10000

[[route]]
name = "blog-h3"
protocol = "quic"
sni = ["blog.bjk.is"]
backend = "192.168.0.118:443"

[[route]]
name = "blog"
sni = ["blog.bjk.is"]
backend = "192.168.0.118:443"

[[route]]
name = "wireguard"
protocol = "wireguard"
backend = "192.168.0.130:51820"

[[route]]
name = "vpn-udp"
protocol = "openvpn"
transport = "udp"
backend = "192.168.0.130:1194"

[[route]]
name = "vpn"
protocol = "openvpn"
backend = "192.168.0.130:1194"

[[route]]
name = "udp-rest"
transport = "udp"
backend = "192.168.0.140:9999"
`,
  );
  t.same(
    c.listenUdp.map((e) => e.text),
    ['127.0.0.1:443', '[::1]:443'],
  );
  t.equal(c.timeouts.udpIdle, 120_000);
  t.equal(c.limits.maxUdpFlows, 10_000);
  t.same(
    c.routes.map((r) => [r.name, r.transport ?? 'tcp', r.protocol]),
    [
      ['blog-h3', 'udp', ['quic']],
      ['blog', 'tcp', ['tls']],
      ['wireguard', 'udp', ['wireguard']],
      ['vpn-udp', 'udp', ['openvpn']],
      ['vpn', 'tcp', ['openvpn']],
      ['udp-rest', 'udp', undefined],
    ],
  );
});

t.test('defaults: no UDP, udp_idle 120 s, 10000 flows', async (t) => {
  const c = ok(t, 'listen = ["127.0.0.1:443"]\n[[route]]\nname = "a"\nbackend = "127.0.0.1:1"\n');
  t.same(c.listenUdp, []);
  t.equal(c.timeouts.udpIdle, 120_000);
  t.equal(c.limits.maxUdpFlows, 10_000);
});

t.test('sni on a udp route implies quic', async (t) => {
  const c = ok(
    t,
    `${HEAD}[[route]]\nname = "h3"\ntransport = "udp"\nsni = "a.example"\nbackend = "127.0.0.1:1"\n`,
  );
  t.same(c.routes[0]!.protocol, ['quic']);
});

t.test('errors name the file, line and key, and say what to do', async (t) => {
  const cases: Array<[string, RegExp]> = [
    [
      `${HEAD}[[route]]\nname = "x"\ntransport = "sctp"\nbackend = "127.0.0.1:1"\n`,
      /mux\.toml:5:\d+: route\[1\]\.transport: expected "tcp" or "udp", got the string "sctp"/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\ntransport = "quic"\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.transport: .*write protocol = "quic"/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\nprotocol = ["quic", "tls"]\nbackend = "127.0.0.1:1"\n`,
      /mux\.toml:5:\d+: route\[1\]\.protocol: "quic" only runs over UDP and "tls" over TCP; split/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\nprotocol = "wireguard"\ntransport = "tcp"\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.transport: "wireguard" only runs over UDP; remove transport = "tcp"/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\nprotocol = "ssh"\ntransport = "udp"\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.protocol: "ssh" does not run over UDP here/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\ntransport = "udp"\nhost = "a.example"\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.host: host matches plain HTTP/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\ntransport = "udp"\non_timeout = true\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.on_timeout: a UDP flow starts with a datagram/,
    ],
    [
      `${HEAD}[[route]]\nname = "x"\nprotocol = "quic"\nproxy_protocol = "v2"\nbackend = "127.0.0.1:1"\n`,
      /route\[1\]\.proxy_protocol: PROXY headers are sent on TCP/,
    ],
    [
      `${HEAD}[timeouts]\nudp_idle = "0s"\n[[route]]\nname = "x"\nbackend = "127.0.0.1:1"\n`,
      /timeouts\.udp_idle/,
    ],
    [
      `${HEAD}[limits]\nmax_udp_flows = 0\n[[route]]\nname = "x"\nbackend = "127.0.0.1:1"\n`,
      /limits\.max_udp_flows/,
    ],
    [
      `listen_udp = 443\nlisten = ["127.0.0.1:1"]\n[[route]]\nname = "x"\nbackend = "127.0.0.1:1"\n`,
      /mux\.toml:1:\d+: listen_udp: 443 is only a port/,
    ],
    [
      `${HEAD}udp_listen = ["127.0.0.1:1"]\n[[route]]\nname = "x"\nbackend = "127.0.0.1:1"\n`,
      /udp_listen: unknown key; did you mean `listen_udp`\?/,
    ],
  ];
  for (const [text, want] of cases) {
    const errs = errors(text);
    t.ok(
      errs.some((e) => want.test(e)),
      `${want}\n  got: ${errs.join('\n  ')}`,
    );
  }
});

t.test(
  'warnings: UDP routes without listen_udp, listen_udp without UDP routes; shadowing per transport',
  async (t) => {
    t.match(
      warnings(
        'listen = ["127.0.0.1:443"]\n[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:1"\n',
      ).join('\n'),
      /"wg" is a UDP route but there is no listen_udp/,
    );
    t.match(
      warnings(`${HEAD}[[route]]\nname = "a"\nbackend = "127.0.0.1:1"\n`).join('\n'),
      /listen_udp: no route takes UDP flows/,
    );
    // A TCP catch-all before a UDP route does not shadow it.
    t.same(
      warnings(
        `${HEAD}[[route]]\nname = "all"\nbackend = "127.0.0.1:1"\n[[route]]\nname = "wg"\nprotocol = "wireguard"\nbackend = "127.0.0.1:2"\n`,
      ),
      [],
    );
  },
);

t.test(
  "a UDP route's listen names listen_udp addresses; a TCP one there is an error saying so",
  async (t) => {
    const TWO =
      'listen = ["127.0.0.1:443", "127.0.0.1:80"]\nlisten_udp = ["127.0.0.1:443", "127.0.0.1:8443"]\n';
    const c = ok(
      t,
      `${TWO}
[[route]]
name = "h3"
protocol = "quic"
listen = "127.0.0.1:8443"
backend = "127.0.0.1:9443"
`,
    );
    t.same(c.routes[0]!.listen, ['127.0.0.1:8443']);
    t.same(
      errors(`${TWO}
[[route]]
name = "h3"
protocol = "quic"
listen = "127.0.0.1:80"
backend = "127.0.0.1:9443"
`),
      [
        '/etc/sni-mux/mux.toml:7:1: route[1].listen: "127.0.0.1:80" is a TCP listen address, but "h3" is a UDP route and only takes datagrams from listen_udp ("127.0.0.1:443", "127.0.0.1:8443"): add it to listen_udp, or use one of those',
      ],
    );
    // A TCP route may not name a UDP-only address either.
    t.match(
      errors(`${TWO}
[[route]]
name = "web"
protocol = "http"
listen = "127.0.0.1:8443"
backend = "127.0.0.1:8080"
`),
      [/"127\.0\.0\.1:8443" is not in the top-level listen/],
    );
  },
);
