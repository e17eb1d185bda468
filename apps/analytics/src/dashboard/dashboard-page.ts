/**
 * The operator dashboard (SPEC §7 `GET /`): one HTML page and one script, no external
 * resources, so standalone mode works offline. The admin key is typed in by the person and
 * kept in sessionStorage; every value from the API is written with textContent (tool names
 * and users come from clients and must never become markup).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>MCP Gateway analytics</title>
<style>
:root{--fg:#1d2330;--muted:#6b7385;--line:#e3e6ec;--accent:#2b6cb0;--bad:#c53030}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:var(--fg);background:#f7f8fa}
header{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;padding:.75rem 1.25rem;background:#fff;border-bottom:1px solid var(--line)}
header h1{font-size:16px;margin:0 1rem 0 0}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:4px;background:#fff}
main{padding:1.25rem;display:grid;gap:1.25rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.75rem}
.card,.panel{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem}
.card b{display:block;font-size:22px}.card span{color:var(--muted);font-size:12px}
.panels{display:grid;grid-template-columns:repeat(auto-fit,minmax(32rem,1fr));gap:1.25rem}
.panel{overflow-x:auto;min-width:0}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin:0 0 .5rem}
table{border-collapse:collapse;width:100%}td,th{padding:.25rem .4rem;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:14rem}
td.n,th.n{text-align:right}svg{width:100%;height:160px}
#status{color:var(--muted)}#status.error{color:var(--bad)}
</style></head><body>
<header><h1>MCP Gateway analytics</h1>
<input id="key" type="password" placeholder="admin API key" autocomplete="off">
<select id="range"><option value="1h">last hour</option><option value="24h" selected>last 24 hours</option><option value="30d">last 30 days</option></select>
<input id="namespace" placeholder="namespace"><input id="tenant" placeholder="tenant">
<button id="apply">Apply</button><span id="status"></span>
<a href="/api/docs" style="margin-left:auto">API</a></header>
<main>
<section class="cards" id="cards"></section>
<section class="panel"><h2>Requests and errors</h2><svg id="volume" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></section>
<section class="panel"><h2>p95 latency (ms)</h2><svg id="latency" viewBox="0 0 600 160" preserveAspectRatio="none"></svg></section>
<div class="panels">
<section class="panel"><h2>Tools</h2><table id="tools"></table></section>
<section class="panel"><h2>Namespaces</h2><table id="namespaces"></table></section>
<section class="panel"><h2>Keys</h2><table id="keys"></table></section>
<section class="panel"><h2>Recent events</h2><table id="events"></table></section>
</div></main>
<script src="/dashboard.js"></script>
</body></html>
`;

export const DASHBOARD_SCRIPT = String.raw`'use strict';
(function () {
  var RANGES = { '1h': [3600e3, '1m'], '24h': [86400e3, '1h'], '30d': [30 * 86400e3, '1d'] };
  var $ = function (id) { return document.getElementById(id); };
  var keyInput = $('key');
  keyInput.value = sessionStorage.getItem('analytics-key') || '';
  var timer = null;

  function query(extra) {
    var range = RANGES[$('range').value];
    var params = new URLSearchParams({ from: new Date(Date.now() - range[0]).toISOString() });
    ['namespace', 'tenant'].forEach(function (name) { var v = $(name).value.trim(); if (v) params.set(name, v); });
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    return params.toString();
  }

  function api(path, extra) {
    return fetch('/api/v1/' + path + '?' + query(extra), { headers: { Authorization: 'Bearer ' + keyInput.value } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
          return body;
        });
      });
  }

  function fmt(value, digits) {
    return typeof value === 'number' ? value.toLocaleString(undefined, { maximumFractionDigits: digits || 0 }) : String(value == null ? '' : value);
  }

  function cards(s) {
    var items = [['requests', s.requests], ['errors', s.errors], ['error rate', fmt(s.error_rate * 100, 2) + ' %'],
      ['tool calls', s.tool_calls], ['keys', s.unique_keys], ['p50 ms', fmt(s.p50_ms, 1)], ['p95 ms', fmt(s.p95_ms, 1)], ['p99 ms', fmt(s.p99_ms, 1)]];
    var root = $('cards');
    root.replaceChildren();
    items.forEach(function (item) {
      var card = document.createElement('div'); card.className = 'card';
      var b = document.createElement('b'); b.textContent = fmt(item[1], 0);
      var span = document.createElement('span'); span.textContent = item[0];
      card.append(b, span); root.append(card);
    });
  }

  function table(id, columns, rows) {
    var root = $(id);
    root.replaceChildren();
    var head = document.createElement('tr');
    columns.forEach(function (c) { var th = document.createElement('th'); th.textContent = c[0]; if (c[2]) th.className = 'n'; head.append(th); });
    root.append(head);
    rows.forEach(function (row) {
      var tr = document.createElement('tr');
      columns.forEach(function (c) {
        var td = document.createElement('td'); var v = c[1](row);
        td.textContent = fmt(v, 1); td.title = td.textContent; if (c[2]) td.className = 'n'; tr.append(td);
      });
      root.append(tr);
    });
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function chart(id, points, series) {
    var svg = $(id);
    svg.replaceChildren();
    var max = 1;
    points.forEach(function (p) { series.forEach(function (s) { max = Math.max(max, s[1](p)); }); });
    var w = 600 / Math.max(points.length, 1);
    series.forEach(function (s) {
      if (s[2] === 'line') {
        var path = document.createElementNS(SVG, 'polyline');
        path.setAttribute('fill', 'none'); path.setAttribute('stroke', s[0]); path.setAttribute('stroke-width', '2');
        path.setAttribute('points', points.map(function (p, i) { return (i * w + w / 2) + ',' + (155 - (s[1](p) / max) * 145); }).join(' '));
        svg.append(path);
        return;
      }
      points.forEach(function (p, i) {
        var h = (s[1](p) / max) * 145;
        var rect = document.createElementNS(SVG, 'rect');
        rect.setAttribute('x', String(i * w + 1)); rect.setAttribute('width', String(Math.max(w - 2, 1)));
        rect.setAttribute('y', String(155 - h)); rect.setAttribute('height', String(h)); rect.setAttribute('fill', s[0]);
        var title = document.createElementNS(SVG, 'title'); title.textContent = p.ts + ': ' + s[1](p); rect.append(title);
        svg.append(rect);
      });
    });
  }

  function refresh() {
    sessionStorage.setItem('analytics-key', keyInput.value);
    var bucket = RANGES[$('range').value][1];
    var status = $('status');
    Promise.all([api('summary'), api('timeseries', { bucket: bucket }), api('tools', { limit: '10' }), api('namespaces'), api('keys'), api('events', { limit: '20' })])
      .then(function (r) {
        cards(r[0]);
        chart('volume', r[1], [['#2b6cb0', function (p) { return p.requests; }], ['#c53030', function (p) { return p.errors; }]]);
        chart('latency', r[1], [['#2f855a', function (p) { return p.p95_ms; }, 'line']]);
        table('tools', [['namespace', function (t) { return t.namespace; }], ['tool', function (t) { return t.tool; }], ['calls', function (t) { return t.calls; }, 1], ['errors', function (t) { return t.errors; }, 1], ['p95 ms', function (t) { return t.p95_ms; }, 1]], r[2]);
        table('namespaces', [['namespace', function (n) { return n.namespace; }], ['requests', function (n) { return n.requests; }, 1], ['errors', function (n) { return n.errors; }, 1], ['p95 ms', function (n) { return n.p95_ms; }, 1]], r[3]);
        table('keys', [['key', function (k) { return k.key_id; }], ['user', function (k) { return k.user; }], ['tenant', function (k) { return k.tenant; }], ['requests', function (k) { return k.requests; }, 1], ['errors', function (k) { return k.errors; }, 1], ['last seen', function (k) { return new Date(k.last_seen).toLocaleString(); }]], r[4]);
        table('events', [['time', function (e) { return new Date(e.ts).toLocaleTimeString(); }], ['namespace', function (e) { return e.namespace; }], ['method', function (e) { return e.method; }], ['tool', function (e) { return e.tool; }], ['outcome', function (e) { return e.outcome; }], ['ms', function (e) { return e.duration_ms; }, 1]], r[5].events);
        status.className = ''; status.textContent = 'updated ' + new Date().toLocaleTimeString();
      })
      .catch(function (error) { status.className = 'error'; status.textContent = error.message; });
  }

  $('apply').addEventListener('click', function () { clearInterval(timer); refresh(); timer = setInterval(refresh, 5000); });
  if (keyInput.value) { refresh(); timer = setInterval(refresh, 5000); }
})();
`;
