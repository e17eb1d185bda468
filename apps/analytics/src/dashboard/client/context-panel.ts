// The context budget panel (SPEC §7 v2 `GET /api/v1/context`): what the tool definitions cost
// the clients they are listed to, and the tools whose denial would save the most: those nobody
// called, largest first (the API's order).
import type { ContextBudget, ContextTool } from './api.js';
import { cell, element, fillTable } from './dom.js';
import { count, plural } from './format.js';
import { type Links, toolCell, toolLink } from './tables.js';

/** Rows shown: the head of the API's order is what is worth denying. */
const SHOWN = 10;

export function renderContext(
  table: HTMLTableElement,
  totalsLine: HTMLElement,
  budget: ContextBudget,
  links: Links,
): void {
  totalsLine.textContent = totalsSentence(budget);
  fillTable(table, budget.tools.slice(0, SHOWN), 'No tools/list answers in this range.', (t) => {
    const tr = element('tr');
    const unused = t.calls === 0;
    if (unused) {
      tr.classList.add('unused');
      tr.title = `Never called in this range: denying it saves ${plural(t.tokens, 'token')} in every listing.`;
    }
    const name = toolCell(links, t.namespace, toolLink(links, t.namespace, t.tool));
    name.title = `${t.namespace} / ${t.tool}`;
    tr.append(
      name,
      cell(count(t.tokens), 'n'),
      cell(count(t.calls), unused ? 'n unused-calls' : 'n'),
      cell(count(t.keys_listing), 'n'),
      cell(count(t.keys_calling), 'n'),
    );
    return tr;
  });
  const rest = budget.tools.slice(SHOWN);
  table.tFoot?.replaceChildren(...(rest.length > 0 ? [restRow(rest)] : []));
}

/** The tools past the first ten, in one row: how many, and their tokens. */
function restRow(rest: ContextTool[]): HTMLTableRowElement {
  const tr = element('tr');
  tr.append(
    cell(plural(rest.length, 'more tool'), 'summary-row'),
    cell(count(rest.reduce((sum, t) => sum + t.tokens, 0)), 'n'),
    element('td'),
    element('td'),
    element('td'),
  );
  return tr;
}

/** The totals in words: what a session carries, and what nobody uses. */
function totalsSentence({ totals }: ContextBudget): string {
  if (totals.tools === 0) return 'No tool lists were sent in this range.';
  const perSession =
    `A session is given ${plural(Math.round(totals.tokens_per_session), 'token')} of tool ` +
    `definitions on average (${plural(totals.sessions, 'session')}).`;
  if (totals.unused_tools === 0) return `${perSession} Every listed tool was called.`;
  return (
    `${perSession} Never called: ${count(totals.unused_tools)} of ${plural(totals.tools, 'tool')} ` +
    `listed, ${plural(totals.unused_tokens, 'token')} in every listing, ` +
    `${count(totals.unused_tokens_delivered)} delivered in this range.`
  );
}
