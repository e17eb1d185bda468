// Building the page's elements. Every value from the API reaches the page through textContent,
// an attribute or a canvas: tool names, users and namespaces come from clients and must never
// become markup.
import { count } from './format.js';

/** The element with this id, of this type: the page and this module must agree. */
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`the page has no #${id} of the expected type`);
  return element;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A cell whose whole text shows on hover when the column truncates it. */
export function cell(text: string, className?: string): HTMLTableCellElement {
  const td = element('td', className, text);
  td.title = text;
  return td;
}

/**
 * A link that filters the whole page: a real URL (open it in a new tab, copy it, share it);
 * a plain click is taken over by the page (see main.ts), which keeps the browser history.
 */
export function filterLink(text: string, href: string, title: string): HTMLAnchorElement {
  const link = element('a', 'filter', text);
  link.href = href;
  link.title = title;
  link.dataset.filter = '';
  return link;
}

export function linkCell(link: HTMLAnchorElement, className?: string): HTMLTableCellElement {
  const td = element('td', className);
  td.append(link);
  return td;
}

/**
 * A bar proportional to the largest row, and its count: errors (red) and rejected requests
 * (amber) from its start, the requests that went well (blue) after them.
 */
export function barCell(
  value: number,
  max: number,
  parts: { errors: number; rejected: number },
): HTMLTableCellElement {
  const td = element('td', 'bar-cell');
  const bar = element('div', 'bar');
  const fill = element('span', 'fill');
  fill.style.width = `${max > 0 ? Math.max((value / max) * 70, 1) : 0}%`;
  if (value > 0 && parts.errors + parts.rejected > 0) {
    fill.classList.add('split');
    fill.style.setProperty('--errors', `${(parts.errors / value) * 100}%`);
    fill.style.setProperty('--refused', `${((parts.errors + parts.rejected) / value) * 100}%`);
  }
  bar.append(fill, element('span', 'count', count(value)));
  td.append(bar);
  td.title = `${count(value)}: ${count(parts.rejected)} rejected, ${count(parts.errors)} errors`;
  return td;
}

/** Replaces the table's rows; a row telling `emptyText` when there are none. */
export function fillTable<T>(
  table: HTMLTableElement,
  rows: readonly T[],
  emptyText: string,
  render: (row: T) => HTMLTableRowElement | HTMLTableCellElement[],
): void {
  const body = table.tBodies[0];
  if (rows.length === 0) {
    const td = cell(emptyText, 'empty');
    td.colSpan = table.tHead?.rows[0]?.cells.length ?? 1;
    const tr = element('tr');
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...rows.map((row) => {
      const rendered = render(row);
      if (rendered instanceof HTMLTableRowElement) return rendered;
      const tr = element('tr');
      tr.append(...rendered);
      return tr;
    }),
  );
}
