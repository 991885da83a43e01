// A real Prometheus scrapes a real sni-mux's admin listener; promtool finds nothing wrong in the exposition.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { exchange, tlsThrough } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { adminPort, request } from './helpers/metrics.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { freePort, missing, program, run, startDaemon, tempDir } from './helpers/programs.js';
import { startGreeter, startTlsBackend } from './helpers/servers.js';

interface QueryResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

t.test(
  'Prometheus scrapes /metrics and its API returns snimux_connections_total for the routes used',
  { skip: missing('prometheus') },
  async (t) => {
    const web = await startTlsBackend(t, 'web.example');
    const ssh = await startGreeter(t, 'SSH-2.0-OpenSSH_9.2');
    const mux = await startMux(
      t,
      muxConfig(
        table('admin', { listen: '127.0.0.1:0' }),
        route('web', web.port, { sni: ['web.example'] }),
        route('ssh', ssh.port, { protocol: 'ssh' }),
        route('idle-route', ssh.port, { protocol: 'openvpn' }),
      ),
    );
    const admin = adminPort(mux);
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) ports.push((await tlsThrough(mux.port, 'web.example')).localPort);
    ports.push((await exchange(mux.port, Buffer.from('SSH-2.0-test\r\n'))).localPort);
    for (const p of ports) await connectionLine(mux, p);

    const dir = tempDir(t, 'prometheus');
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sni-mux
    static_configs:
      - targets: ["127.0.0.1:${admin}"]
`,
    );
    const webPort = await freePort();
    await startDaemon(
      t,
      program('prometheus'),
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${webPort}`,
      ],
      { ready: /Server is ready to receive web requests/ },
    );

    // Prometheus says nothing when a scrape lands, and its scrape manager starts a few seconds after
    // the ready line (discovery updates are batched): ask its API, a bounded number of times.
    const query = encodeURIComponent('snimux_connections_total');
    let all: QueryResult['data']['result'] = [];
    let found: QueryResult['data']['result'] = [];
    let status = '';
    for (let attempt = 0; attempt < 80 && found.length < 2; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 250));
      const body = JSON.parse((await request(webPort, `/api/v1/query?query=${query}`)).body) as QueryResult;
      status = body.status;
      all = body.data.result;
      found = all.filter((r) => r.value[1] !== '0');
    }
    t.equal(status, 'success');
    const byRoute = Object.fromEntries(
      found.map((r) => [`${r.metric.route}/${r.metric.protocol}`, r.value[1]]),
    );
    t.same(byRoute, { 'web/tls': '2', 'ssh/ssh': '1' }, 'the routes exercised, with their counts');
    t.match(found[0]?.metric, { job: 'sni-mux', instance: `127.0.0.1:${admin}` });
    t.ok(
      all.some((r) => r.metric.route === 'idle-route' && r.value[1] === '0'),
      'a route nobody used is there with 0',
    );

    const up = JSON.parse((await request(webPort, `/api/v1/query?query=up`)).body) as QueryResult;
    t.equal(up.data.result[0]?.value[1], '1', 'the target is up');

    // Every query of the shipped Grafana dashboard is valid PromQL, on metrics that exist.
    const exposition = (await request(admin, '/metrics')).body;
    for (const expr of dashboardQueries()) {
      const q = expr
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$instance', '.*')
        .replaceAll('$route', '.*');
      const reply = await request(webPort, `/api/v1/query?query=${encodeURIComponent(q)}`);
      t.equal(reply.status, 200, `dashboard query runs: ${expr}`);
      for (const [name] of expr.matchAll(/\b(?:snimux|process|nodejs)_[a-z0-9_]+/g)) {
        const base = name.replace(/_bucket$/, '');
        t.ok(exposition.includes(`# TYPE ${base} `), `${name} is exposed`);
      }
    }
  },
);

/** The PromQL of every panel of docs/grafana-dashboard.json. */
function dashboardQueries(): string[] {
  const file = new URL('../docs/grafana-dashboard.json', import.meta.url);
  const dash = JSON.parse(readFileSync(file, 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr));
}

t.test(
  'promtool check metrics finds no problem in the exposition',
  { skip: missing('promtool') },
  async (t) => {
    const echo = await startGreeter(t, 'hi');
    const mux = await startMux(
      t,
      muxConfig(table('admin', { listen: '127.0.0.1:0' }), route('any', echo.port)),
    );
    const r = await exchange(mux.port, Buffer.from('x'));
    await connectionLine(mux, r.localPort);
    const exposition = (await request(adminPort(mux), '/metrics')).body;
    const result = await run(program('promtool'), ['check', 'metrics'], { input: exposition });
    t.equal(result.code, 0, 'promtool exits 0');
    t.equal(`${result.text}${result.stderr}`, '', 'and reports nothing');
  },
);
