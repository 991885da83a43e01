// The status page served at GET / on the admin listener: one self-contained HTML file, no build step.
// Its script polls /status and builds the DOM with textContent only: SNI, Host and ALPN come from
// strangers, so nothing received is ever parsed as HTML. The CSP allows this one script and nothing else.
import { createHash } from 'node:crypto';

/** How often the page asks for /status, and how many live connections it lists. */
const PERIOD_MS = 2000;
const PAGE_LIMIT = 200;

const STYLE = `
:root{--bg:#f6f7f9;--fg:#1d2330;--muted:#5d6675;--card:#fff;--line:#e1e4ea;--ok:#1f8a4c;--bad:#c62828;
--warn:#a15c00;--accent:#2456c7;--chip:#eef1f6}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e5e8ee;--muted:#9aa3b2;--card:#1b2029;
--line:#2b313c;--ok:#4cc27e;--bad:#ff6b6b;--warn:#f0a84a;--accent:#7aa2ff;--chip:#252b36}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{padding:14px 18px 10px;border-bottom:1px solid var(--line);background:var(--card)}
h1{margin:0;font-size:20px;font-weight:650}
h1 small{font-weight:400;color:var(--muted);font-size:14px;margin-left:6px}
h2{font-size:15px;margin:0 0 8px;font-weight:650}
h2 .note{font-weight:400;color:var(--muted);font-size:13px;margin-left:6px}
.meta{margin:4px 0 0;color:var(--muted)}
.meta span{margin-right:14px;white-space:nowrap}
main{padding:14px 18px;max-width:1400px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:0 0 14px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;background:none;border:0;padding:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.card .sub{color:var(--muted);font-size:12px;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:baseline}
th{color:var(--muted);font-weight:600;font-size:12px;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
td.nowrap{white-space:nowrap}
td.wrap{overflow-wrap:break-word}
.chip{display:inline-block;background:var(--chip);border-radius:5px;padding:1px 7px;margin:1px 4px 1px 0;white-space:nowrap}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;background:var(--ok)}
.dot.bad{background:var(--bad)}.dot.warn{background:var(--warn)}
.bad{color:var(--bad)}.ok{color:var(--ok)}.muted{color:var(--muted)}
.errors{margin:6px 0 0;padding:8px 10px;border-left:3px solid var(--bad);background:var(--chip);white-space:pre-wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0}
dt{color:var(--muted)}dd{margin:0;word-break:break-all}
#stale{margin:8px 0 0;color:var(--bad)}
footer{padding:0 18px 18px;color:var(--muted)}
footer a{color:var(--accent);margin-right:10px}
@media (max-width:640px){
header,main,footer{padding-left:10px;padding-right:10px}
section{padding:10px}
.cards{grid-template-columns:1fr 1fr}
.card .value{font-size:20px}
table.cards-sm thead{display:none}
table.cards-sm tr{display:grid;grid-template-columns:1fr 1fr;grid-auto-flow:dense;gap:2px 12px;border-bottom:1px solid var(--line);padding:8px 0}
table.cards-sm td{display:block;border:0;padding:0;text-align:left;min-width:0;overflow-wrap:anywhere;white-space:normal}
table.cards-sm td::before{content:attr(data-label);display:block;color:var(--muted);font:11px system-ui,sans-serif;text-transform:uppercase;letter-spacing:.04em}
table.cards-sm td.wide{grid-column:1 / -1}
table.cards-sm td.idx{display:none}
.chip{white-space:normal}
}
`;

const SCRIPT = `'use strict';
(function () {
  var PERIOD = ${PERIOD_MS};
  var LIMIT = ${PAGE_LIMIT};
  var updates = 0;
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function rate(n) { return n < 10 ? n.toFixed(1) : String(Math.round(n)); }
  function dur(s) {
    if (s < 60) return Math.floor(s) + ' s';
    function two(a, ua, b, ub) { return a + ' ' + ua + (b > 0 ? ' ' + b + ' ' + ub : ''); }
    if (s < 3600) return two(Math.floor(s / 60), 'min', Math.floor(s % 60), 's');
    if (s < 86400) return two(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
    return two(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
  }
  function ago(iso, now) { return dur(Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000)) + ' ago'; }
  function ms(v) { return v === undefined || v === null ? '\\u2013' : dur(v / 1000); }
  function cell(row, label, value, cls) {
    var td = el('td', cls, value);
    td.setAttribute('data-label', label);
    row.appendChild(td);
    return td;
  }
  function fillTable(id, head, items, fill) {
    var t = $(id);
    var thead = el('thead');
    var hr = el('tr');
    head.forEach(function (h) {
      var th = el('th', h.charAt(0) === '#' ? 'num' : (h.slice(-1) === ' ' ? 'num' : ''), h.trim());
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    var tbody = el('tbody');
    items.forEach(function (item) {
      var tr = el('tr');
      fill(tr, item);
      tbody.appendChild(tr);
    });
    t.replaceChildren(thead, tbody);
    t.hidden = items.length === 0;
  }
  function card(id, label, value, sub, cls) {
    var c = el('div', 'card');
    c.appendChild(el('div', 'label', label));
    var v = el('div', 'value' + (cls ? ' ' + cls : ''), value);
    v.id = id;
    c.appendChild(v);
    if (sub) c.appendChild(el('div', 'sub', sub));
    return c;
  }
  function backendChip(b) {
    var chip = el('span', 'chip mono');
    var state = 'ok', title = 'accepting connections';
    if (b.up === false) { state = 'bad'; title = 'health check failing'; }
    else if (b.down) { state = 'warn'; title = 'last connect failed: tried after the others for now'; }
    chip.appendChild(el('span', 'dot' + (state === 'ok' ? '' : ' ' + state)));
    chip.appendChild(document.createTextNode(b.backend));
    if (state !== 'ok') chip.appendChild(el('span', state, state === 'bad' ? ' down (check)' : ' down'));
    chip.title = title + (b.up === true ? '; health check passing' : '');
    return chip;
  }
  function render(s) {
    $('version').textContent = s.version;
    $('plane').textContent = 'data plane ' + s.data_plane;
    $('uptime').textContent = 'up ' + dur(s.uptime_s);
    $('node').textContent = 'node ' + s.node + ' \\u00b7 pid ' + s.pid;
    var t = s.totals, r = s.rates;
    var recent = 0;
    Object.keys(s.rejections.recent).forEach(function (k) { recent += s.rejections.recent[k]; });
    $('summary').replaceChildren(
      card('n-live', 'Live connections', t.live, t.routed + ' routed since start'),
      card('n-accepted', 'Connections', t.accepted, rate(r.connections) + ' /s'),
      card('n-up', 'Client \\u2192 backend', bytes(t.bytes_client_to_backend), bytes(r.bytes_client_to_backend) + '/s'),
      card('n-down', 'Backend \\u2192 client', bytes(t.bytes_backend_to_client), bytes(r.bytes_backend_to_client) + '/s'),
      card('n-rejected', 'Refused', t.rejected, recent + ' in the last ' + dur(s.rejections.window_s), recent > 0 ? 'bad' : '')
    );

    var cfg = $('config');
    var rows = [['File', s.config.file], ['Loaded', ago(s.config.loaded_at, s.now)]];
    var lr = s.config.last_reload;
    rows.push(['Last reload', lr === null ? 'none since start' : lr.result + ', ' + ago(lr.at, s.now)]);
    cfg.replaceChildren();
    rows.forEach(function (kv) {
      cfg.appendChild(el('dt', '', kv[0]));
      var dd = el('dd', kv[0] === 'File' ? 'mono' : '', kv[1]);
      if (kv[0] === 'Last reload' && lr !== null) dd.className = lr.result === 'success' ? 'ok' : 'bad';
      cfg.appendChild(dd);
    });
    var errs = $('reload-errors');
    errs.hidden = !(lr !== null && lr.result === 'failure');
    errs.textContent = lr !== null && lr.result === 'failure' ? 'Old config kept: ' + lr.errors.join('\\n') : '';

    fillTable('listeners', ['Listen', 'Transport', 'Bound to'], s.listeners, function (tr, l) {
      cell(tr, 'Listen', l.listen, 'mono');
      cell(tr, 'Transport', l.transport);
      cell(tr, 'Bound to', (l.address.indexOf(':') >= 0 ? '[' + l.address + ']' : l.address) + ':' + l.port, 'mono');
    });

    fillTable('routes', ['#', 'Route', 'Matches', 'Backends', 'Live '], s.routes, function (tr, rt) {
      cell(tr, '#', rt.n, 'num idx');
      var name = cell(tr, 'Route', '');
      name.appendChild(el('strong', 'route-name', rt.route));
      cell(tr, 'Matches', rt.matches, 'mono wide');
      var b = cell(tr, 'Backends', '', 'wide');
      rt.backend_state.forEach(function (x) { b.appendChild(backendChip(x)); });
      var note = rt.backends.indexOf(' (');
      if (note >= 0) b.appendChild(el('span', 'muted', rt.backends.slice(note + 1)));
      cell(tr, 'Live', rt.live, 'num');
    });

    var shown = s.connections.length;
    $('live-note').textContent = shown < t.live ? shown + ' of ' + t.live + ', oldest first' : String(t.live);
    fillTable('connections',
      ['Client', 'Listener', 'Protocol', 'SNI / Host', 'ALPN', 'Route', 'Backend', 'Up ', 'Down ', 'Age ', 'Idle ', 'Stage'],
      s.connections, function (tr, c) {
        tr.setAttribute('data-id', String(c.id));
        var client = c.client.indexOf(':') >= 0 ? '[' + c.client + ']' : c.client;
        cell(tr, 'Client', client + ':' + c.client_port, 'mono nowrap');
        cell(tr, 'Listener', c.listener, 'mono nowrap');
        cell(tr, 'Protocol', c.protocol || '\\u2013');
        cell(tr, 'SNI / Host', c.sni || c.host || '\\u2013', 'mono wrap name');
        cell(tr, 'ALPN', c.alpn && c.alpn.length ? c.alpn.join(', ') : '\\u2013', 'mono wrap alpn');
        cell(tr, 'Route', c.route || '\\u2013', 'route nowrap');
        cell(tr, 'Backend', c.backend || '\\u2013', 'mono nowrap');
        cell(tr, 'Up', bytes(c.bytes_client_to_backend), 'num');
        cell(tr, 'Down', bytes(c.bytes_backend_to_client), 'num');
        cell(tr, 'Age', ms(c.age_ms), 'num');
        cell(tr, 'Idle', ms(c.idle_ms), 'num');
        cell(tr, 'Stage', c.stage);
      });
    $('no-connections').hidden = shown > 0;

    var reasons = Object.keys(s.rejections.total).filter(function (k) { return s.rejections.total[k] > 0; });
    $('reject-note').textContent = 'last ' + dur(s.rejections.window_s) + ' and since start';
    fillTable('rejections', ['Reason', 'Recent ', 'Since start '], reasons, function (tr, k) {
      cell(tr, 'Reason', k, 'mono');
      cell(tr, 'Recent', s.rejections.recent[k], 'num' + (s.rejections.recent[k] > 0 ? ' bad' : ''));
      cell(tr, 'Since start', s.rejections.total[k], 'num');
    });
    $('no-rejections').hidden = reasons.length > 0;
    $('updated').textContent = 'Updated ' + new Date(s.now).toLocaleTimeString();
  }
  function tick() {
    fetch('status?limit=' + LIMIT, { cache: 'no-store' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (s) {
        render(s);
        $('stale').hidden = true;
        document.body.setAttribute('data-updates', String(++updates));
      })
      .catch(function (e) {
        $('stale').hidden = false;
        $('stale').textContent = 'Cannot reach sni-mux (' + e.message + '); retrying.';
      })
      .then(function () { setTimeout(tick, PERIOD); });
  }
  tick();
})();
`;

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>sni-mux status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>sni-mux <small id="version"></small></h1>
<p class="meta"><span id="plane"></span> <span id="uptime"></span> <span id="node"></span> <span id="updated"></span></p>
<p id="stale" hidden></p>
</header>
<main>
<section id="summary" class="cards"></section>
<section><h2>Routes</h2><div class="scroll"><table id="routes" class="cards-sm"></table></div></section>
<section><h2>Live connections <span class="note" id="live-note"></span></h2>
<div class="scroll"><table id="connections" class="cards-sm"></table></div>
<p id="no-connections" class="muted" hidden>No connections right now.</p></section>
<section><h2>Refused connections <span class="note" id="reject-note"></span></h2>
<table id="rejections"></table>
<p id="no-rejections" class="muted" hidden>None since start.</p></section>
<section><h2>Listeners</h2><div class="scroll"><table id="listeners"></table></div></section>
<section><h2>Config</h2><dl id="config"></dl><p id="reload-errors" class="errors mono" hidden></p></section>
</main>
<footer>Updates every ${PERIOD_MS / 1000} s. JSON: <a href="status">status</a><a href="connections">connections</a><a href="routes">routes</a><a href="metrics">metrics</a><a href="healthz">healthz</a></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

/** Only this page's own script and styles run; it may fetch from its own origin and nothing else. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
