// The status page at GET / in a real headless Chromium, while connections are live: what a person sees.
import { mkdirSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import t from 'tap';
import { findChromium, launchBrowser, type Page } from './helpers/browser.js';
import { exchange } from './helpers/clients.js';
import { muxConfig, route, table } from './helpers/config.js';
import { buildClientHello } from './helpers/hello-builder.js';
import { adminPort, request } from './helpers/metrics.js';
import { connectionLine, startMux } from './helpers/mux.js';
import { holdBytes } from './helpers/ops.js';
import { closedPort, startEcho } from './helpers/servers.js';

const ARTIFACTS = new URL('./artifacts/', import.meta.url);
const HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
const HOSTILE_SNI = '<script>alert(1)</script>.example';

const tls = (sni: string, alpn: string[]): Uint8Array => buildClientHello({ sni, alpn });
const hold = async (port: number, bytes: Uint8Array): Promise<net.Socket> =>
  (await holdBytes(port, bytes)).socket;

/** Texts of the elements a selector finds, as the page shows them. */
function texts(page: Page, selector: string): Promise<string[]> {
  return page.evaluate(
    `[...document.querySelectorAll(${JSON.stringify(selector)})].map((e) => e.textContent)`,
  );
}

/** The connection rows as {column label: text}. */
function connectionRows(page: Page): Promise<Record<string, string>[]> {
  return page.evaluate(`[...document.querySelectorAll('#connections tbody tr')].map((tr) =>
    Object.fromEntries([...tr.children].map((td) => [td.dataset.label, td.textContent])))`);
}

const chromium = findChromium();

t.test(
  'the status page shows routes, live connections and counts in Chromium, escapes what strangers send',
  { skip: chromium === undefined ? 'chromium not found (Debian package: chromium)' : false },
  async (t) => {
    const echo = await startEcho(t);
    const echo2 = await startEcho(t);
    const dead = await closedPort();
    const mux = await startMux(
      t,
      muxConfig(
        table('admin', { listen: '127.0.0.1:0' }),
        // The refused backend stays marked down for the whole test, however slowly Chromium starts.
        table('timeouts', { backend_down: '10m' }),
        route('blog', echo.port, { sni: 'blog.example.org' }),
        route('mail', [dead, echo2.port], { sni: 'mail.example.org' }),
        route('sites', [echo.port, echo2.port], {
          sni: ['example.org', '*.example.org'],
          balance: 'roundrobin',
        }),
        route('git-ssh', echo.port, { protocol: 'ssh' }),
        route('fallback', echo2.port),
      ),
    );
    const admin = adminPort(mux);
    const held: net.Socket[] = [];
    t.teardown(() => {
      for (const s of held) s.destroy();
    });
    held.push(await hold(mux.port, tls('blog.example.org', ['h2', 'http/1.1'])));
    held.push(await hold(mux.port, tls('www.example.org', ['h2'])));
    held.push(await hold(mux.port, Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')));
    // The first backend of "mail" refuses: it is marked down and the second one answers.
    held.push(await hold(mux.port, tls('mail.example.org', ['imap'])));
    held.push(await hold(mux.port, tls('app.example.org', [HOSTILE])));
    held.push(await hold(mux.port, Buffer.from('\xffhello\n', 'latin1')));
    const refused = await exchange(mux.port, tls(HOSTILE_SNI, ['h2']));
    t.equal((await connectionLine(mux, refused.localPort)).reject, 'bad_hello');

    const browser = await launchBrowser(t, chromium!);
    const page = await browser.newPage();
    await page.viewport(1280, 900);
    await page.goto(`http://127.0.0.1:${admin}/`);
    await page.waitFor(`document.body.dataset.updates >= 1`);

    t.same(await texts(page, '#routes .route-name'), ['blog', 'mail', 'sites', 'git-ssh', 'fallback']);
    const rows = await connectionRows(page);
    t.equal(rows.length, 6, 'every live connection has a row');
    t.match(rows, [
      {
        'SNI / Host': 'blog.example.org',
        Route: 'blog',
        Protocol: 'tls',
        ALPN: 'h2, http/1.1',
        Stage: 'relaying',
      },
      { 'SNI / Host': 'www.example.org', Route: 'sites' },
      { Protocol: 'ssh', Route: 'git-ssh', Backend: `127.0.0.1:${echo.port}` },
      { 'SNI / Host': 'mail.example.org', Route: 'mail', Backend: `127.0.0.1:${echo2.port}` },
      { 'SNI / Host': 'app.example.org', ALPN: HOSTILE },
      { Route: 'fallback', Client: /^127\.0\.0\.1:\d+$/ },
    ]);
    const mailBackends = await texts(page, '#routes tbody tr:nth-child(2) .chip');
    t.match(mailBackends, [/down/, /^127\.0\.0\.1:\d+$/], 'the refused backend shows as down');
    t.same(
      await page.evaluate(`({
        pwned: window.pwned === undefined ? null : window.pwned,
        imgs: document.querySelectorAll('img').length,
        scripts: document.scripts.length,
        sni: document.body.textContent.includes(${JSON.stringify(HOSTILE_SNI)}),
      })`),
      { pwned: null, imgs: 0, scripts: 1, sni: false },
      'the hostile ALPN is text, not markup; the hostile SNI was refused and is shown nowhere',
    );
    t.match(
      await texts(page, '#rejections tbody td'),
      ['bad_hello', '1', '1'],
      'the refusal is counted by reason, recently and since start',
    );
    t.equal(await page.evaluate(`document.getElementById('n-live').textContent`), '6');

    // More traffic: the counters follow, on the page's own next poll.
    const before = Number(await page.evaluate(`document.getElementById('n-accepted').textContent`));
    for (let i = 0; i < 3; i++) await exchange(mux.port, Buffer.from(`more ${i}`));
    await page.waitFor(`document.getElementById('n-accepted').textContent === '${before + 3}'`);
    held.pop()!.destroy();
    await page.waitFor(`document.getElementById('n-live').textContent === '5'`);
    t.pass('counts change after more traffic');

    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(new URL('status-desktop.png', ARTIFACTS), await page.screenshot());
    // A phone: the tables turn into cards and nothing needs sideways scrolling.
    await page.viewport(390, 844, 2, true);
    const n = Number(await page.evaluate('document.body.dataset.updates'));
    await page.waitFor(`document.body.dataset.updates > ${n}`);
    t.equal(
      await page.evaluate('document.documentElement.scrollWidth'),
      390,
      'no horizontal scroll on a phone',
    );
    writeFileSync(new URL('status-phone.png', ARTIFACTS), await page.screenshot());
    t.same(page.errors, [], 'no console errors, exceptions, failed loads or CSP violations');

    // The page is served with headers that keep it to itself.
    const headers = (await request(admin, '/')).headers;
    t.match(headers['content-security-policy'], /default-src 'none'/);
    t.equal(headers['x-frame-options'], 'DENY');
  },
);
