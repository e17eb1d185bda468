import {
  type ConfigStore,
  canonicalJson,
  definitionHash,
  definitionOf,
  diffDefinitions,
  type ListedTool,
  MAX_PINNED_DEFINITION,
  type PinRecord,
  type PinStore,
  type StoredPin,
  type TokenCounter,
  type ToolDriftDetail,
} from '#common';
import type { Logger } from 'pino';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { ToolFilter } from '../filtering/tool-filter.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';

/** What the catalog knows of one tool definition, computed once per distinct text. */
interface ToolFacts {
  hash: string;
  /** Canonical JSON of the definition (what a pin keeps). */
  canonical: string;
  tokens: number;
}

/** Distinct definitions remembered; past it the memory starts over (recomputing is cheap). */
const MAX_FACTS = 4_096;
/** Pin writes in flight at most; past it a sighting waits for a later list (a flood of tools). */
const MAX_WRITES_IN_FLIGHT = 256;
/**
 * Longest tool name pinned (MCP names are 1-128 characters). A longer one is never pinned: in
 * block mode it is hidden, so no name can be made too long to check.
 */
const MAX_PINNED_NAME = 256;
/** Tools of one list recorded with their tokens at most (the event stays small). */
const MAX_LISTED = 1_000;
/** A failed pin write is logged at most this often (the metric counts each). */
const ERROR_LOG_INTERVAL_MS = 60_000;

/** The tools a list result keeps after the gate, and what the client receives of them. */
export interface ListReview {
  /** True when the gate removed a tool (the caller re-serialises the message). */
  changed: boolean;
  /** Each tool the client receives, with its definition's tokens. */
  listed: ListedTool[];
}

/**
 * Tool definitions as the edge relays them (SPEC §7 v2): their tokens for the context budget,
 * and their pins against rug pulls. Each definition a client receives is hashed (canonical JSON
 * of name, title, description, schemas and annotations) and compared with its namespace's pin in
 * the shared store: the first sight pins it, a different hash is a drift (recorded once, by the
 * edge whose compare-and-set write wins: a `tool_drift` event and a metric). In `block` mode a
 * drifted tool is hidden and its calls refused on every edge until an admin approves it.
 *
 * The store is never waited on: pins are read from its watch, writes run in the background, and
 * a store that is down holds up nothing (alert) or leaves the last known pins in force (block).
 */
export class ToolCatalog {
  private readonly facts = new Map<string, ToolFacts>();
  /** Writes in flight, by namespace/tool/hash: one per sighting, however many lists race. */
  private readonly writing = new Set<string>();
  private readonly gates = new WeakMap<ToolFilter, Map<string, ToolGate>>();
  private lastErrorLog = 0;

  constructor(
    private readonly config: ConfigStore,
    private readonly store: PinStore | undefined,
    private readonly tokens: TokenCounter,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
    private readonly edgeId: string,
    /** Whether closing the catalog closes the store (it made it, rather than being given it). */
    private readonly ownsStore = false,
  ) {}

  /** Follows the pin store (bounded wait: traffic never waits for it). */
  async start(): Promise<void> {
    await this.store?.watch(() => this.countDrifted(), 2_000);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.ownsStore) await this.store?.close();
  }

  /** The gate for one namespace's filter: cached per filter (itself cached per config and scope). */
  gate(namespace: string, filter: ToolFilter): ToolGate {
    let byNamespace = this.gates.get(filter);
    if (!byNamespace) {
      byNamespace = new Map();
      this.gates.set(filter, byNamespace);
    }
    let gate = byNamespace.get(namespace);
    if (!gate) {
      gate = new ToolGate(namespace, filter, this);
      byNamespace.set(namespace, gate);
    }
    return gate;
  }

  private get mode(): 'off' | 'alert' | 'block' {
    return this.store ? this.config.current.tool_pinning.mode : 'off';
  }

  /** Block mode: calls of drifted tools are refused. */
  get blocks(): boolean {
    return this.mode === 'block';
  }

  /** Block mode: a tool whose pin drifted is not called, whatever definition this edge saw last. */
  callable(namespace: string, tool: unknown): boolean {
    if (this.mode !== 'block' || typeof tool !== 'string') return true;
    return this.store!.get(namespace, tool)?.record.status !== 'drifted';
  }

  /**
   * Reviews the tools of a list result that the filter kept: pins and drifts, hides drifted
   * tools in block mode, counts what the client receives.
   */
  review(namespace: string, tools: unknown[], exchange: ExchangeRecorder): ListReview {
    const mode = this.mode;
    const listed: ListedTool[] = [];
    const kept: unknown[] = [];
    for (const tool of tools) {
      if (
        !tool ||
        typeof tool !== 'object' ||
        typeof (tool as { name?: unknown }).name !== 'string'
      ) {
        kept.push(tool);
        continue;
      }
      const name = (tool as { name: string }).name;
      const facts = this.factsOf(tool as Record<string, unknown>);
      if (mode !== 'off' && !this.pinned(namespace, name, facts, mode, exchange)) continue;
      kept.push(tool);
      if (listed.length < MAX_LISTED) listed.push({ tool: name, tokens: facts.tokens });
    }
    const changed = kept.length !== tools.length;
    if (changed) tools.splice(0, tools.length, ...kept);
    return { changed, listed };
  }

  /**
   * One tool of a virtual server's list: pinned on its member's namespace by the backend's
   * definition, counted as the client receives it (prefixed, overridden). The client's tokens,
   * or undefined when the tool is to be hidden (block mode, drifted).
   */
  reviewMember(
    namespace: string,
    backend: Record<string, unknown>,
    shown: Record<string, unknown>,
    exchange: ExchangeRecorder,
  ): number | undefined {
    const mode = this.mode;
    if (mode !== 'off' && typeof backend.name === 'string') {
      const facts = this.factsOf(backend);
      if (!this.pinned(namespace, backend.name, facts, mode, exchange)) return undefined;
    }
    return this.factsOf(shown).tokens;
  }

  /** Compares with the pin; false when the tool is to be hidden (block mode, drifted). */
  private pinned(
    namespace: string,
    name: string,
    facts: ToolFacts,
    mode: 'alert' | 'block',
    exchange: ExchangeRecorder,
  ): boolean {
    if (name.length > MAX_PINNED_NAME) return mode === 'alert';
    const pin = this.store!.get(namespace, name);
    if (!pin) {
      this.write(namespace, name, facts, undefined, exchange);
      return true;
    }
    const { record } = pin;
    if (record.hash !== facts.hash && record.drift?.hash !== facts.hash) {
      this.write(namespace, name, facts, pin, exchange);
    }
    return mode === 'alert' || (record.status !== 'drifted' && record.hash === facts.hash);
  }

  /** Pins a first sight, or records a drift from `pin`; in the background, once per sighting. */
  private write(
    namespace: string,
    name: string,
    facts: ToolFacts,
    pin: StoredPin | undefined,
    exchange: ExchangeRecorder,
  ): void {
    const sighting = `${namespace}/${name}#${facts.hash}`;
    if (this.writing.has(sighting) || this.writing.size >= MAX_WRITES_IN_FLIGHT) return;
    this.writing.add(sighting);
    const record = recordOf(namespace, name, facts, pin, this.edgeId);
    this.store!.put(record, pin?.revision)
      .then((written) => {
        if (!written || !pin) return;
        const detail: ToolDriftDetail = {
          previous_hash: pin.record.hash,
          hash: facts.hash,
          diff: record.drift!.diff,
          mode: this.mode === 'block' ? 'block' : 'alert',
        };
        this.metrics.toolDrifts.labels(namespace).inc();
        exchange.toolDrift(name, detail);
        this.logger.warn(
          { namespace, tool: name, previous_hash: detail.previous_hash, hash: detail.hash },
          `tool definition changed since it was pinned (${detail.mode}): ${detail.diff.split('\n')[0]}`,
        );
      })
      .catch((error: unknown) => {
        this.metrics.pinStoreErrors.inc();
        if (Date.now() - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
        this.lastErrorLog = Date.now();
        this.logger.warn(
          { err: String(error) },
          'cannot write to the pin store; pins last known apply',
        );
      })
      .finally(() => this.writing.delete(sighting));
  }

  private factsOf(tool: Record<string, unknown>): ToolFacts {
    const text = JSON.stringify(tool);
    let facts = this.facts.get(text);
    if (!facts) {
      const canonical = canonicalJson(definitionOf(tool));
      facts = { hash: definitionHash(canonical), canonical, tokens: this.tokens.count(text) };
      if (this.facts.size >= MAX_FACTS) this.facts.clear();
      this.facts.set(text, facts);
    }
    return facts;
  }

  private countDrifted(): void {
    const drifted = new Map<string, number>();
    for (const { record } of this.store!.list()) {
      const count = drifted.get(record.namespace) ?? 0;
      drifted.set(record.namespace, count + (record.status === 'drifted' ? 1 : 0));
    }
    this.metrics.driftedTools.reset();
    for (const [namespace, count] of drifted)
      this.metrics.driftedTools.labels(namespace).set(count);
  }
}

function diffOf(pinned: string | null, current: string): string {
  if (pinned === null) return '~ (definition): too large to keep; its hash changed';
  return diffDefinitions(JSON.parse(pinned), JSON.parse(current));
}

/**
 * What the tap asks about the tools a client may see and call on one route: a namespace's
 * (ToolGate) or a virtual server's (virtual/virtual-gate.ts).
 */
export interface Gate {
  /** Calls are decided here: the backend gets exactly the objects checked, re-serialised. */
  readonly decidesCalls: boolean;
  allowsCall(tool: unknown): boolean;
  /** Filters a result carrying a `tools` array in place; undefined for any other result. */
  reviewList(result: unknown, exchange: ExchangeRecorder): ListReview | undefined;
}

/**
 * What the tap asks about one namespace's tools, for one principal: the filter's rules, then
 * the pins. Used for calls (hidden or drifted: never delivered) and for list results.
 */
export class ToolGate implements Gate {
  constructor(
    readonly namespace: string,
    readonly filter: ToolFilter,
    private readonly catalog: ToolCatalog,
  ) {}

  /**
   * Whether calls are decided here (a rule hides tools, or drifted tools are blocked): then the
   * backend must get exactly the objects checked, re-serialised, never the client's bytes.
   */
  get decidesCalls(): boolean {
    return !this.filter.allowsEverything || this.catalog.blocks;
  }

  allowsCall(tool: unknown): boolean {
    return this.filter.allows(tool) && this.catalog.callable(this.namespace, tool);
  }

  /**
   * Filters a result that carries a `tools` array, in place, whatever it answers (the tap
   * judges a message by what it is), and reviews what is left. Undefined for any other result.
   */
  reviewList(result: unknown, exchange: ExchangeRecorder): ListReview | undefined {
    if (!result || typeof result !== 'object') return undefined;
    const tools = (result as { tools?: unknown }).tools;
    if (!Array.isArray(tools)) return undefined;
    const filtered = this.filter.filterListResult(result);
    const review = this.catalog.review(
      this.namespace,
      (result as { tools: unknown[] }).tools,
      exchange,
    );
    return { changed: filtered || review.changed, listed: review.listed };
  }
}

/** The pin of a first sight, or `pin` marked drifted to `facts`. */
function recordOf(
  namespace: string,
  name: string,
  facts: ToolFacts,
  pin: StoredPin | undefined,
  edgeId: string,
): PinRecord {
  const now = new Date().toISOString();
  const definition = facts.canonical.length <= MAX_PINNED_DEFINITION ? facts.canonical : null;
  if (pin) {
    const diff = diffOf(pin.record.definition, facts.canonical);
    const drift = { seen_at: now, hash: facts.hash, definition, tokens: facts.tokens, diff };
    return { ...pin.record, status: 'drifted', drift: { ...drift, edge_id: edgeId } };
  }
  return {
    namespace,
    tool: name,
    hash: facts.hash,
    definition,
    tokens: facts.tokens,
    first_seen: now,
    status: 'pinned',
    drift: null,
    approved_at: null,
    approved_by: null,
  };
}
