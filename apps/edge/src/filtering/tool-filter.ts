import type { NamespaceConfig, Principal, ToolRules } from '#common';

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

interface CompiledRules {
  allow: RegExp[];
  deny: RegExp[];
}

/**
 * Allow/deny tool filter: deny wins over allow; exact, case-sensitive names. Built from one or
 * more rule sets (a namespace's, then a principal's: SPEC §4, v2 Permissions), a tool is allowed
 * only when every set allows it, so a hidden tool is hidden the same way whichever set hides it.
 */
export class ToolFilter {
  private readonly rules: CompiledRules[];
  readonly allowsEverything: boolean;

  constructor(tools: ToolRules, ...scopes: ToolRules[]) {
    const sets = [tools, ...scopes];
    this.rules = sets.map((set) => ({
      allow: set.allow.map(globToRegExp),
      deny: set.deny.map(globToRegExp),
    }));
    this.allowsEverything = sets.every((set) => set.deny.length === 0 && set.allow.includes('*'));
  }

  allows(name: unknown): boolean {
    if (typeof name !== 'string') return false;
    for (const { allow, deny } of this.rules) {
      if (deny.some((pattern) => pattern.test(name))) return false;
      if (!allow.some((pattern) => pattern.test(name))) return false;
    }
    return true;
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

/** Distinct principal scopes kept per namespace filter; past it the cache starts over. */
const MAX_SCOPES = 1_024;

/** One compiled filter per namespace config object, rebuilt only when the config changes. */
const filters = new WeakMap<NamespaceConfig['tools'], ToolFilter>();
/** Per namespace config object: its filter intersected with each principal scope seen. */
const scoped = new WeakMap<NamespaceConfig['tools'], Map<string, ToolFilter>>();
/** A principal's scope as a string key, once per principal object (edges cache principals). */
const scopeKeys = new WeakMap<readonly ToolRules[], string>();

/**
 * The filter the tap applies for `principal` on `namespace` (or any config with `tools` rules: a
 * virtual server's): the namespace's own, intersected with the principal's tool scope (its key's and roles' rules). Compiled once per config generation and
 * distinct scope, never per request: the namespace's `tools` object is new with each config, and
 * principals with the same scope share one filter.
 */
export function toolFilterFor(
  namespace: Pick<NamespaceConfig, 'tools'>,
  principal?: Pick<Principal, 'tools'>,
): ToolFilter {
  let filter = filters.get(namespace.tools);
  if (!filter) {
    filter = new ToolFilter(namespace.tools);
    filters.set(namespace.tools, filter);
  }
  const scope = principal?.tools;
  if (!scope || scope.length === 0) return filter;
  let key = scopeKeys.get(scope);
  if (key === undefined) {
    key = JSON.stringify(scope.map((rules) => [rules.allow, rules.deny]));
    scopeKeys.set(scope, key);
  }
  let byScope = scoped.get(namespace.tools);
  if (!byScope) {
    byScope = new Map();
    scoped.set(namespace.tools, byScope);
  }
  let effective = byScope.get(key);
  if (!effective) {
    if (byScope.size >= MAX_SCOPES) byScope.clear();
    effective = new ToolFilter(namespace.tools, ...scope);
    byScope.set(key, effective);
  }
  return effective;
}
