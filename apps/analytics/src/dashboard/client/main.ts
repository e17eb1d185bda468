// The dashboard's entry module (served as /dashboard/main.js, a module script: deferred, so
// the page is parsed and uPlot loaded before it runs). It asks the person for the admin key,
// keeps it in sessionStorage (never in the URL), and calls /api/v1/* with it, refreshing live.
// The filters live in the URL's query string (navigation.ts): every tool, key, namespace,
// virtual server and tenant on the page is a link that filters the whole page, and the back
// button undoes it.
import { type Answers, ApiError, getAnswer } from './api.js';
import { HistogramChart, TimeCharts } from './charts.js';
import { renderContext } from './context-panel.js';
import { byId } from './dom.js';
import { DriftAlarms } from './drift-alarms.js';
import { histogramSentence, latencySentence, renderCards, volumeSentence } from './figures.js';
import { apiParams, isFiltered, type PageFilters, RANGES } from './filters.js';
import { FilterNavigation } from './navigation.js';
import { renderEvents, renderKeys, renderNamespaces, renderTools } from './tables.js';

const KEY_STORAGE = 'mcp-gateway.analytics.admin-key';

const ui = {
  keyForm: byId('key-form', HTMLFormElement),
  key: byId('key', HTMLInputElement),
  forget: byId('forget', HTMLButtonElement),
  interval: byId('interval', HTMLSelectElement),
  pause: byId('pause', HTMLButtonElement),
  refresh: byId('refresh', HTMLButtonElement),
  updated: byId('updated', HTMLElement),
  alert: byId('alert', HTMLElement),
  welcome: byId('welcome', HTMLElement),
  content: byId('content', HTMLElement),
  charts: byId('charts', HTMLElement),
  volumeSummary: byId('volume-summary', HTMLElement),
  latencySummary: byId('latency-summary', HTMLElement),
  histogramPanel: byId('histogram-panel', HTMLElement),
  histogramTool: byId('histogram-tool', HTMLElement),
  histogramSummary: byId('histogram-summary', HTMLElement),
  tools: byId('tools', HTMLTableElement),
  keys: byId('keys', HTMLTableElement),
  namespaces: byId('namespaces', HTMLTableElement),
  context: byId('context', HTMLTableElement),
  contextTotals: byId('context-totals', HTMLElement),
  events: byId('events', HTMLTableElement),
};

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) ?? '',
  paused: false,
  authFailed: false,
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  controller: null as AbortController | null,
  generation: 0,
  stale: false,
  lastUpdated: null as Date | null,
};

const timeCharts = new TimeCharts(
  byId('volume-chart', HTMLElement),
  byId('latency-chart', HTMLElement),
);
const histogram = new HistogramChart(byId('histogram-chart', HTMLElement));
const alarms = new DriftAlarms(
  byId('alarms', HTMLElement),
  () => state.key,
  () => void refresh(),
);
const navigation = new FilterNavigation((filters) => {
  // Shown again with the chosen tool's own histogram, once it is fetched.
  if (filters.tool === null) showHistogram(filters);
  void refresh();
});

// ---- refresh cycle ----
async function refresh(): Promise<void> {
  clearTimeout(state.timer);
  state.timer = undefined;
  if (!state.key) return showDisconnected();
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const generation = ++state.generation;
  const { signal } = controller;
  const filters = navigation.filters;
  const range = RANGES[filters.range];
  const now = Date.now();
  const from = new Date(now - range.ms).toISOString();
  const ask = <E extends keyof Answers>(endpoint: E, extra?: Record<string, string>, all = false) =>
    getAnswer(endpoint, apiParams(all ? null : filters, from, extra), state.key, signal);
  const filtered = isFiltered(filters);
  ui.content.setAttribute('aria-busy', 'true');
  ui.welcome.hidden = true;
  let drawing = false;
  try {
    // A key no answer has accepted yet (just entered, or refused last time) is tried with one
    // request before the others: a mistyped key then costs one refused attempt, where nine at
    // once used up the client's allowance of failures (429) in two tries.
    const summaryAnswer = ask('summary');
    if (state.lastUpdated === null) await summaryAnswer;
    // The drift alarms are of every namespace whatever the filters, and a pins answer that fails
    // (no pin store, the store away) is a note on the page, not a failed refresh.
    const pins = getAnswer('pins', new URLSearchParams(), state.key, signal).then(
      (answer) => ({ answer, failure: null }),
      (error: unknown) => ({
        answer: null,
        failure: error instanceof Error ? error.message : String(error),
      }),
    );
    const [
      summary,
      series,
      tools,
      keys,
      namespaces,
      context,
      events,
      pinned,
      buckets,
      allNamespaces,
      allKeys,
      allServers,
    ] = await Promise.all([
      summaryAnswer,
      ask('timeseries', { bucket: range.bucket }),
      ask('tools', { limit: '10' }),
      ask('keys'),
      ask('namespaces'),
      ask('context'),
      ask('events', { limit: '15' }),
      pins,
      filters.tool === null ? null : ask('histogram'),
      // The filter choices come from the whole range, not from the filtered answer.
      filtered ? ask('namespaces', undefined, true) : null,
      filtered ? ask('keys', undefined, true) : null,
      // No table shows the virtual servers: they are asked for the select's choices only.
      ask('servers', undefined, true),
    ]);
    if (generation !== state.generation) return;
    drawing = true;
    ui.content.hidden = false; // before the charts measure their width
    renderCards(summary);
    showHistogram(filters);
    timeCharts.draw(series, range, now);
    ui.volumeSummary.textContent = volumeSentence(series, range);
    ui.latencySummary.textContent = latencySentence(series, range, summary);
    if (buckets) {
      histogram.draw(buckets.buckets);
      ui.histogramSummary.textContent = histogramSentence(buckets.buckets, summary);
    }
    for (const label of document.querySelectorAll('.panel .bucket')) label.textContent = range.per;
    renderTools(ui.tools, tools, navigation);
    renderKeys(ui.keys, keys, navigation);
    renderNamespaces(ui.namespaces, namespaces, navigation);
    renderContext(ui.context, ui.contextTotals, context, navigation);
    renderEvents(ui.events, events.events, navigation);
    alarms.render(pinned.answer, pinned.failure);
    navigation.setChoices({
      server: allServers.map((s) => s.server),
      namespace: (allNamespaces ?? namespaces).map((n) => n.namespace),
      tenant: (allKeys ?? keys).map((k) => k.tenant),
    });
    sessionStorage.setItem(KEY_STORAGE, state.key);
    state.authFailed = false;
    state.lastUpdated = new Date();
    hideAlert();
  } catch (error) {
    if (signal.aborted || generation !== state.generation) return;
    controller.abort(); // the other calls of this refresh are no use now
    if (drawing) {
      console.error(error);
      showMessage(`The dashboard could not show the answer (${String(error)}). Reload the page.`);
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
function schedule(): void {
  clearTimeout(state.timer);
  state.timer = undefined;
  if (state.paused || state.authFailed || !state.key) return;
  state.timer = setTimeout(
    () => {
      state.timer = undefined;
      if (document.hidden) state.stale = true;
      else void refresh();
    },
    Number(ui.interval.value) * 1000,
  );
}

function showUpdated(): void {
  ui.updated.classList.toggle('paused', state.paused);
  if (!state.key) ui.updated.textContent = 'Not connected';
  else if (state.authFailed) ui.updated.textContent = 'Stopped: key refused';
  else if (!state.lastUpdated) {
    ui.updated.textContent = state.paused ? 'Auto-refresh paused' : 'Waiting for data…';
  } else {
    const time = state.lastUpdated.toLocaleTimeString();
    ui.updated.textContent = state.paused
      ? `Paused · last updated ${time}`
      : `Last updated ${time}`;
  }
  ui.updated.title = state.lastUpdated ? state.lastUpdated.toString() : '';
}

function showError(error: unknown): void {
  const retry = state.paused ? '' : ' Retrying at the next refresh.';
  let text: string;
  if (error instanceof ApiError && error.status === 401) {
    text = `The admin key was not accepted (401 Unauthorized): ${error.message}. Check the key and connect again.`;
    sessionStorage.removeItem(KEY_STORAGE);
  } else if (error instanceof ApiError && error.status === 403) {
    text = `This key may not see these analytics (403 Forbidden): ${error.message}.`;
  } else if (error instanceof ApiError) {
    text = `The analytics API answered ${error.status}: ${error.message}.${retry}`;
  } else {
    const reason = error instanceof Error ? error.message : String(error);
    text = `Cannot reach the analytics service (${reason}).${retry}`;
  }
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    // A refused key stops the refresh until the person changes it; figures shown so far
    // belonged to a key that no longer reads them.
    state.authFailed = true;
    state.lastUpdated = null;
    resetView();
  } else if (state.lastUpdated) {
    text += ` The figures below are from ${state.lastUpdated.toLocaleTimeString()}.`;
  }
  showMessage(text);
}

function showMessage(text: string): void {
  ui.alert.textContent = text;
  ui.alert.hidden = false;
}

function hideAlert(): void {
  ui.alert.hidden = true;
  ui.alert.textContent = '';
}

function showDisconnected(): void {
  state.controller?.abort();
  state.controller = null;
  state.generation++;
  state.lastUpdated = null;
  ui.content.setAttribute('aria-busy', 'false');
  ui.welcome.hidden = false;
  hideAlert();
  resetView();
  showUpdated();
}

function resetView(): void {
  ui.content.hidden = true;
  renderCards(null);
  for (const table of [ui.tools, ui.keys, ui.namespaces, ui.context, ui.events]) {
    table.tBodies[0].replaceChildren();
    table.tFoot?.replaceChildren();
  }
  ui.contextTotals.textContent = '';
  alarms.clear();
  timeCharts.clear();
  histogram.clear();
  for (const summary of [ui.volumeSummary, ui.latencySummary, ui.histogramSummary]) {
    summary.textContent = '';
  }
}

/** The histogram panel, for a chosen tool only. */
function showHistogram(filters: PageFilters): void {
  const shown = filters.tool !== null;
  ui.histogramPanel.hidden = !shown;
  ui.charts.classList.toggle('with-histogram', shown);
  ui.histogramTool.textContent = shown
    ? `${filters.namespace ?? 'every namespace'} / ${filters.tool}`
    : '';
  if (!shown) histogram.clear();
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

ui.key.value = state.key;
if (state.key) void refresh();
else showDisconnected();
