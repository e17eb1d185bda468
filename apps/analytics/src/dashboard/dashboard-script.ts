/**
 * The dashboard's browser script (served as `/dashboard.js`). It asks the person for the admin
 * key, keeps it in sessionStorage (never in the URL), and calls `/api/v1/*` with it as a Bearer
 * token. Every value from the API reaches the page through textContent, `new Option()` or a
 * canvas: tool names, users and namespaces come from clients and must never become markup.
 * Charts are drawn by uPlot, loaded before this script from `/assets/`.
 */
export const DASHBOARD_SCRIPT = String.raw`'use strict';
(() => {
  // Each range asks for buckets of a size that gives a readable number of bars (15-168).
  const RANGES = {
    '15m': { ms: 15 * 60e3, bucket: '1m', bucketMs: 60e3, per: 'per minute' },
    '1h': { ms: 3600e3, bucket: '1m', bucketMs: 60e3, per: 'per minute' },
    '24h': { ms: 24 * 3600e3, bucket: '1h', bucketMs: 3600e3, per: 'per hour' },
    '7d': { ms: 7 * 24 * 3600e3, bucket: '1h', bucketMs: 3600e3, per: 'per hour' },
    '30d': { ms: 30 * 24 * 3600e3, bucket: '1d', bucketMs: 24 * 3600e3, per: 'per day' },
  };
  const KEY_STORAGE = 'mcp-gateway.analytics.admin-key';
  const CHART_HEIGHT = 220;
  const COLORS = { requests: '#2563eb', errors: '#dc2626', latency: '#7c3aed', axis: '#647084', grid: '#eef1f5' };

  const $ = (id) => document.getElementById(id);
  const ui = {
    keyForm: $('key-form'), key: $('key'), forget: $('forget'),
    range: $('range'), namespace: $('namespace'), tenant: $('tenant'),
    interval: $('interval'), pause: $('pause'), refresh: $('refresh'), updated: $('updated'),
    alert: $('alert'), welcome: $('welcome'), content: $('content'),
  };
  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || '',
    paused: false,
    authFailed: false,
    timer: null,
    controller: null,
    generation: 0,
    stale: false,
    lastUpdated: null,
  };

  // ---- formatting ----
  const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const count = (n) => integerFormat.format(n);
  const plural = (n, noun) => count(n) + ' ' + noun + (n === 1 ? '' : 's');
  const percent = (rate) => {
    if (rate > 0 && rate < 0.001) return '< 0.1 %';
    return (rate * 100).toLocaleString(undefined, { maximumFractionDigits: 1 }) + ' %';
  };
  const millis = (ms) => {
    if (ms >= 1000) return (ms / 1000).toLocaleString(undefined, { maximumFractionDigits: 2 }) + ' s';
    return ms.toLocaleString(undefined, { maximumFractionDigits: ms < 10 ? 1 : 0 }) + ' ms';
  };
  const bucketTime = (ms, bucket) => {
    const date = new Date(ms);
    if (bucket === '1m') return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    if (bucket === '1h') return date.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
    return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  };
  const ago = (iso) => {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + ' s ago';
    if (seconds < 3600) return Math.round(seconds / 60) + ' min ago';
    if (seconds < 86400) return Math.round(seconds / 3600) + ' h ago';
    return Math.round(seconds / 86400) + ' d ago';
  };

  // ---- the API ----
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, params, signal) {
    const response = await fetch('/api/v1/' + path + '?' + params.toString(), {
      headers: { Authorization: 'Bearer ' + state.key, Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
      signal,
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error && typeof body.error.message === 'string' ? body.error.message : response.statusText;
      throw new ApiError(response.status, message);
    }
    return body;
  }

  function currentRange() {
    return RANGES[ui.range.value] || RANGES['1h'];
  }

  function queryParams(fromIso, withFilters, extra) {
    const params = new URLSearchParams({ from: fromIso });
    if (withFilters) {
      if (ui.namespace.value) params.set('namespace', ui.namespace.value);
      if (ui.tenant.value) params.set('tenant', ui.tenant.value);
    }
    for (const [name, value] of Object.entries(extra || {})) params.set(name, value);
    return params;
  }

  // ---- refresh cycle ----
  async function refresh() {
    clearTimeout(state.timer);
    state.timer = null;
    if (!state.key) return showDisconnected();
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const generation = ++state.generation;
    const signal = controller.signal;
    const range = currentRange();
    const now = Date.now();
    const from = new Date(now - range.ms).toISOString();
    const filtered = Boolean(ui.namespace.value || ui.tenant.value);
    ui.content.setAttribute('aria-busy', 'true');
    ui.welcome.hidden = true;
    let drawing = false;
    try {
      const answers = await Promise.all([
        api('summary', queryParams(from, true), signal),
        api('timeseries', queryParams(from, true, { bucket: range.bucket }), signal),
        api('tools', queryParams(from, true, { limit: '10' }), signal),
        api('keys', queryParams(from, true), signal),
        api('namespaces', queryParams(from, true), signal),
        api('events', queryParams(from, true, { limit: '12' }), signal),
        // The filter choices come from the whole range, not from the filtered answer.
        filtered ? api('namespaces', queryParams(from, false), signal) : null,
        filtered ? api('keys', queryParams(from, false), signal) : null,
      ]);
      if (generation !== state.generation) return;
      drawing = true;
      ui.content.hidden = false; // before the charts measure their width
      const [summary, series, tools, keys, namespaces, events, allNamespaces, allKeys] = answers;
      renderCards(summary);
      renderCharts(series, range, now, summary);
      renderTools(tools);
      renderKeys(keys);
      renderNamespaces(namespaces);
      renderEvents(events.events);
      setOptions(ui.namespace, (allNamespaces || namespaces).map((n) => n.namespace));
      setOptions(ui.tenant, (allKeys || keys).map((k) => k.tenant));
      sessionStorage.setItem(KEY_STORAGE, state.key);
      state.authFailed = false;
      state.lastUpdated = new Date();
      hideAlert();
    } catch (error) {
      if (signal.aborted || generation !== state.generation) return;
      controller.abort(); // the other calls of this refresh are no use now
      if (drawing) {
        console.error(error);
        showMessage('The dashboard could not show the answer (' + error.message + '). Reload the page.');
      } else showError(error);
    } finally {
      if (generation === state.generation) {
        state.controller = null;
        ui.content.setAttribute('aria-busy', 'false');
        showUpdated();
        schedule();
      }
    }
  }

  // The next refresh is timed from the end of this one, so a slow API is never asked twice at once.
  function schedule() {
    clearTimeout(state.timer);
    state.timer = null;
    if (state.paused || state.authFailed || !state.key) return;
    state.timer = setTimeout(() => {
      state.timer = null;
      if (document.hidden) state.stale = true;
      else void refresh();
    }, Number(ui.interval.value) * 1000);
  }

  function showUpdated() {
    ui.updated.classList.toggle('paused', state.paused);
    if (!state.key) ui.updated.textContent = 'Not connected';
    else if (state.authFailed) ui.updated.textContent = 'Stopped: key refused';
    else if (!state.lastUpdated) ui.updated.textContent = state.paused ? 'Auto-refresh paused' : 'Waiting for data…';
    else {
      const time = state.lastUpdated.toLocaleTimeString();
      ui.updated.textContent = state.paused ? 'Paused · last updated ' + time : 'Last updated ' + time;
    }
    ui.updated.title = state.lastUpdated ? state.lastUpdated.toString() : '';
  }

  function showError(error) {
    const retry = state.paused ? '' : ' Retrying at the next refresh.';
    let text;
    if (error instanceof ApiError && error.status === 401) {
      text = 'The admin key was not accepted (401 Unauthorized): ' + error.message + '. Check the key and connect again.';
      sessionStorage.removeItem(KEY_STORAGE);
    } else if (error instanceof ApiError && error.status === 403) {
      text = 'This key may not see these analytics (403 Forbidden): ' + error.message + '.';
    } else if (error instanceof ApiError) {
      text = 'The analytics API answered ' + error.status + ': ' + error.message + '.' + retry;
    } else {
      text = 'Cannot reach the analytics service (' + (error && error.message ? error.message : String(error)) + ').' + retry;
    }
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      // A refused key stops the refresh until the person changes it; figures shown so far
      // belonged to a key that no longer reads them.
      state.authFailed = true;
      state.lastUpdated = null;
      resetView();
    } else if (state.lastUpdated) {
      text += ' The figures below are from ' + state.lastUpdated.toLocaleTimeString() + '.';
    }
    showMessage(text);
  }

  function showMessage(text) {
    ui.alert.textContent = text;
    ui.alert.hidden = false;
  }

  function hideAlert() {
    ui.alert.hidden = true;
    ui.alert.textContent = '';
  }

  function showDisconnected() {
    if (state.controller) state.controller.abort();
    state.controller = null;
    state.generation++;
    state.lastUpdated = null;
    ui.content.setAttribute('aria-busy', 'false');
    ui.welcome.hidden = false;
    hideAlert();
    resetView();
    showUpdated();
  }

  // ---- headline figures ----
  const CARDS = {
    requests: (s) => count(s.requests),
    errors: (s) => count(s.errors),
    error_rate: (s) => percent(s.error_rate),
    p50_ms: (s) => millis(s.p50_ms),
    p95_ms: (s) => millis(s.p95_ms),
    p99_ms: (s) => millis(s.p99_ms),
    unique_keys: (s) => count(s.unique_keys),
    tool_calls: (s) => count(s.tool_calls),
  };

  function renderCards(summary) {
    for (const card of document.querySelectorAll('.card[data-metric]')) {
      const metric = card.dataset.metric;
      const value = card.querySelector('.value');
      value.textContent = summary ? CARDS[metric](summary) : '—';
      value.classList.toggle('zero', !summary || summary[metric] === 0);
    }
  }

  // ---- charts ----
  const charts = {};

  function axis(values) {
    return {
      stroke: COLORS.axis,
      grid: { stroke: COLORS.grid, width: 1 },
      ticks: { stroke: COLORS.grid, width: 1 },
      values,
    };
  }

  function createChart(container, series, yAxis) {
    const options = {
      width: Math.max(container.clientWidth, 280),
      height: CHART_HEIGHT,
      scales: {
        // Set by renderCharts: [from, now] for every range, data or not.
        x: { time: true, range: () => state.xRange || [0, 1] },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      series: [{ label: 'Time', value: (_u, x) => (x == null ? '—' : bucketTime((x - state.halfBucket) * 1000, state.bucket)) }].concat(series),
      axes: [axis(), Object.assign(axis(yAxis), { size: 60 })],
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    };
    const chart = new uPlot(options, [[]].concat(series.map(() => [])), container);
    new ResizeObserver(() => {
      const width = Math.max(container.clientWidth, 280);
      if (width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
    }).observe(container);
    return chart;
  }

  function ensureCharts() {
    if (!charts.volume) {
      const bars = uPlot.paths.bars({ size: [0.8, 40], gap: 1 });
      const integers = (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? count(t) : ''));
      charts.volume = createChart($('volume-chart'), [
        { label: 'Requests', stroke: COLORS.requests, fill: COLORS.requests + 'cc', width: 0, paths: bars, points: { show: false }, value: (_u, v) => (v == null ? '—' : count(v)) },
        { label: 'Errors', stroke: COLORS.errors, fill: COLORS.errors + 'e6', width: 0, paths: bars, points: { show: false }, value: (_u, v) => (v == null ? '—' : count(v)) },
      ], integers);
      charts.latency = createChart($('latency-chart'), [
        { label: 'p95', stroke: COLORS.latency, width: 2, spanGaps: false, points: { show: true, size: 5, fill: COLORS.latency }, value: (_u, v, _s, i) => (i == null ? '—' : v == null ? 'no requests' : millis(v)) },
      ], (_u, ticks) => ticks.map((t) => millis(t)));
    }
    return charts;
  }

  function renderCharts(series, range, now, summary) {
    const { volume, latency } = ensureCharts();
    state.bucket = range.bucket;
    state.halfBucket = range.bucketMs / 2000;
    // uPlot's x is in seconds; each bar stands at the middle of its bucket.
    const xs = series.map((p) => Date.parse(p.ts) / 1000 + state.halfBucket);
    const first = series.length ? Date.parse(series[0].ts) : now - range.ms;
    state.xRange = [Math.min(first, now - range.ms) / 1000, Math.max(now, first + range.bucketMs) / 1000];
    volume.setData([xs, series.map((p) => p.requests), series.map((p) => p.errors)]);
    // A bucket without requests has no latency: a gap, not a 0 ms point.
    latency.setData([xs, series.map((p) => (p.requests > 0 ? p.p95_ms : null))]);
    for (const label of document.querySelectorAll('.panel .bucket')) label.textContent = range.per;

    const total = series.reduce((sum, p) => sum + p.requests, 0);
    const errors = series.reduce((sum, p) => sum + p.errors, 0);
    const busiest = series.reduce((best, p) => (!best || p.requests > best.requests ? p : best), null);
    const slowest = series.reduce((best, p) => (p.requests > 0 && (!best || p.p95_ms > best.p95_ms) ? p : best), null);
    $('volume-summary').textContent = total === 0
      ? 'No requests in this range.'
      : plural(total, 'request') + ', ' + plural(errors, 'error') + '; busiest ' + range.per.replace('per ', '') + ': ' +
        plural(busiest.requests, 'request') + ' at ' + bucketTime(Date.parse(busiest.ts), range.bucket) + '.';
    $('latency-summary').textContent = slowest
      ? 'Slowest ' + range.per.replace('per ', '') + ': p95 ' + millis(slowest.p95_ms) + ' at ' + bucketTime(Date.parse(slowest.ts), range.bucket) +
        '; p95 over the range ' + millis(summary.p95_ms) + '.'
      : 'No requests in this range.';
  }

  // ---- tables ----
  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    td.title = text;
    if (className) td.className = className;
    return td;
  }

  // A bar proportional to the largest row, its error share in red.
  function barCell(value, max, errors) {
    const td = document.createElement('td');
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.width = (max > 0 ? Math.max((value / max) * 70, 1) : 0) + '%';
    if (errors > 0 && value > 0) {
      fill.classList.add('has-errors');
      fill.style.setProperty('--ok', (100 - (errors / value) * 100) + '%');
    }
    const label = document.createElement('span');
    label.className = 'count';
    label.textContent = count(value);
    bar.append(fill, label);
    td.append(bar);
    return td;
  }

  function fillTable(id, rows, emptyText, render) {
    const body = document.querySelector('#' + id + ' tbody');
    if (!rows || rows.length === 0) {
      const td = cell(emptyText, 'empty');
      td.colSpan = document.querySelectorAll('#' + id + ' thead th').length;
      const tr = document.createElement('tr');
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows.map((row) => {
      const tr = document.createElement('tr');
      tr.append(...render(row));
      return tr;
    }));
  }

  function renderTools(tools) {
    const max = Math.max(0, ...tools.map((t) => t.calls));
    fillTable('tools', tools, 'No tool calls in this range.', (t) => {
      const name = document.createElement('td');
      const ns = document.createElement('span');
      ns.className = 'ns';
      ns.textContent = t.namespace + ' / ';
      const tool = document.createElement('span');
      tool.className = 'tool';
      tool.textContent = t.tool == null ? '(unnamed)' : t.tool;
      name.append(ns, tool);
      name.title = t.namespace + ' / ' + (t.tool == null ? '(unnamed)' : t.tool);
      return [name, barCell(t.calls, max, t.errors), cell(count(t.errors), 'n'), cell(percent(t.error_rate), 'n'), cell(millis(t.p95_ms), 'n')];
    });
  }

  function renderKeys(keys) {
    const top = keys.slice(0, 10);
    const max = Math.max(0, ...top.map((k) => k.requests));
    fillTable('keys', top, 'No keys seen in this range.', (k) => {
      const seen = cell(ago(k.last_seen), 'n');
      seen.title = new Date(k.last_seen).toLocaleString();
      return [cell(k.key_id), cell(k.user == null ? '—' : k.user), cell(k.tenant == null ? '—' : k.tenant), barCell(k.requests, max, k.errors), cell(count(k.errors), 'n'), seen];
    });
  }

  function renderNamespaces(namespaces) {
    const max = Math.max(0, ...namespaces.map((n) => n.requests));
    fillTable('namespaces', namespaces, 'No requests in this range.', (n) => [
      cell(n.namespace),
      barCell(n.requests, max, n.errors),
      cell(count(n.errors), 'n'),
      cell(percent(n.requests > 0 ? n.errors / n.requests : 0), 'n'),
      cell(millis(n.p95_ms), 'n'),
    ]);
  }

  function renderEvents(events) {
    fillTable('events', events, 'No events in this range.', (e) => {
      const arrow = e.direction === 'server_to_client' ? '← ' : '→ ';
      // A per-minute row of rejected requests without a credential stands for e.count of them.
      const what = e.method == null
        ? (e.count > 1 ? plural(e.count, 'rejected HTTP request') : 'rejected HTTP request') +
          (e.http_status ? ' (' + e.http_status + ')' : '') + (e.client_network ? ' from ' + e.client_network : '')
        : e.method + (e.tool ? ' · ' + e.tool : '');
      const outcome = document.createElement('td');
      const badge = document.createElement('span');
      badge.className = 'outcome' + (e.outcome === 'ok' ? '' : ' bad');
      badge.textContent = e.outcome;
      outcome.append(badge);
      const time = cell(new Date(e.ts).toLocaleTimeString());
      time.title = new Date(e.ts).toLocaleString();
      return [time, cell(e.namespace), cell(e.key_id == null ? '—' : e.key_id), cell(arrow + what), outcome, cell(e.duration_ms == null ? '' : millis(e.duration_ms).replace(' ms', ''), 'n')];
    });
  }

  function resetView() {
    ui.content.hidden = true;
    renderCards(null);
    for (const id of ['tools', 'keys', 'namespaces', 'events']) document.querySelector('#' + id + ' tbody').replaceChildren();
    for (const chart of Object.values(charts)) chart.setData([[]].concat(chart.series.slice(1).map(() => [])));
    for (const id of ['volume-summary', 'latency-summary']) $(id).textContent = '';
  }

  // Rebuilt only when the choices change, so a live refresh does not close an open list.
  function setOptions(select, values) {
    const chosen = select.value;
    const wanted = [...new Set(values.filter((v) => typeof v === 'string' && v !== ''))];
    if (chosen && !wanted.includes(chosen)) wanted.push(chosen);
    wanted.sort((a, b) => a.localeCompare(b));
    const present = [...select.options].slice(1).map((o) => o.value);
    if (present.length === wanted.length && present.every((v, i) => v === wanted[i])) return;
    select.replaceChildren(select.options[0], ...wanted.map((v) => new Option(v, v)));
    select.value = chosen;
  }

  // ---- filters live in the fragment (shareable, never sent to the server); the key never does ----
  function readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const range = params.get('range');
    if (range && RANGES[range]) ui.range.value = range;
    for (const name of ['namespace', 'tenant']) {
      const value = params.get(name);
      if (value) {
        setOptions(ui[name], [value]);
        ui[name].value = value;
      }
    }
  }

  function writeFragment() {
    const params = new URLSearchParams({ range: ui.range.value });
    if (ui.namespace.value) params.set('namespace', ui.namespace.value);
    if (ui.tenant.value) params.set('tenant', ui.tenant.value);
    history.replaceState(null, '', '#' + params.toString());
  }

  // ---- controls ----
  ui.keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    state.key = ui.key.value.trim();
    state.authFailed = false;
    state.lastUpdated = null;
    hideAlert();
    void refresh();
  });
  ui.forget.addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = '';
    ui.key.value = '';
    clearTimeout(state.timer);
    showDisconnected();
    ui.key.focus();
  });
  for (const select of [ui.range, ui.namespace, ui.tenant]) {
    select.addEventListener('change', () => {
      writeFragment();
      void refresh();
    });
  }
  ui.interval.addEventListener('change', () => schedule());
  ui.pause.addEventListener('click', () => {
    state.paused = !state.paused;
    ui.pause.setAttribute('aria-pressed', String(state.paused));
    ui.pause.textContent = state.paused ? 'Resume' : 'Pause';
    showUpdated();
    if (state.paused) schedule();
    else void refresh();
  });
  ui.refresh.addEventListener('click', () => void refresh());
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.stale) {
      state.stale = false;
      void refresh();
    }
  });

  readFragment();
  ui.key.value = state.key;
  if (state.key) void refresh();
  else showDisconnected();
})();
`;
