// The config loader turns users' TOML into a Config, or into every problem found, each with file:line:column, key and fix.
import { readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import t from 'tap';
import { formatDuration, parseDuration } from '../lib/config/duration.js';
import { formatProblem, loadConfig, parseConfig } from '../lib/config/load.js';
import { indexToml, locate } from '../lib/config/locate.js';
import { rows } from '../lib/config/schema.js';
import { shadowWarnings } from '../lib/config/shadow.js';
import type { Config, RouteConfig } from '../lib/config/types.js';
import { PROTOCOLS } from '../lib/detect/types.js';
import { parseEndpoint } from '../lib/net/address.js';
import { cidrContains, ipBytes, parseCidr } from '../lib/net/ip.js';
import { tempDir } from './helpers/programs.js';

const EXAMPLE = new URL('../examples/mux.toml', import.meta.url);
const exampleText = readFileSync(EXAMPLE, 'utf8');

/** Lines joined into a TOML document, so tests can name the line a problem must point at. */
const toml = (...lines: string[]): string => `${lines.join('\n')}\n`;

const HEAD = ['listen = "127.0.0.1:8443"'];
const ROUTE = ['[[route]]', 'name = "web"', 'backend = "127.0.0.1:9443"'];

function ok(text: string): { config: Config; warnings: string[] } {
  const r = parseConfig(text, 'mux.toml');
  if (r.kind !== 'ok') throw new Error(`expected ok, got:\n${r.errors.map(formatProblem).join('\n')}`);
  return { config: r.config, warnings: r.warnings.map(formatProblem) };
}

function errors(text: string): string[] {
  const r = parseConfig(text, 'mux.toml');
  if (r.kind !== 'error') throw new Error('expected errors, got a config');
  return r.errors.map(formatProblem);
}

t.test('the example config parses, with no warnings, into the documented routes', async (t) => {
  const { config, warnings } = ok(exampleText);
  t.same(warnings, []);
  t.same(
    config.listen.map((e) => [e.host, e.port]),
    [
      ['127.0.0.1', 8443],
      ['::1', 8443],
    ],
  );
  t.same(config.admin?.listen.text, '127.0.0.1:7646');
  t.same(
    config.routes.map((r) => r.name),
    ['blog', 'sites', 'vpn', 'ssh', 'plain-http', 'fallback'],
  );
  const [blog, sites, vpn, ssh, http, fallback] = config.routes as RouteConfig[];
  t.same(blog!.protocol, ['tls'], 'sni implies tls');
  t.same(blog!.proxyProtocol, 'v2');
  t.same(sites!.sni, ['bjk.is', '*.bjk.is']);
  t.same(sites!.alpn, ['h2', 'http/1.1']);
  t.equal(sites!.backends.length, 2);
  t.same(vpn!.protocol, ['openvpn']);
  t.equal(ssh!.onTimeout, true);
  t.same(http!.protocol, ['http'], 'host implies http');
  t.equal(http!.source?.length, 3);
  t.equal(fallback!.protocol, undefined, 'no keys: any protocol');
  t.equal(blog!.line, exampleText.split('\n').indexOf('[[route]]') + 1, 'routes know their line');
});

t.test(
  'docs/configuration.md: its complete example parses cleanly and every key is documented',
  async (t) => {
    const docs = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const block = /```toml\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
    const { config, warnings } = ok(block);
    t.same(warnings, []);
    t.equal(config.routes.length, 7);
    for (const { key } of rows()) {
      const forms = [`\`${key}\``, `\`[${key}]\``, `\`[[${key}]]\``];
      t.ok(
        forms.some((f) => docs.includes(f)),
        `${key} is documented`,
      );
    }
    for (const p of PROTOCOLS) t.ok(docs.includes(`| \`${p}\` |`), `protocol ${p} is documented`);
  },
);

t.test(
  'the admin port in the examples and docs is not one Prometheus or its exporters take by default',
  async (t) => {
    // Prometheus 9090, Pushgateway 9091, Alertmanager 9093-9094 (9092 is left to Kafka); exporters
    // 9100-9999 and, since that filled up, from 10000 on (github.com/prometheus/prometheus/wiki/Default-port-allocations).
    const taken = (port: number): boolean => (port >= 9090 && port <= 9094) || port >= 9100;
    const files = [
      'README.md',
      'examples/mux.toml',
      'docs/configuration.md',
      'docs/metrics.md',
      'docs/operations.md',
    ];
    const ports: number[] = [];
    for (const f of files) {
      const text = readFileSync(new URL(`../${f}`, import.meta.url), 'utf8');
      for (const m of text.matchAll(
        /\[admin\][^\n]*\n\s*listen = "[^"]*:(\d+)"|targets: \["[^"]*:(\d+)"\]/g,
      )) {
        ports.push(Number(m[1] ?? m[2]));
      }
      t.notOk(/(127\.0\.0\.1|localhost):9090\b/.test(text), `${f} has no 127.0.0.1:9090`);
    }
    t.ok(ports.length >= 5, `found the admin addresses (${ports.join(', ')})`);
    t.same(ports.filter(taken), [], 'none is a Prometheus default port');
    t.same(new Set(ports), new Set([7646]), 'and all agree');
  },
);

t.test(
  'a top-level listen written below [admin] or a [[route]] gets the "top of the file" hint',
  async (t) => {
    t.same(errors(toml('[admin]', 'listen = "127.0.0.1:7646"', 'listen = ["0.0.0.0:443"]', ...ROUTE)), [
      'mux.toml:3:1: TOML syntax: trying to redefine an already defined table or value; `listen` belongs in the top of the file, but keys after a [admin] header belong to that table: move it above the first table header',
    ]);
    const hint =
      'mux.toml: listen: is required: add listen = ["0.0.0.0:443", "[::]:443"] at the top of the file (a `listen` below an [admin] or [[route]] header belongs to that table: move the top-level one above the first header)';
    t.same(errors(toml('[admin]', 'listen = ["0.0.0.0:443"]', ...ROUTE)), [
      hint,
      'mux.toml:2:1: admin.listen: expected a string like "127.0.0.1:7646", got a list',
    ]);
    t.same(errors(toml(...ROUTE, 'listen = ["0.0.0.0:443"]')), [hint]);
    t.same(errors(toml('[timeouts]', 'listen = ["0.0.0.0:443"]', ...ROUTE)), [
      'mux.toml: listen: is required: add listen = ["0.0.0.0:443", "[::]:443"] at the top of the file',
      'mux.toml:2:1: timeouts.listen: unknown key; `listen` belongs in the top of the file, not [timeouts] (keys belong to the header above them)',
    ]);
  },
);

t.test('the example loads from disk with an absolute path', async (t) => {
  const r = await loadConfig(EXAMPLE.pathname);
  t.equal(r.kind, 'ok');
  if (r.kind === 'ok') t.ok(isAbsolute(r.config.file));
});

t.test('a missing or unreadable file is a problem, not a throw', async (t) => {
  const r = await loadConfig('/nonexistent/mux.toml');
  t.equal(r.kind, 'error');
  if (r.kind === 'error') t.match(formatProblem(r.errors[0]!), /^\/nonexistent\/mux\.toml: no such file/);
  const dir = tempDir(t, 'config');
  const d = await loadConfig(dir);
  t.equal(d.kind, 'error');
  if (d.kind === 'error') t.match(d.errors[0]!.message, /directory/);
});

t.test('loadConfig reports problems under the path the user gave', async (t) => {
  const dir = tempDir(t, 'config');
  const file = join(dir, 'bad.toml');
  writeFileSync(file, toml(...HEAD, '[[route]]', 'name = "web"'));
  const r = await loadConfig(file);
  t.equal(r.kind, 'error');
  if (r.kind === 'error') t.equal(r.errors[0]!.file, file);
});

t.test('defaults fill every table left out', async (t) => {
  const { config } = ok(toml(...HEAD, ...ROUTE));
  t.same(config.timeouts, {
    detect: 5000,
    connect: 5000,
    idle: 900_000,
    drain: 30_000,
    backendDown: 10_000,
    udpIdle: 120_000,
  });
  t.same(config.limits, {
    maxConnections: 8000,
    maxConnectionsPerSource: 256,
    maxPeekBytes: 65_536,
    maxUdpFlows: 10_000,
  });
  t.same(config.log, { level: 'info', format: 'auto' });
  t.equal(config.admin, undefined);
  t.equal(config.acceptProxy, undefined);
  t.equal(config.user, undefined);
  t.same(config.listen.length, 1, 'a single listen string is a one-element list');
  t.equal(config.routes[0]!.onTimeout, false);
  t.equal(config.routes[0]!.balance, 'first', 'backends are tried in the order written');
  t.equal(config.routes[0]!.protocol, undefined);
  t.equal(config.file, 'mux.toml');
});

t.test('every documented key is read', async (t) => {
  const { config } = ok(
    toml(
      'listen = ["0.0.0.0:443", "[::]:443"]',
      'user = "snimux"',
      'group = "nogroup"',
      'pid_file = "/run/sni-mux.pid"',
      '[timeouts]',
      'detect = "2s"',
      'connect = "1500ms"',
      'idle = "1h"',
      'drain = "1m30s"',
      'backend_down = "30s"',
      'udp_idle = "3m"',
      '[limits]',
      'max_connections = 5',
      'max_connections_per_source = 2',
      'max_peek_bytes = 16384',
      'max_udp_flows = 7',
      '[log]',
      'level = "debug"',
      'format = "json"',
      '[admin]',
      'listen = "127.0.0.1:7646"',
      '[accept_proxy]',
      'from = ["10.0.0.0/8", "192.168.1.1"]',
      '[[route]]',
      'name = "all"',
      'protocol = ["ssh", "http"]',
      'source = "2001:db8::/32"',
      'backends = ["[2001:db8::1]:22", "[2001:db8::2]:22"]',
      'balance = "roundrobin"',
      'proxy_protocol = "v1"',
      'idle = "8h"',
    ),
  );
  t.same(config.timeouts, {
    detect: 2000,
    connect: 1500,
    idle: 3_600_000,
    drain: 90_000,
    backendDown: 30_000,
    udpIdle: 180_000,
  });
  t.same(config.limits, {
    maxConnections: 5,
    maxConnectionsPerSource: 2,
    maxPeekBytes: 16_384,
    maxUdpFlows: 7,
  });
  t.same(config.log, { level: 'debug', format: 'json' });
  t.equal(config.user, 'snimux');
  t.equal(config.group, 'nogroup');
  t.equal(config.pidFile, '/run/sni-mux.pid');
  t.same(
    config.acceptProxy?.from.map((c) => [c.family, c.prefix]),
    [
      [4, 8],
      [4, 32],
    ],
    'a bare address is a /32',
  );
  const r = config.routes[0]!;
  t.same(r.protocol, ['ssh', 'http']);
  t.same(r.backends[0], { host: '2001:db8::1', port: 22, text: '[2001:db8::1]:22' });
  t.equal(r.source?.[0]?.family, 6);
  t.equal(r.proxyProtocol, 'v1');
  t.equal(r.balance, 'roundrobin');
  t.equal(r.idle, 8 * 3_600_000);
  t.equal(config.routes.length, 1);
});

t.test('names in sni and host are lowercased and lose a trailing dot', async (t) => {
  const { config } = ok(
    toml(...HEAD, '[[route]]', 'name = "x"', 'sni = ["Blog.BJK.is.", "*.Example.COM"]', 'backend = "a:1"'),
  );
  t.same(config.routes[0]!.sni, ['blog.bjk.is', '*.example.com']);
});

t.test('a value without a port names the key, line, column and the fix', async (t) => {
  const text = toml(
    ...HEAD,
    ...ROUTE,
    ...ROUTE.slice(0, 1),
    'name = "b"',
    'backend = "127.0.0.1:1"',
    '[[route]]',
    'name = "c"',
    'backend = "10.0.0.5"',
  );
  t.same(errors(text), ['mux.toml:10:1: route[3].backend: "10.0.0.5" needs a port, like "10.0.0.5:443"']);
});

t.test('TOML syntax errors carry smol-toml position and a hint for unquoted text', async (t) => {
  const e = errors(toml(...HEAD, '[[route]]', 'name = "x"', 'backend = 10.0.0.5:443'));
  t.equal(e.length, 1);
  t.match(
    e[0]!,
    /^mux\.toml:4:\d+: TOML syntax: .*; text values need quotes, like backend = "10\.0\.0\.5:443"$/,
  );
  t.match(errors(toml('listen = ["a:1"', '[[route]]'))[0]!, /^mux\.toml:2:\d+: TOML syntax: /);
  t.match(errors(toml(...HEAD, '[timeouts]', 'detect = 5s'))[0]!, /^mux\.toml:3:\d+: .*like detect = "5s"$/);
});

t.test('unknown keys are reported with the closest known key or the right table', async (t) => {
  const e = errors(
    toml(
      'listen = "127.0.0.1:1"',
      'usr = "x"',
      'detect = "5s"',
      '[limits]',
      'idle = "1m"',
      '[[route]]',
      'name = "x"',
      'bakends = ["a:1"]',
      'backend = "a:1"',
      'server_name = "x.com"',
      'group = "g"',
      'colour = 1',
    ),
  );
  t.same(e, [
    'mux.toml:2:1: usr: unknown key; did you mean `user`?',
    'mux.toml:3:1: detect: unknown key; `detect` belongs in [timeouts]',
    'mux.toml:5:1: limits.idle: unknown key; `idle` belongs in [timeouts], not [limits] (keys belong to the header above them)',
    'mux.toml:8:1: route[1].bakends: unknown key; did you mean `backends`?',
    'mux.toml:10:1: route[1].server_name: unknown key; did you mean `sni`?',
    'mux.toml:11:1: route[1].group: unknown key; `group` is a top-level key, but keys after a [[route]] header belong to that route: move it above the first [[route]]',
    'mux.toml:12:1: route[1].colour: unknown key; known keys here: name, protocol, sni, alpn, host, source, listen, on_timeout, backend, backends, balance, proxy_protocol, idle, health_check, transport',
  ]);
});

t.test('balance takes "first" or "roundrobin"; other tools\' names for it are pointed at', async (t) => {
  const route = (name: string, ...keys: string[]): string[] => [
    '[[route]]',
    `name = "${name}"`,
    'backends = ["a:1", "b:1"]',
    ...keys,
  ];
  t.same(
    errors(
      toml(
        ...HEAD,
        '[timeouts]',
        'fail_timeout = "10s"',
        ...route('a', 'balance = "round-robin"'),
        ...route('b', 'balance = "leastconn"'),
        ...route('c', 'balancing = "roundrobin"'),
      ),
    ),
    [
      'mux.toml:3:1: timeouts.fail_timeout: unknown key; did you mean `backend_down`?',
      'mux.toml:7:1: route[1].balance: expected "first" or "roundrobin", got the string "round-robin"; write balance = "roundrobin"',
      'mux.toml:11:1: route[2].balance: expected "first" or "roundrobin", got the string "leastconn"; write "first" or "roundrobin"',
      'mux.toml:15:1: route[3].balancing: unknown key; did you mean `balance`?',
    ],
  );
  const { config, warnings } = ok(
    toml(
      ...HEAD,
      '[timeouts]',
      'backend_down = "0s"',
      ...route('a', 'protocol = "ssh"', 'balance = "first"'),
      '[[route]]',
      'name = "one"',
      'backend = "c:1"',
      'balance = "roundrobin"',
    ),
  );
  t.same(warnings, [
    'mux.toml:12:1: route[2].balance: has no effect with one backend; list several in backends = [...], or remove it',
  ]);
  t.equal(config.timeouts.backendDown, 0, 'backend_down = "0s" turns the memory of failed backends off');
});

t.test('a misspelt required key is reported once, as a misspelling, not also as missing', async (t) => {
  t.same(errors(toml('lisen = "a:1"', '[[route]]', 'nmae = "x"', 'backendz = ["a:1", "b:2"]')), [
    'mux.toml:1:1: lisen: unknown key; did you mean `listen`?',
    'mux.toml:3:1: route[1].nmae: unknown key; did you mean `name`?',
    'mux.toml:4:1: route[1].backendz: unknown key; did you mean `backends`?',
  ]);
});

t.test('a repeated bad value is pointed at where each one is', async (t) => {
  t.same(
    errors(toml(...HEAD, '[[route]]', 'name = "x"', 'sni = ["a..b", "ok.com", "a..b"]', 'backend = "a:1"')),
    [
      'mux.toml:4:8: route[1].sni[1]: "a..b" is not a valid host name, like "example.com" or "*.example.com"',
      'mux.toml:4:26: route[1].sni[3]: "a..b" is not a valid host name, like "example.com" or "*.example.com"',
    ],
  );
});

t.test('wrong types say what was expected and what was found', async (t) => {
  const e = errors(
    toml(
      'listen = 443',
      'user = 1000',
      'timeouts = "5s"',
      '[limits]',
      'max_connections = "100"',
      'max_peek_bytes = 100',
      '[log]',
      'level = 3',
      '[[route]]',
      'name = "x"',
      'on_timeout = "true"',
      'backend = ["a:1", "b:2"]',
      'proxy_protocol = true',
      'sni = [1, "ok.com"]',
    ),
  );
  t.same(e, [
    'mux.toml:1:1: listen: 443 is only a port; write the address too, like ["0.0.0.0:443", "[::]:443"]',
    'mux.toml:2:1: user: expected a string like "snimux", got the number 1000',
    'mux.toml:3:1: timeouts: expected a table, got the string "5s"; write it as a [timeouts] section',
    'mux.toml:5:1: limits.max_connections: expected a whole number from 1 to 10000000, got the string "100"; write 100 without quotes',
    'mux.toml:6:1: limits.max_peek_bytes: 100 is out of range; write a number from 512 to 1048576',
    'mux.toml:8:1: log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got the number 3',
    'mux.toml:11:1: route[1].on_timeout: expected true or false, got the string "true"; write true without quotes',
    'mux.toml:12:1: route[1].backend: backend takes one address; for several, write backends = [...] (tried in turn)',
    'mux.toml:13:1: route[1].proxy_protocol: expected "v1" or "v2", got true; write proxy_protocol = "v2"',
    'mux.toml:14:1: route[1].sni[1]: expected a string like "example.com", got the number 1',
  ]);
});

t.test('durations need units and sensible values', async (t) => {
  const e = errors(
    toml(
      ...HEAD,
      '[timeouts]',
      'detect = 5',
      'connect = "0s"',
      'idle = "15 minutes"',
      'drain = "1d"',
      ...ROUTE,
    ),
  );
  t.same(e, [
    'mux.toml:3:1: timeouts.detect: 5 needs a unit, like "5s" (units: ms, s, m, h)',
    'mux.toml:4:1: timeouts.connect: must be more than 0, like "5s"',
    'mux.toml:5:1: timeouts.idle: "15 minutes" is not a duration; write a number and a unit (ms, s, m, h), like "5s" or "1m30s"',
    'mux.toml:6:1: timeouts.drain: "1d" is not a duration; write a number and a unit (ms, s, m, h), like "5s" or "1m30s"',
  ]);
  const { config } = ok(toml(...HEAD, '[timeouts]', 'idle = "0s"', 'drain = "0ms"', ...ROUTE));
  t.equal(config.timeouts.idle, 0, 'idle 0 turns the idle timeout off');
  t.equal(config.timeouts.drain, 0);
});

t.test('parseDuration reads units, combinations and decimals exactly', async (t) => {
  const cases: [string, number][] = [
    ['250ms', 250],
    ['5s', 5000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['0.25h', 900_000],
  ];
  for (const [text, ms] of cases) t.same(parseDuration(text), { kind: 'ok', ms }, text);
  for (const bad of ['', '5', '5 s', 's', '-1s', '1.0005s', '1y', '597h', '5S']) {
    t.equal(parseDuration(bad).kind, 'error', JSON.stringify(bad));
  }
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(0), '0s');
});

t.test('routes need exactly one of backend and backends, and unique names', async (t) => {
  const e = errors(
    toml(
      ...HEAD,
      '[[route]]',
      'name = "a"',
      '[[route]]',
      'name = "b"',
      'backend = "x:1"',
      'backends = ["y:2"]',
      '[[route]]',
      'name = "a"',
      'backends = []',
      '[[route]]',
      'backend = "z:3"',
    ),
  );
  t.same(e, [
    'mux.toml:2:1: route[1]: needs a backend to send connections to; add backend = "host:port", like backend = "127.0.0.1:443"',
    'mux.toml:7:1: route[2].backends: both backend and backends are set; keep one (backends = [...] for several, tried in turn)',
    'mux.toml:9:1: route[3].name: "a" is already the name of route[1]; route names must be unique',
    'mux.toml:10:1: route[3].backends: is an empty list, which matches nothing; list at least one, like ["10.0.0.1:443", "10.0.0.2:443"], or remove the key',
    'mux.toml:11:1: route[4].name: every route needs a name, used in logs and metrics, like name = "route4"',
  ]);
});

t.test('only one route may take clients that send nothing', async (t) => {
  const e = errors(
    toml(
      ...HEAD,
      ...ROUTE,
      'on_timeout = true',
      '[[route]]',
      'name = "b"',
      'on_timeout = true',
      'backend = "a:1"',
    ),
  );
  t.same(e, [
    'mux.toml:8:1: route[2].on_timeout: route[1] already has on_timeout = true; only one route can take clients that send nothing',
  ]);
});

t.test('ports, addresses and CIDRs are checked, each list element at its own position', async (t) => {
  const e = errors(
    toml(
      'listen = ["0.0.0.0:443", "[::]:70000", "::1", "0.0.0.0:443"]',
      '[[route]]',
      'name = "x"',
      'source = [',
      '  "10.0.0.1/8",',
      '  "2001:db8::/129",',
      '  "lan",',
      ']',
      'backends = ["host:99999", "bad host:1"]',
    ),
  );
  t.same(e, [
    'mux.toml:1:26: listen[2]: port "70000" in "[::]:70000" must be a number from 0 to 65535',
    'mux.toml:1:40: listen[3]: "::1": put IPv6 addresses in brackets, like "[::1]:443"',
    'mux.toml:1:47: listen[4]: "0.0.0.0:443" is listed twice; remove one',
    'mux.toml:5:3: route[1].source[1]: "10.0.0.1/8" has bits set after the prefix; did you mean "10.0.0.0/8"?',
    'mux.toml:6:3: route[1].source[2]: "2001:db8::/129": prefix "/129" must be a number from 0 to 128',
    'mux.toml:7:3: route[1].source[3]: "lan" is not an IP address; write a CIDR like "10.0.0.0/8" or "2001:db8::/32"',
    'mux.toml:9:13: route[1].backends[1]: port "99999" in "host:99999" must be a number from 1 to 65535',
    'mux.toml:9:27: route[1].backends[2]: "bad host" is not a valid host name or IP address',
  ]);
});

t.test('no listen and no routes are errors without a line', async (t) => {
  t.same(errors(''), [
    'mux.toml: listen: is required: add listen = ["0.0.0.0:443", "[::]:443"] at the top of the file',
    'mux.toml: route: no routes: add at least one [[route]] with name = "web" and backend = "127.0.0.1:8443"',
  ]);
  t.same(errors(toml(...HEAD, '[route]', 'name = "x"')), [
    'mux.toml:2:1: route: write each route as a [[route]] table (two brackets), got a table',
  ]);
});

t.test('match keys that contradict each other are errors', async (t) => {
  const e = errors(
    toml(
      ...HEAD,
      '[[route]]',
      'name = "a"',
      'sni = "a.com"',
      'protocol = "ssh"',
      'backend = "x:1"',
      '[[route]]',
      'name = "b"',
      'alpn = "h2"',
      'host = "b.com"',
      'backend = "x:1"',
      '[[route]]',
      'name = "c"',
      'protocol = ["https", "SSH"]',
      'backend = "x:1"',
    ),
  );
  t.same(e, [
    'mux.toml:5:1: route[1].protocol: "ssh" contradicts sni, which only matches tls connections; remove protocol (sni implies "tls") or move "ssh" to a route of its own',
    'mux.toml:7:1: route[2]: alpn matches TLS connections and host matches plain HTTP ones; no connection is both, so split this into two routes',
    'mux.toml:14:13: route[3].protocol[1]: "https" is not a protocol sni-mux detects; write "tls" (sni-mux routes TLS without decrypting it)',
    'mux.toml:14:22: route[3].protocol[2]: "SSH" is not a protocol sni-mux detects; did you mean "ssh"?',
  ]);
  const { config } = ok(
    toml(...HEAD, '[[route]]', 'name = "a"', 'sni = "a.com"', 'protocol = "tls"', 'backend = "x:1"'),
  );
  t.same(config.routes[0]!.protocol, ['tls'], 'naming the implied protocol is fine');
});

t.test('bad names in sni and host say what to write instead', async (t) => {
  const e = errors(
    toml(
      ...HEAD,
      '[[route]]',
      'name = "bad name!"',
      'sni = ["*", "a.*.com", "https://blog.bjk.is/", "blog.bjk.is:443", "-x-.com"]',
      'alpn = [""]',
      'backend = "x:1"',
    ),
  );
  t.same(e, [
    'mux.toml:3:1: route[1].name: "bad name!" may only have letters, digits, ".", "_" and "-" (at most 64), like "bad-name-"',
    'mux.toml:4:8: route[1].sni[1]: "*" would match every name; leave the key out instead (protocol = "tls" matches any TLS)',
    'mux.toml:4:13: route[1].sni[2]: "a.*.com": a wildcard may only be a leading "*.", like "*.example.com"',
    'mux.toml:4:24: route[1].sni[3]: "https://blog.bjk.is/": write just the name, like "blog.bjk.is"',
    'mux.toml:4:48: route[1].sni[4]: "blog.bjk.is:443": write the name without the port, like "blog.bjk.is"',
    'mux.toml:4:67: route[1].sni[5]: "-x-.com" is not a valid host name, like "example.com" or "*.example.com"',
    'mux.toml:5:9: route[1].alpn[1]: "" is not an ALPN protocol name, like "h2" or "http/1.1"',
  ]);
});

t.test('[admin] and [accept_proxy] need their one key', async (t) => {
  const e = errors(toml(...HEAD, '[admin]', '[accept_proxy]', 'from = []', ...ROUTE));
  t.same(e, [
    'mux.toml:2:1: admin.listen: is required in [admin]: add listen = "127.0.0.1:7646", or remove [admin] to turn it off',
    'mux.toml:4:1: accept_proxy.from: is an empty list, which matches nothing; list at least one, like ["10.0.0.0/8", "192.168.1.1"], or remove the key',
  ]);
  t.same(errors(toml(...HEAD, '[admin]', 'listen = "127.0.0.1:8443"', ...ROUTE)), [
    'mux.toml:3:1: admin.listen: "127.0.0.1:8443" is also in listen; give the admin endpoint its own port',
  ]);
});

t.test('[admin] allow: CIDRs like accept_proxy.from, each bad one named by file, line and key', async (t) => {
  const good = ok(
    toml(
      ...HEAD,
      '[admin]',
      'listen = "127.0.0.1:7646"',
      'allow = ["127.0.0.1", "::1", "10.0.0.0/8"]',
      ...ROUTE,
    ),
  );
  t.same(
    good.config.admin?.allow?.map((c) => c.text),
    ['127.0.0.1', '::1', '10.0.0.0/8'],
  );
  t.equal(
    ok(toml(...HEAD, '[admin]', 'listen = "127.0.0.1:7646"', 'allow = "192.168.1.0/24"', ...ROUTE)).config
      .admin?.allow?.length,
    1,
    'one CIDR as a string',
  );
  t.equal(
    ok(toml(...HEAD, '[admin]', 'listen = "127.0.0.1:7646"', ...ROUTE)).config.admin?.allow,
    undefined,
    'absent: every peer',
  );
  t.same(
    errors(
      toml(
        ...HEAD,
        '[admin]',
        'listen = "127.0.0.1:7646"',
        'allow = ["127.0.0.1", "10.0.0.1/8", 7]',
        ...ROUTE,
      ),
    ),
    [
      'mux.toml:4:1: admin.allow[3]: expected a string like "127.0.0.1", got the number 7',
      'mux.toml:4:23: admin.allow[2]: "10.0.0.1/8" has bits set after the prefix; did you mean "10.0.0.0/8"?',
    ],
  );
  t.same(errors(toml(...HEAD, '[admin]', 'listen = "127.0.0.1:7646"', 'allow = []', ...ROUTE)), [
    'mux.toml:4:1: admin.allow: is an empty list, which matches nothing; list at least one, like ["127.0.0.1", "192.168.1.0/24"], or remove the key',
  ]);
  t.same(errors(toml(...HEAD, '[admin]', 'listen = "127.0.0.1:7646"', 'alow = ["127.0.0.1"]', ...ROUTE)), [
    'mux.toml:4:1: admin.alow: unknown key; did you mean `allow`?',
  ]);
});

t.test('every error in the file is reported at once, in file order', async (t) => {
  const e = errors(
    toml(
      'listen = "0.0.0.0"',
      '[log]',
      'level = "loud"',
      '[[route]]',
      'name = "a"',
      'backend = "10.0.0.5"',
      '[[route]]',
      'name = "a"',
      'sni = "*.*"',
      'backend = "x:70000"',
    ),
  );
  t.equal(e.length, 6);
  t.same(
    e.map((x) => Number(x.split(':')[1])),
    [1, 3, 6, 8, 9, 10],
  );
});

t.test('warnings: shadowed routes, a small peek buffer, a backend that is our own address', async (t) => {
  const { warnings } = ok(
    toml(
      'listen = "0.0.0.0:8443"',
      '[limits]',
      'max_peek_bytes = 1024',
      '[[route]]',
      'name = "all-bjk"',
      'sni = "*.bjk.is"',
      'backend = "127.0.0.1:8443"',
      '[[route]]',
      'name = "blog"',
      'sni = ["blog.bjk.is", "*.x.bjk.is"]',
      'alpn = "h2"',
      'backend = "x:1"',
    ),
  );
  t.same(warnings, [
    'mux.toml:3:1: limits.max_peek_bytes: 1024 may be too small for a TLS ClientHello (up to 16384 bytes; post-quantum key shares make them 2 KB or more); such clients would not be routed by sni',
    'mux.toml:7:1: route[1].backend: backend "127.0.0.1:8443" is sni-mux\'s own listen address "0.0.0.0:8443"; connections would loop back into it',
    'mux.toml:8:1: route[2]: "blog" is never used: route[1] ("all-bjk") comes first and matches every connection it would; move "blog" above it, or narrow "all-bjk"',
  ]);
});

/** Routes from TOML snippets, for the shadow rules. */
function routes(...bodies: string[][]): RouteConfig[] {
  const text = toml(
    ...HEAD,
    ...bodies.flatMap((b, i) => ['[[route]]', `name = "r${i + 1}"`, ...b, 'backend = "x:1"']),
  );
  return [...ok(text).config.routes];
}

function shadowed(rs: RouteConfig[]): string[] {
  return shadowWarnings(rs, 'f').map((w) => w.key ?? '');
}

t.test(
  'shadowing: a later route is reported only when an earlier one takes all its connections',
  async (t) => {
    t.same(
      shadowed(routes([], ['protocol = "ssh"'])),
      ['route[2]'],
      'a no-key route shadows everything after it',
    );
    t.same(shadowed(routes(['protocol = "tls"'], ['sni = "a.com"'])), ['route[2]'], 'sni implies tls');
    t.same(shadowed(routes(['protocol = "http"'], ['host = "a.com"'])), ['route[2]'], 'host implies http');
    t.same(shadowed(routes(['sni = "a.com"'], ['protocol = "tls"'])), [], 'narrower first is fine');
    t.same(shadowed(routes(['sni = "*.a.com"'], ['sni = ["b.a.com", "*.c.a.com"]'])), ['route[2]']);
    t.same(shadowed(routes(['sni = "*.a.com"'], ['sni = "a.com"'])), [], '*.a.com does not cover a.com');
    t.same(shadowed(routes(['sni = "*.a.com"'], ['sni = ["b.a.com", "x.com"]'])), [], 'one name not covered');
    t.same(shadowed(routes(['alpn = ["h2", "http/1.1"]'], ['alpn = "h2"'])), ['route[2]']);
    t.same(shadowed(routes(['alpn = "h2"'], ['alpn = ["h2", "http/1.1"]'])), []);
    t.same(shadowed(routes(['source = "10.0.0.0/8"'], ['source = ["10.1.0.0/16", "10.2.3.4"]'])), [
      'route[2]',
    ]);
    t.same(shadowed(routes(['source = "10.0.0.0/16"'], ['source = "10.0.0.0/8"'])), []);
    t.same(shadowed(routes(['source = "10.0.0.0/8"'], ['source = "2001:db8::/32"'])), [], 'families differ');
    t.same(shadowed(routes(['source = "10.0.0.0/8"'], [])), [], 'an earlier key the later lacks');
    t.same(shadowed(routes(['protocol = ["ssh", "tls"]'], ['protocol = "ssh"'])), ['route[2]']);
    t.same(shadowed(routes(['protocol = "ssh"'], ['protocol = ["ssh", "tls"]'])), []);
    t.same(shadowed(routes([], ['on_timeout = true'])), [], 'an on_timeout route still takes silent clients');
    t.same(shadowed(routes([], [], [])), ['route[2]', 'route[3]'], 'one warning per shadowed route');
  },
);

t.test(
  'the locator finds tables, keys, dotted keys and list elements, and skips multi-line strings',
  async (t) => {
    const text = toml(
      'listen = ["a:1",', // 1
      '  "b:2"]', // 2
      'timeouts.detect = "5s"', // 3
      'note = """', // 4
      '[[route]]', // 5: inside a string, not a header
      'name = "fake"', // 6
      '"""', // 7
      '  [[ route ]]', // 8
      '  "name" = "x"', // 9
      '[limits]', // 10
      'inline = { a = 1 }', // 11
    );
    const idx = indexToml(text);
    t.same(locate(idx, ['listen', 1], 'b:2'), { line: 2, column: 3 });
    t.same(locate(idx, ['listen', 0], 'a:1'), { line: 1, column: 11 });
    t.same(locate(idx, ['timeouts', 'detect']), { line: 3, column: 1 });
    t.same(locate(idx, ['route', 0]), { line: 8, column: 3 });
    t.same(locate(idx, ['route', 0, 'name']), { line: 9, column: 3 });
    t.same(locate(idx, ['route', 0, 'backend']), { line: 8, column: 3 }, 'a missing key points at its table');
    t.equal(locate(idx, ['route', 1]), undefined);
    t.same(
      locate(idx, ['limits', 'inline', 'a']),
      { line: 11, column: 1 },
      'inline tables use the enclosing key',
    );
    t.same(locate(idx, ['limits']), { line: 10, column: 1 });
    t.equal(locate(idx, ['user']), undefined);
  },
);

t.test('ipBytes folds IPv4-mapped IPv6 to 4 bytes and refuses what is not an IP', async (t) => {
  t.same([...ipBytes('192.168.0.1')!], [192, 168, 0, 1]);
  t.same([...ipBytes('::ffff:192.168.0.1')!], [192, 168, 0, 1]);
  t.same([...ipBytes('::ffff:c0a8:1')!], [192, 168, 0, 1]);
  t.equal(ipBytes('2001:db8::1')!.length, 16);
  t.equal(ipBytes('fe80::1%eth0')!.length, 16, 'a zone is ignored');
  t.same([...ipBytes('::')!], new Array(16).fill(0));
  for (const bad of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '256.0.0.1',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    'g::',
    'a.b.c.d',
  ]) {
    t.equal(ipBytes(bad), undefined, bad);
  }
});

t.test('cidrContains compares prefix bits and never mixes families', async (t) => {
  const c = (s: string) => {
    const r = parseCidr(s);
    if (r.kind !== 'ok') throw new Error(r.message);
    return r.cidr;
  };
  t.ok(cidrContains(c('10.0.0.0/8'), ipBytes('10.255.0.1')!));
  t.notOk(cidrContains(c('10.0.0.0/8'), ipBytes('11.0.0.1')!));
  t.ok(cidrContains(c('192.168.0.0/17'), ipBytes('192.168.127.255')!));
  t.notOk(cidrContains(c('192.168.0.0/17'), ipBytes('192.168.128.0')!));
  t.ok(
    cidrContains(c('10.0.0.0/8'), ipBytes('::ffff:10.1.2.3')!),
    'dual-stack IPv4 clients match IPv4 CIDRs',
  );
  t.ok(cidrContains(c('::ffff:10.0.0.0/104'), ipBytes('10.1.2.3')!), 'IPv4-mapped CIDRs are IPv4 CIDRs');
  t.notOk(cidrContains(c('::/0'), ipBytes('10.0.0.1')!));
  t.ok(cidrContains(c('0.0.0.0/0'), ipBytes('10.0.0.1')!));
  t.ok(cidrContains(c('2001:db8::/32'), ipBytes('2001:db8:ffff::1')!));
  t.notOk(cidrContains(c('2001:db8::/32'), ipBytes('2001:db9::1')!));
});

t.test('parseEndpoint accepts the three forms and explains the rest', async (t) => {
  t.same(parseEndpoint('10.0.0.5:443'), {
    kind: 'ok',
    endpoint: { host: '10.0.0.5', port: 443, text: '10.0.0.5:443' },
  });
  t.same(parseEndpoint('[::1]:22'), { kind: 'ok', endpoint: { host: '::1', port: 22, text: '[::1]:22' } });
  t.same(parseEndpoint('backend.lan:8080'), {
    kind: 'ok',
    endpoint: { host: 'backend.lan', port: 8080, text: 'backend.lan:8080' },
  });
  const msg = (s: string) => {
    const r = parseEndpoint(s);
    return r.kind === 'error' ? r.message : 'ok';
  };
  t.equal(msg('[::1]'), '"[::1]" needs a port, like "[::1]:443"');
  t.equal(
    msg('2001:db8::1:443'),
    '"2001:db8::1:443": put IPv6 addresses in brackets, like "[2001:db8::1]:443"',
  );
  t.equal(msg(':443'), '":443" needs a host before the port, like "0.0.0.0:443"');
  t.equal(msg('1.2.3.256:1'), '"1.2.3.256" is not a valid IPv4 address');
  t.equal(msg('[zz]:1'), '"zz" in brackets is not an IPv6 address');
});
