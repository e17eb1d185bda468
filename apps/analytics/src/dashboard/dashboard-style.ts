/** The dashboard's stylesheet (served as `/dashboard.css`, so the CSP needs no inline styles). */
export const DASHBOARD_CSS = `
:root {
  --fg: #1b2130; --muted: #647084; --line: #e2e6ee; --bg: #f5f7fa; --panel: #fff;
  --accent: #2563eb; --accent-soft: #dbe6fd; --bad: #dc2626; --bad-soft: #fde8e8;
  --good: #15803d; --warn: #b45309; --latency: #7c3aed;
  --rejected: #d97706; --rejected-soft: #fdf0dc;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
button, input, select { font: inherit; color: inherit; }
input, select { padding: .35rem .5rem; border: 1px solid #c9d0dc; border-radius: 6px; background: #fff; }
button { padding: .35rem .8rem; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
button.quiet, .toolbar button { background: #fff; color: var(--fg); border-color: #c9d0dc; }
button[aria-pressed="true"] { background: #fff7e6; border-color: var(--warn); color: var(--warn); }
button:focus-visible, input:focus-visible, select:focus-visible, a:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
a { color: var(--accent); }

.top { display: flex; flex-wrap: wrap; align-items: center; gap: .75rem 1.5rem; padding: .8rem 1.5rem; background: #111827; color: #f3f4f6; }
.top h1 { margin: 0; font-size: 17px; font-weight: 600; }
.top h1 span { color: #93c5fd; font-weight: 500; }
.top .key { display: flex; align-items: center; gap: .5rem; flex-wrap: wrap; }
.top .key label { font-size: 13px; color: #cbd5e1; }
.top .key input { width: 18rem; max-width: 60vw; background: #1f2937; color: #f9fafb; border-color: #374151; }
.top .key button.quiet { background: transparent; color: #cbd5e1; border-color: #4b5563; }
.top .docs { margin-left: auto; color: #93c5fd; }

.toolbar { display: flex; flex-wrap: wrap; align-items: end; gap: .6rem 1rem; padding: .75rem 1.5rem; background: var(--panel); border-bottom: 1px solid var(--line); }
.toolbar label { display: flex; flex-direction: column; gap: .15rem; font-size: 12px; color: var(--muted); }
.toolbar select { min-width: 9rem; color: var(--fg); font-size: 14px; }
.toolbar .spacer { flex: 1; }
.updated { align-self: center; font-size: 12px; color: var(--muted); min-width: 11rem; }
.updated.paused { color: var(--warn); }

.alert { margin: 1rem 1.5rem 0; padding: .75rem 1rem; border: 1px solid #f5b5b5; border-left: 4px solid var(--bad); border-radius: 6px; background: var(--bad-soft); color: #7f1d1d; }
.welcome { margin: 1rem 1.5rem 0; padding: .75rem 1rem; border: 1px solid var(--accent-soft); border-radius: 6px; background: #eef4ff; color: #1e3a8a; }
[hidden] { display: none !important; }

.filters { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .75rem; padding: .5rem 1.5rem; background: #eef4ff; border-bottom: 1px solid var(--accent-soft); font-size: 13px; }
.filters-label { color: var(--muted); }
.filters ul { display: contents; list-style: none; }
.chip { display: inline-flex; align-items: center; gap: .25rem; max-width: 28rem; padding: .1rem .2rem .1rem .6rem; border: 1px solid #b7cbf5; border-radius: 999px; background: #fff; }
.chip-label { color: var(--muted); white-space: nowrap; }
.chip-value { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }
.chip-remove { display: inline-flex; align-items: center; justify-content: center; width: 1.4rem; height: 1.4rem; border-radius: 50%; text-decoration: none; color: var(--muted); }
.chip-remove:hover { background: var(--accent-soft); color: var(--fg); }
.filters .clear { margin-left: auto; }

/* Every row of the page is as wide as the window: grids of minmax(0, …) tracks never grow past
   it, and a table that still cannot fit scrolls inside its own panel (the last resort). */
main { padding: 1rem 1.5rem 2rem; display: grid; grid-template-columns: minmax(0, 1fr); gap: 1rem; }
main[aria-busy="true"] .value { opacity: .6; }
.alarms { display: grid; gap: .5rem; }
.alarm { padding: .75rem 1rem; border: 1px solid #f5b5b5; border-left: 4px solid var(--bad); border-radius: 6px; background: var(--bad-soft); color: #7f1d1d; min-width: 0; }
.alarm h3 { margin: 0 0 .25rem; font-size: 15px; }
.alarm-tool { font-family: ui-monospace, monospace; }
.alarm-facts { margin: 0 0 .5rem; font-size: 13px; }
/* The diff is the backend's text, of any length: wrapped, never widening the page. */
.alarm .diff { margin: 0 0 .6rem; padding: .5rem .7rem; max-height: 16rem; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.45 ui-monospace, monospace; background: #fff; border: 1px solid #f5b5b5; border-radius: 4px; color: var(--fg); }
.alarm-actions { display: flex; align-items: center; gap: .75rem; flex-wrap: wrap; }
.alarm .approve { background: var(--bad); border-color: var(--bad); }
.alarm .approve:disabled { opacity: .6; cursor: progress; }
.alarm-status { font-size: 13px; }
.alarm-note { margin: 0; font-size: 13px; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(7rem, 1fr)); gap: .75rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .65rem .9rem; display: flex; flex-direction: column; min-width: 0; cursor: help; }
.card .label { font-size: 12px; color: var(--muted); }
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .help { font-size: 11px; line-height: 1.25; color: var(--muted); }
.card[data-metric="errors"] .value, .card[data-metric="error_rate"] .value { color: var(--bad); }
.card[data-metric="rejected"] .value { color: var(--rejected); }
.card .value.zero { color: var(--fg) !important; }

.grid { display: grid; gap: 1rem; }
.grid.charts { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
.grid.charts.with-histogram { grid-template-columns: minmax(0, 5fr) minmax(0, 3fr) minmax(0, 4fr); }
@media (max-width: 75rem) { .grid.charts.with-histogram { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } .grid.charts.with-histogram > :first-child { grid-column: 1 / -1; } }
@media (max-width: 60rem) { .grid.charts, .grid.charts.with-histogram { grid-template-columns: minmax(0, 1fr); } }
.grid.tables { grid-template-columns: repeat(auto-fill, minmax(min(100%, 36rem), 1fr)); }
.panel { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem 1rem; min-width: 0; overflow-x: auto; }
.panel h2 { margin: 0 0 .6rem; font-size: 13px; font-weight: 600; letter-spacing: .03em; text-transform: uppercase; color: var(--muted); }
.panel h2 .bucket, .panel h2 .subject { text-transform: none; font-weight: 400; letter-spacing: 0; }
.chart { min-height: 230px; }
.summary { margin-top: .35rem; font-size: 12px; color: var(--muted); }
.uplot .u-legend { font-size: 12px; }

/* Fixed layout: the header's widths decide, so a long tool name truncates (its whole text in
   the cell's title) instead of pushing the table past its panel. */
table { width: 100%; border-collapse: collapse; table-layout: fixed; font-variant-numeric: tabular-nums; }
th { font-size: 12px; font-weight: 600; color: var(--muted); text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
td { padding: .32rem .45rem; border-bottom: 1px solid #f0f2f6; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
tfoot td { border-top: 1px solid var(--line); border-bottom: 0; font-weight: 600; }
tbody tr:hover { background: #f8fafc; }
tr.selected { background: #eef4ff; }
.n { text-align: right; }
th.n { width: 4.6rem; }
th.rate { width: 5.4rem; }
th.when { width: 5.6rem; }
th.tenant { width: 18%; }
th.keys-col { width: 6.2rem; }
.context-totals { margin: 0 0 .5rem; }
tr.unused td.unused-calls { color: var(--warn); font-weight: 600; }
.bar-col { width: 24%; }
.tool-cell .in-namespace { font-size: 12px; color: var(--muted); }
.tool-cell .in-namespace a { color: inherit; }
.bar { position: relative; display: flex; align-items: center; gap: .5rem; min-width: 0; }
.bar .fill { flex: none; height: .55rem; border-radius: 3px; background: var(--accent); min-width: 2px; }
.bar .fill.split { background: linear-gradient(90deg, var(--bad) var(--errors), var(--rejected) var(--errors) var(--refused), var(--accent) var(--refused)); }
.bar .count { font-variant-numeric: tabular-nums; }
td.empty { color: var(--muted); font-style: italic; text-align: center; padding: 1rem; }
a.filter { color: inherit; text-decoration: underline dotted #9aa6b8; text-underline-offset: 2px; }
a.filter:hover { color: var(--accent); text-decoration: underline; }
.tool-cell a.ns { color: var(--muted); }
.summary-row { font-style: italic; }
tr.keyless td:first-child { cursor: help; }
.outcome { display: inline-block; max-width: 100%; overflow: hidden; text-overflow: ellipsis; vertical-align: bottom; padding: 0 .45rem; border-radius: 999px; font-size: 12px; background: #e8f5ec; color: var(--good); }
.outcome.error { background: var(--bad-soft); color: var(--bad); }
.outcome.rejected { background: var(--rejected-soft); color: var(--warn); }
.muted { color: var(--muted); }

/* Recent events: the whole row of the page, its text columns sharing what the fixed ones leave. */
#events th.time { width: 6.5rem; }
#events th.ns, #events th.key, #events th.client { width: 13%; }
#events th.outcome-col { width: 9rem; }
#events th.status { width: 4.5rem; }
#events th.ms { width: 5rem; }
`;
