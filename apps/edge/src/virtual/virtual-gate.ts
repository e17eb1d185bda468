import type { ListedTool } from '#common';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import type { Gate, ListReview, ToolCatalog, ToolGate } from '../pins/tool-catalog.js';
import type { ServerNames } from './server-names.js';

/** Where a tool of a merged list came from: set by the VirtualBackend on each tool it shows. */
export interface Provenance {
  namespace: string;
  prefixed: string;
  /** The backend's own definition (what the member's pin is taken on). */
  backend: Record<string, unknown>;
}

/**
 * The tools a virtual server's merge produced, each with its member and backend definition. A
 * tool object not in here was not made by the merge, and a gate never shows it.
 */
export const provenance = new WeakMap<object, Provenance>();

/** Tools of one list recorded with their tokens at most (as ToolCatalog does). */
const MAX_LISTED = 1_000;

/**
 * The tap's gate on a virtual server (SPEC §4 v2 Permissions, behaviour 12): a tool is shown and
 * callable only when every rule that applies lets it through, whichever name the rule is
 * written against: the member namespace's filter and the caller's scope on the backend's name
 * (as on the namespace's own route, so no server or prefix is a way around them), the server's
 * `tools` rules on the prefixed name, the caller's scope again on the name the client sees, and
 * in `block` pinning mode the member's pins.
 */
export class VirtualGate implements Gate {
  readonly decidesCalls = true;

  constructor(
    private readonly names: ServerNames,
    /** The server's `tools` rules (on prefixed names). */
    private readonly serverFilter: ToolFilter,
    /** The caller's scope (on the names the client sees). */
    private readonly scopeFilter: ToolFilter,
    /** A member's own gate (its filter and the caller's scope, on backend names; its pins). */
    private readonly memberGate: (namespace: string) => ToolGate | undefined,
    private readonly catalog: ToolCatalog,
  ) {}

  allowsCall(tool: unknown): boolean {
    if (typeof tool !== 'string' || !this.scopeFilter.allows(tool)) return false;
    const candidates = this.names.candidates(tool);
    if (candidates.length === 0 || !this.serverFilter.allows(candidates[0].prefixed)) return false;
    return candidates.some((c) => this.memberGate(c.namespace)?.allowsCall(c.backend) ?? false);
  }

  /** Whether a member's backend tool may be called (the backend routes a call only when it may). */
  allowsMember(namespace: string, backend: string, prefixed: string, shown: string): boolean {
    return (
      this.scopeFilter.allows(shown) &&
      this.serverFilter.allows(prefixed) &&
      (this.memberGate(namespace)?.allowsCall(backend) ?? false)
    );
  }

  reviewList(result: unknown, exchange: ExchangeRecorder): ListReview | undefined {
    if (!result || typeof result !== 'object') return undefined;
    const tools = (result as { tools?: unknown }).tools;
    if (!Array.isArray(tools)) return undefined;
    const listed: ListedTool[] = [];
    const kept: unknown[] = [];
    for (const tool of tools as unknown[]) {
      const from = tool && typeof tool === 'object' ? provenance.get(tool) : undefined;
      if (!from) continue;
      const shown = tool as Record<string, unknown>;
      const backendName = from.backend.name as string;
      const gate = this.memberGate(from.namespace);
      if (
        !gate ||
        !this.scopeFilter.allows(shown.name) ||
        !this.serverFilter.allows(from.prefixed) ||
        !gate.filter.allows(backendName)
      ) {
        continue;
      }
      const tokens = this.catalog.reviewMember(from.namespace, from.backend, shown, exchange);
      if (tokens === undefined) continue;
      kept.push(tool);
      if (listed.length < MAX_LISTED) listed.push({ tool: shown.name as string, tokens });
    }
    const changed = kept.length !== tools.length;
    if (changed) tools.splice(0, tools.length, ...kept);
    return { changed, listed };
  }
}
