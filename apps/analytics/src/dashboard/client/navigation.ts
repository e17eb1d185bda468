// The page's filters in the URL's query string (filters.ts): the selects, the links of the
// tables and the chips change them, each change a history entry, so a link is the page it
// shows and Back undoes a click.
import { byId, element, filterLink } from './dom.js';
import {
  FILTER_NAMES,
  type FilterChange,
  type FilterName,
  filtersQuery,
  isRange,
  type PageFilters,
  parseFilters,
  sameFilters,
  withChange,
} from './filters.js';
import type { Links } from './tables.js';

const LABELS: Record<FilterName, string> = {
  server: 'Virtual server',
  namespace: 'Namespace',
  tool: 'Tool',
  key_id: 'Key',
  tenant: 'Tenant',
};

/** The filters the toolbar offers as selects. */
const SELECT_NAMES = ['server', 'namespace', 'tenant'] as const satisfies readonly FilterName[];
type SelectName = (typeof SELECT_NAMES)[number];

/** The values each select offers, from the answers. */
export type FilterChoices = Record<SelectName, (string | null)[]>;

export class FilterNavigation implements Links {
  filters = readUrl();
  private readonly range = byId('range', HTMLSelectElement);
  private readonly selects: Record<SelectName, HTMLSelectElement> = {
    server: byId('server', HTMLSelectElement),
    namespace: byId('namespace', HTMLSelectElement),
    tenant: byId('tenant', HTMLSelectElement),
  };
  /** Shown once there is a virtual server to choose: most gateways have none. */
  private readonly serverFilter = byId('server-filter', HTMLLabelElement);
  private readonly bar = byId('filters', HTMLElement);
  private readonly chips = byId('filter-chips', HTMLUListElement);
  private readonly clear = byId('clear-filters', HTMLAnchorElement);

  /** `changed` runs after every change of the filters, whatever made it. */
  constructor(private readonly changed: (filters: PageFilters) => void) {
    this.range.addEventListener('change', () => {
      if (isRange(this.range.value)) this.go(withChange(this.filters, { range: this.range.value }));
    });
    for (const name of SELECT_NAMES) {
      const select = this.selects[name];
      select.addEventListener('change', () => {
        this.go(withChange(this.filters, { [name]: select.value || null }));
      });
    }
    // A plain click on a filter link stays on the page; with a modifier the browser opens it.
    document.addEventListener('click', (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
        return;
      const link = event.target instanceof Element ? event.target.closest('a[data-filter]') : null;
      if (!(link instanceof HTMLAnchorElement)) return;
      const url = new URL(link.href);
      if (url.origin !== location.origin || url.pathname !== location.pathname) return;
      event.preventDefault();
      this.go(parseFilters(url.search));
    });
    window.addEventListener('popstate', () => {
      this.filters = parseFilters(location.search);
      this.show();
      this.changed(this.filters);
    });
    this.show();
  }

  /** The URL of this page with `change` applied to its filters. */
  href(change: FilterChange): string {
    return location.pathname + filtersQuery(withChange(this.filters, change));
  }

  /** The choices of the selects, from the answers (kept while a refresh brings none). */
  setChoices(choices: FilterChoices): void {
    for (const name of SELECT_NAMES)
      setOptions(this.selects[name], choices[name], this.filters[name]);
    this.serverFilter.hidden = this.selects.server.options.length <= 1;
  }

  /** A new history entry, unless nothing changed. */
  private go(next: PageFilters): void {
    if (!sameFilters(next, this.filters)) {
      history.pushState(null, '', location.pathname + filtersQuery(next));
    }
    this.filters = next;
    this.show();
    this.changed(next);
  }

  /** The filters in force: the selects, and a chip for each, a link to the page without it. */
  private show(): void {
    const filters = this.filters;
    this.range.value = filters.range;
    const chips = FILTER_NAMES.filter((name) => filters[name] !== null).map((name) => {
      const chip = element('li', 'chip');
      chip.dataset.name = name;
      chip.append(element('span', 'chip-label', `${LABELS[name]}: `));
      chip.append(element('span', 'chip-value', filters[name] ?? ''));
      const label = `Remove the ${LABELS[name].toLowerCase()} filter`;
      const remove = filterLink('×', this.href({ [name]: null }), label);
      remove.classList.add('chip-remove');
      remove.setAttribute('aria-label', label);
      chip.append(remove);
      return chip;
    });
    this.chips.replaceChildren(...chips);
    this.bar.hidden = chips.length === 0;
    // Every filter off, the time range kept.
    this.clear.href = this.href(Object.fromEntries(FILTER_NAMES.map((name) => [name, null])));
    this.setChoices({ server: [], namespace: [], tenant: [] });
  }
}

/** The filters of the URL; a link of the earlier dashboard kept them in the fragment. */
function readUrl(): PageFilters {
  if (location.search === '' && location.hash.length > 1) {
    const filters = parseFilters(location.hash);
    history.replaceState(null, '', location.pathname + filtersQuery(filters));
    return filters;
  }
  return parseFilters(location.search);
}

// Rebuilt only when the choices change, so a live refresh does not close an open list.
function setOptions(
  select: HTMLSelectElement,
  values: (string | null)[],
  chosen: string | null,
): void {
  const present = [...select.options].slice(1).map((o) => o.value);
  const given = values.length > 0 ? values : present;
  const wanted = [...new Set(given.filter((v): v is string => typeof v === 'string' && v !== ''))];
  if (chosen !== null && !wanted.includes(chosen)) wanted.push(chosen);
  wanted.sort((a, b) => a.localeCompare(b));
  if (present.length !== wanted.length || present.some((v, i) => v !== wanted[i])) {
    select.replaceChildren(select.options[0], ...wanted.map((v) => new Option(v, v)));
  }
  select.value = chosen ?? '';
}
