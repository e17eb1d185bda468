/**
 * The operator dashboard (SPEC §7 `GET /`): this page, its stylesheet (dashboard-style.ts), its
 * browser module (client/*.ts, compiled to JavaScript and served by dashboard-assets.ts) and the
 * charting library from node_modules; nothing from another origin, so it works in closed
 * networks. The page holds no data and needs no key: the module asks the person for the admin
 * key and calls the keyed API with it.
 */
export function dashboardHtml(assets: {
  chartScript: string;
  chartStyle: string;
  clientEntry: string;
}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>MCP Gateway · Analytics</title>
<link rel="stylesheet" href="${assets.chartStyle}">
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
<header class="top">
  <h1>MCP Gateway <span>Analytics</span></h1>
  <form id="key-form" class="key" autocomplete="off">
    <label for="key">Admin API key</label>
    <input id="key" type="password" spellcheck="false" autocomplete="off" placeholder="paste an admin key" required>
    <button type="submit">Connect</button>
    <button type="button" id="forget" class="quiet">Forget key</button>
  </form>
  <a class="docs" href="/api/docs">API reference</a>
</header>

<section class="toolbar" aria-label="Filters and refresh">
  <label>Time range
    <select id="range">
      <option value="15m">Last 15 minutes</option>
      <option value="1h" selected>Last hour</option>
      <option value="24h">Last 24 hours</option>
      <option value="7d">Last 7 days</option>
      <option value="30d">Last 30 days</option>
    </select>
  </label>
  <label id="server-filter" hidden>Virtual server
    <select id="server"><option value="">All virtual servers</option></select>
  </label>
  <label>Namespace
    <select id="namespace"><option value="">All namespaces</option></select>
  </label>
  <label>Tenant
    <select id="tenant"><option value="">All tenants</option></select>
  </label>
  <span class="spacer"></span>
  <label>Refresh
    <select id="interval">
      <option value="5">every 5 s</option>
      <option value="10" selected>every 10 s</option>
      <option value="30">every 30 s</option>
      <option value="60">every minute</option>
    </select>
  </label>
  <button type="button" id="pause" aria-pressed="false">Pause</button>
  <button type="button" id="refresh">Refresh now</button>
  <span id="updated" class="updated">Not connected</span>
</section>

<nav id="filters" class="filters" aria-label="Filters in force" hidden>
  <span class="filters-label">Showing only</span>
  <ul id="filter-chips"></ul>
  <a id="clear-filters" class="clear" href="/" data-filter>Show everything</a>
</nav>

<div id="alert" class="alert" role="alert" hidden></div>
<p id="welcome" class="welcome">Enter an admin API key above to load the analytics. The key stays in this browser tab (session storage) and is sent only to this service's API.</p>

<main id="content" aria-busy="false" hidden>
  <!-- Alarms that need a person (a tool whose definition drifted) go here, above the figures. -->
  <section id="alarms" class="alarms" aria-label="Alarms" hidden></section>

  <section class="cards" aria-label="Headline figures">
    <div class="card" data-metric="requests" title="Every client request: JSON-RPC requests and refused HTTP requests, rejected ones included.">
      <span class="label">Requests</span><span class="value">—</span><span class="help">all, rejected included</span>
    </div>
    <div class="card" data-metric="rejected" title="Refused by the gateway before a backend saw them: no or a wrong key (unauthorized), not allowed (forbidden), rate limited, malformed (bad_request), or a hidden tool (denied_tool). Not errors: no backend failed.">
      <span class="label">Rejected</span><span class="value">—</span><span class="help">refused before a backend</span>
    </div>
    <div class="card" data-metric="errors" title="Requests let through that failed: the tool reported an error, a JSON-RPC error, the backend was unreachable or timed out, or the client left before the answer.">
      <span class="label">Errors</span><span class="value">—</span><span class="help">let through, then failed</span>
    </div>
    <div class="card" data-metric="error_rate" title="Errors ÷ (requests − rejected): the share of the requests let through that failed.">
      <span class="label">Error rate</span><span class="value">—</span><span class="help">errors ÷ (requests − rejected)</span>
    </div>
    <div class="card" data-metric="p50_ms"><span class="label">p50 latency</span><span class="value">—</span></div>
    <div class="card" data-metric="p95_ms"><span class="label">p95 latency</span><span class="value">—</span></div>
    <div class="card" data-metric="p99_ms"><span class="label">p99 latency</span><span class="value">—</span></div>
    <div class="card" data-metric="unique_keys"><span class="label">Unique keys</span><span class="value">—</span></div>
    <div class="card" data-metric="tool_calls"><span class="label">Tool calls</span><span class="value">—</span></div>
  </section>

  <div id="charts" class="grid charts">
    <figure class="panel" aria-labelledby="volume-title">
      <h2 id="volume-title">Requests, rejected and errors <span class="bucket"></span></h2>
      <div id="volume-chart" class="chart"></div>
      <figcaption id="volume-summary" class="summary"></figcaption>
    </figure>
    <figure class="panel" aria-labelledby="latency-title">
      <h2 id="latency-title">p95 latency <span class="bucket"></span></h2>
      <div id="latency-chart" class="chart"></div>
      <figcaption id="latency-summary" class="summary"></figcaption>
    </figure>
    <figure id="histogram-panel" class="panel" aria-labelledby="histogram-title" hidden>
      <h2 id="histogram-title">Latency histogram <span id="histogram-tool" class="subject"></span></h2>
      <div id="histogram-chart" class="chart"></div>
      <figcaption id="histogram-summary" class="summary"></figcaption>
    </figure>
  </div>

  <!-- Panels of one row each at 1920 px, two at 1280 px. -->
  <div class="grid tables">
    <section class="panel" aria-labelledby="tools-title">
      <h2 id="tools-title">Top tools</h2>
      <table id="tools">
        <thead><tr><th scope="col" class="name">Tool</th><th scope="col" class="bar-col">Calls</th><th scope="col" class="n">Rejected</th><th scope="col" class="n">Errors</th><th scope="col" class="n rate">Error rate</th><th scope="col" class="n">p95</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section class="panel" aria-labelledby="keys-title">
      <h2 id="keys-title">Top keys</h2>
      <table id="keys">
        <thead><tr><th scope="col" class="name">Key · user</th><th scope="col" class="tenant">Tenant</th><th scope="col" class="bar-col">Requests</th><th scope="col" class="n">Rejected</th><th scope="col" class="n">Errors</th><th scope="col" class="n when">Last seen</th></tr></thead>
        <tbody></tbody>
        <tfoot></tfoot>
      </table>
    </section>
    <section class="panel" aria-labelledby="namespaces-title">
      <h2 id="namespaces-title">Namespaces</h2>
      <table id="namespaces">
        <thead><tr><th scope="col" class="name">Namespace</th><th scope="col" class="bar-col">Requests</th><th scope="col" class="n">Rejected</th><th scope="col" class="n">Errors</th><th scope="col" class="n rate">Error rate</th><th scope="col" class="n">p95</th></tr></thead>
        <tbody></tbody>
      </table>
    </section>
    <section class="panel" aria-labelledby="context-title">
      <h2 id="context-title" title="Every tools/list answer puts each tool's definition in the client's context, called or not. Tokens: of the definition as the client received it (o200k_base).">Context budget</h2>
      <p id="context-totals" class="summary context-totals"></p>
      <table id="context">
        <thead><tr><th scope="col" class="name">Tool</th><th scope="col" class="n">Tokens</th><th scope="col" class="n">Calls</th><th scope="col" class="n keys-col" title="Keys it was listed to">Keys listing</th><th scope="col" class="n keys-col" title="Keys that called it">Keys calling</th></tr></thead>
        <tbody></tbody>
        <tfoot></tfoot>
      </table>
    </section>
  </div>

  <section class="panel events" aria-labelledby="events-title">
    <h2 id="events-title">Recent events</h2>
    <table id="events">
      <thead><tr><th scope="col" class="time">Time</th><th scope="col" class="ns">Namespace</th><th scope="col" class="key">Key</th><th scope="col" class="client">Client</th><th scope="col" class="what">Method · tool</th><th scope="col" class="outcome-col">Outcome</th><th scope="col" class="n status">Status</th><th scope="col" class="n ms">ms</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
<script src="${assets.chartScript}"></script>
<script type="module" src="${assets.clientEntry}"></script>
</body>
</html>
`;
}
