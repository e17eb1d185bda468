/** The dashboard's stylesheet (served as `/dashboard.css`, so the CSP needs no inline styles). */
export const DASHBOARD_CSS = `
:root {
  --fg: #1b2130; --muted: #647084; --line: #e2e6ee; --bg: #f5f7fa; --panel: #fff;
  --accent: #2563eb; --accent-soft: #dbe6fd; --bad: #dc2626; --bad-soft: #fde8e8;
  --good: #15803d; --warn: #b45309; --latency: #7c3aed;
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

main { padding: 1rem 1.5rem 2rem; display: grid; gap: 1rem; }
main[aria-busy="true"] .value { opacity: .6; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(8.5rem, 1fr)); gap: .75rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .65rem .9rem; display: flex; flex-direction: column-reverse; }
.card .label { font-size: 12px; color: var(--muted); }
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card[data-metric="errors"] .value, .card[data-metric="error_rate"] .value { color: var(--bad); }
.card .value.zero { color: var(--fg) !important; }

.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 34rem), 1fr)); gap: 1rem; }
.grid.charts { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
@media (max-width: 60rem) { .grid.charts { grid-template-columns: minmax(0, 1fr); } }
.panel { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem 1rem; min-width: 0; overflow-x: auto; }
.panel h2 { margin: 0 0 .6rem; font-size: 13px; font-weight: 600; letter-spacing: .03em; text-transform: uppercase; color: var(--muted); }
.panel h2 .bucket { text-transform: none; font-weight: 400; letter-spacing: 0; }
.chart { min-height: 230px; }
.summary { margin-top: .35rem; font-size: 12px; color: var(--muted); }
.uplot .u-legend { font-size: 12px; }

table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { font-size: 12px; font-weight: 600; color: var(--muted); text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: .32rem .45rem; border-bottom: 1px solid #f0f2f6; max-width: 16rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
tbody tr:hover { background: #f8fafc; }
.n { text-align: right; }
.bar-col { width: 32%; }
.bar { position: relative; display: flex; align-items: center; gap: .5rem; }
.bar .fill { height: .55rem; border-radius: 3px; background: var(--accent); min-width: 2px; }
.bar .fill.has-errors { background: linear-gradient(90deg, var(--accent) var(--ok, 100%), var(--bad) var(--ok, 100%)); }
.bar .count { font-variant-numeric: tabular-nums; }
td.empty { color: var(--muted); font-style: italic; text-align: center; padding: 1rem; }
.ns { color: var(--muted); }
.outcome { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: 12px; background: #e8f5ec; color: var(--good); }
.outcome.bad { background: var(--bad-soft); color: var(--bad); }
.muted { color: var(--muted); }
`;
