import type { NamespaceConfig } from '#common';

/** Compiles a glob (`*` any run, `?` one character; everything else literal, case-sensitive). */
export function globToRegExp(glob: string): RegExp {
  let source = '^';
  for (const char of glob) {
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else source += char.replace(/[\\^$.+()|[\]{}]/g, '\\$&');
  }
  return new RegExp(`${source}$`, 's');
}

/** Allow/deny tool filter of one namespace: deny wins over allow; exact, case-sensitive names. */
export class ToolFilter {
  private readonly allow: RegExp[];
  private readonly deny: RegExp[];
  readonly allowsEverything: boolean;

  constructor(tools: NamespaceConfig['tools']) {
    this.allow = tools.allow.map(globToRegExp);
    this.deny = tools.deny.map(globToRegExp);
    this.allowsEverything = tools.deny.length === 0 && tools.allow.includes('*');
  }

  allows(name: unknown): boolean {
    if (typeof name !== 'string') return false;
    if (this.deny.some((pattern) => pattern.test(name))) return false;
    return this.allow.some((pattern) => pattern.test(name));
  }

  /** Filters a tools/list result in place; returns true when anything was removed. */
  filterListResult(result: unknown): boolean {
    if (this.allowsEverything || !result || typeof result !== 'object') return false;
    const tools = (result as { tools?: unknown }).tools;
    if (!Array.isArray(tools)) return false;
    const kept = tools.filter((tool) => this.allows((tool as { name?: unknown } | null)?.name));
    if (kept.length === tools.length) return false;
    (result as { tools: unknown[] }).tools = kept;
    return true;
  }
}

/** One compiled filter per namespace config object, rebuilt only when the config changes. */
const filters = new WeakMap<NamespaceConfig['tools'], ToolFilter>();
export function toolFilterFor(namespace: NamespaceConfig): ToolFilter {
  let filter = filters.get(namespace.tools);
  if (!filter) {
    filter = new ToolFilter(namespace.tools);
    filters.set(namespace.tools, filter);
  }
  return filter;
}
