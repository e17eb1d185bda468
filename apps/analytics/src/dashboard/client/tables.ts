// The page's tables. Every tool, key, namespace, virtual server and tenant in them is a link
// that filters the whole page (`links.href` builds its URL from the filters in force).
import type { RejectedOutcome } from '../../api/answers.js';
import type { EventRow, KeyStats, NamespaceStats, ToolStats } from './api.js';
import { barCell, cell, element, fillTable, filterLink, linkCell } from './dom.js';
import type { FilterChange, PageFilters } from './filters.js';
import { ago, count, millis, percent, plural } from './format.js';

export interface Links {
  filters: PageFilters;
  href(change: FilterChange): string;
}

const REJECTED: Record<RejectedOutcome, true> = {
  unauthorized: true,
  forbidden: true,
  rate_limited: true,
  bad_request: true,
  denied_tool: true,
};

/** What the keyless row of the keys table stands for. */
export const NO_CREDENTIAL = '(no valid credential)';
const NO_CREDENTIAL_HELP =
  'Requests refused before any key was known: no key, or an unknown, revoked or expired one. ' +
  'They belong to no key, so they get a row of their own.';

const toolName = (tool: string | null) => tool ?? '(unnamed)';

/** A tool is named within its namespace: choosing one chooses both. */
export function toolLink(links: Links, namespace: string, tool: string): HTMLAnchorElement {
  const link = filterLink(
    tool,
    links.href({ namespace, tool }),
    `Show only ${namespace} / ${tool}`,
  );
  link.classList.add('tool');
  return link;
}

/**
 * A tool's cell: the tool first, its namespace after it, muted, so a narrow cell cuts the
 * namespace, not the name that tells one tool from another.
 */
export function toolCell(links: Links, namespace: string, tool: HTMLElement): HTMLTableCellElement {
  const name = element('td', 'tool-cell');
  const where = element('span', 'in-namespace');
  where.append(' · ', namespaceLink(links, namespace));
  name.append(tool, where);
  return name;
}

/** Choosing a namespace drops the tool chosen (a tool of another namespace would leave nothing). */
export function namespaceLink(links: Links, namespace: string): HTMLAnchorElement {
  const link = filterLink(
    namespace,
    links.href({ namespace, tool: null }),
    `Show only namespace ${namespace}`,
  );
  link.classList.add('ns');
  return link;
}

/**
 * Choosing a virtual server drops the namespace and tool chosen: they may be of no member of it,
 * and a call through it is of its member namespace, not of the server's name.
 */
export function serverLink(links: Links, server: string): HTMLAnchorElement {
  const link = filterLink(
    server,
    links.href({ server, namespace: null, tool: null }),
    `Show only virtual server ${server}`,
  );
  link.classList.add('server');
  return link;
}

function keyLink(links: Links, keyId: string): HTMLAnchorElement {
  return filterLink(keyId, links.href({ key_id: keyId }), `Show only key ${keyId}`);
}

function optional(links: Links, value: string | null, link: (v: string) => HTMLAnchorElement) {
  return value === null ? cell('—', 'muted') : linkCell(link(value));
}

function figures(row: { rejected: number; errors: number; error_rate: number }, withRate = true) {
  const cells = [cell(count(row.rejected), 'n'), cell(count(row.errors), 'n')];
  if (withRate) cells.push(cell(percent(row.error_rate), 'n'));
  return cells;
}

export function renderTools(table: HTMLTableElement, tools: ToolStats[], links: Links): void {
  const max = Math.max(0, ...tools.map((t) => t.calls));
  fillTable(table, tools, 'No tool calls in this range.', (t) => {
    const tr = element('tr');
    const name = toolCell(
      links,
      t.namespace,
      t.tool === null
        ? element('span', 'tool', toolName(null))
        : toolLink(links, t.namespace, t.tool),
    );
    name.title = `${t.namespace} / ${toolName(t.tool)}`;
    const selected = links.filters.tool !== null && links.filters.tool === t.tool;
    if (selected && links.filters.namespace === t.namespace) tr.classList.add('selected');
    tr.append(name, barCell(t.calls, max, t), ...figures(t), cell(millis(t.p95_ms), 'n'));
    return tr;
  });
}

type KeyRow = KeyStats & { label?: string; help?: string };

/**
 * The ten busiest keys, the others summed in one row, and the requests without a valid
 * credential in one more: with the total below, the table adds up to the Requests card.
 */
export function renderKeys(table: HTMLTableElement, keys: KeyStats[], links: Links): void {
  const keyed = keys.filter((k) => k.key_id !== null);
  const rows: KeyRow[] = keyed.slice(0, 10);
  const rest = keyed.slice(10);
  if (rest.length > 0) rows.push({ ...sum(rest), label: plural(rest.length, 'other key') });
  const keyless = keys.find((k) => k.key_id === null);
  if (keyless) rows.push({ ...keyless, label: NO_CREDENTIAL, help: NO_CREDENTIAL_HELP });
  const max = Math.max(0, ...rows.map((k) => k.requests));
  fillTable(table, rows, 'No requests in this range.', (k) => {
    const seen = cell(ago(k.last_seen), 'n');
    seen.title = new Date(k.last_seen).toLocaleString();
    const tr = element('tr');
    if (k.key_id !== null && k.label === undefined) {
      // The key, and its user after it (the cell's title holds both when it is cut).
      const name = linkCell(keyLink(links, k.key_id));
      if (k.user !== null) name.append(' ', element('span', 'muted', k.user));
      name.title = k.user === null ? k.key_id : `${k.key_id} (${k.user})`;
      tr.append(
        name,
        optional(links, k.tenant, (tenant) =>
          filterLink(tenant, links.href({ tenant }), `Show only tenant ${tenant}`),
        ),
      );
    } else {
      // A row of no one key: its label spans the key and tenant columns.
      const name = cell(k.label ?? '', 'muted summary-row');
      name.colSpan = 2;
      if (k.help) name.title = k.help;
      tr.classList.add(k.help ? 'keyless' : 'others');
      tr.append(name);
    }
    tr.append(barCell(k.requests, max, k), ...figures(k, false), seen);
    return tr;
  });
  const total = sum(keys);
  const foot = element('tr');
  const label = cell('All requests', 'summary-row');
  label.colSpan = 2;
  foot.append(label, cell(count(total.requests), 'n total'), ...figures(total, false));
  foot.append(element('td'));
  table.tFoot?.replaceChildren(...(keys.length > 0 ? [foot] : []));
}

function sum(keys: KeyStats[]): KeyStats {
  const requests = keys.reduce((n, k) => n + k.requests, 0);
  const rejected = keys.reduce((n, k) => n + k.rejected, 0);
  const errors = keys.reduce((n, k) => n + k.errors, 0);
  return {
    key_id: null,
    user: null,
    tenant: null,
    requests,
    rejected,
    errors,
    error_rate: requests - rejected > 0 ? errors / (requests - rejected) : 0,
    last_seen: keys.map((k) => k.last_seen).reduce((a, b) => (a > b ? a : b), ''),
  };
}

export function renderNamespaces(
  table: HTMLTableElement,
  namespaces: NamespaceStats[],
  links: Links,
): void {
  const max = Math.max(0, ...namespaces.map((n) => n.requests));
  fillTable(table, namespaces, 'No requests in this range.', (n) => [
    linkCell(namespaceLink(links, n.namespace)),
    barCell(n.requests, max, n),
    ...figures(n),
    cell(millis(n.p95_ms), 'n'),
  ]);
}

function outcomeClass(outcome: string): string {
  if (outcome === 'ok') return 'ok';
  return Object.hasOwn(REJECTED, outcome) ? 'rejected' : 'error';
}

/**
 * Where an event went: its namespace, and through a virtual server the server first (a call is
 * of a member namespace; the server's other events carry the server's name as namespace).
 */
function routeCell(links: Links, e: EventRow): HTMLTableCellElement {
  if (e.server === null) return linkCell(namespaceLink(links, e.namespace));
  const td = linkCell(serverLink(links, e.server));
  if (e.namespace !== e.server) td.append(' › ', namespaceLink(links, e.namespace));
  td.title = e.namespace === e.server ? e.server : `${e.server} › ${e.namespace}`;
  return td;
}

export function renderEvents(table: HTMLTableElement, events: EventRow[], links: Links): void {
  fillTable(table, events, 'No events in this range.', (e) => {
    const time = cell(new Date(e.ts).toLocaleTimeString());
    time.title = new Date(e.ts).toLocaleString();
    const what = element('td');
    what.append(e.direction === 'server_to_client' ? '← ' : '→ ');
    if (e.method === null) {
      // A per-minute row of rejected requests without a credential stands for e.count of them.
      what.append(
        (e.count > 1 ? plural(e.count, 'rejected HTTP request') : 'rejected HTTP request') +
          (e.client_network ? ` from ${e.client_network}` : ''),
      );
    } else {
      what.append(e.method);
      if (e.tool !== null) what.append(' · ', toolLink(links, e.namespace, e.tool));
    }
    what.title = what.textContent ?? '';
    const outcome = element('td');
    outcome.append(element('span', `outcome ${outcomeClass(e.outcome)}`, e.outcome));
    outcome.title = e.outcome;
    return [
      time,
      routeCell(links, e),
      optional(links, e.key_id, (keyId) => keyLink(links, keyId)),
      cell(e.client_name ?? '—', e.client_name === null ? 'muted' : undefined),
      what,
      outcome,
      cell(e.http_status === null ? '' : String(e.http_status), 'n'),
      cell(e.duration_ms === null ? '' : millis(e.duration_ms).replace(' ms', ''), 'n'),
    ];
  });
}
