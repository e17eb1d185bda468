import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, GatewayError } from '#common';
import type { Logger } from 'pino';
import { idKey, isResponse, type RpcId } from '../jsonrpc/messages.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import { StreamableHttpBackend } from '../bridge/http-backend.js';
import { markRelated, relatedRequest } from '../bridge/related-request.js';
import type { ServerNames } from './server-names.js';
import { provenance, type VirtualGate } from './virtual-gate.js';

/** A member's backend connection, made for this session; `release` gives back what it held. */
export interface MemberConnection {
  transport: Transport;
  release(): void;
}

/**
 * Ends a backend connection made for a session: what it held is given back at once, then the
 * backend session is ended (DELETE for a Streamable HTTP one) and the transport closed.
 */
export async function endConnection(connection: MemberConnection): Promise<void> {
  connection.release();
  const { transport } = connection;
  transport.onclose = undefined;
  if (transport instanceof StreamableHttpBackend && transport.sessionId)
    await transport.terminateSession().catch(() => undefined);
  await transport.close().catch(() => undefined);
}

export interface VirtualBackendOptions {
  names: ServerNames;
  /** Opens a connection to a member's backend (throws when its namespace has no room). */
  connect: (namespace: string, logger: Logger) => MemberConnection | Promise<MemberConnection>;
  /** A member's `timeout_ms`: its calls are bounded by the session's timer, its start by this. */
  timeoutMs: (namespace: string) => number;
  gate: () => VirtualGate;
  /**
   * Whether the caller may use a member now (a member by the config in force, allowed by the
   * caller's latest scope): judged on every request, list and message, never once per session.
   */
  admits: (namespace: string) => boolean;
  metrics: EdgeMetrics;
  logger: Logger;
  /** The gateway's version, in the serverInfo of the merged initialize. */
  version: string;
  /** How long initialize waits for a member (default MEMBER_WAIT_MS). */
  memberWaitMs?: number;
  /**
   * Takes a request routed to a member from that member's own limits (a virtual server's call
   * counts against its member namespace's key × namespace limit); throws a GatewayError to refuse.
   */
  limit?: (namespace: string) => Promise<void>;
}

type Json = Record<string, unknown>;

/** How long a merged list, or a new session's initialize, waits for a member at most. */
const MEMBER_WAIT_MS = 5_000;
/** A member that went down is tried again after this, doubling up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
/** Pages of one member's resources read at most to find which member owns a URI. */
const MAX_OWNER_PAGES = 20;
/** Revisions the gateway speaks to the client of a virtual session (it is that client's server). */
const VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05', '2024-10-07'];

/** The merged lists, by method: the field of items and the name field (undefined: URIs kept). */
const LISTS: Record<
  string,
  {
    field: string;
    named?: 'tool' | 'prompt';
    capability: string;
    /** Where a member keeps what its pages said (for routing), and by which item field. */
    known: 'tools' | 'prompts' | 'resources' | 'templates';
    key: string;
  }
> = {
  'tools/list': { field: 'tools', named: 'tool', capability: 'tools', known: 'tools', key: 'name' },
  'prompts/list': {
    field: 'prompts',
    named: 'prompt',
    capability: 'prompts',
    known: 'prompts',
    key: 'name',
  },
  'resources/list': {
    field: 'resources',
    capability: 'resources',
    known: 'resources',
    key: 'uri',
  },
  'resources/templates/list': {
    field: 'resourceTemplates',
    capability: 'resources',
    known: 'templates',
    key: 'uriTemplate',
  },
};

class MemberError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One member of the session: its connection, state and what its lists said. */
class Member {
  state: 'idle' | 'connecting' | 'ready' | 'down' = 'idle';
  connection?: MemberConnection;
  ready?: Promise<void>;
  retryAt = 0;
  retryMs = FIRST_RETRY_MS;
  init?: Json;
  /** Requests of ours waiting for this member's answer, by our id. */
  readonly waiting = new Map<
    number,
    { resolve: (answer: Json) => void; reject: (error: Error) => void }
  >();
  /** Names its lists gave (for routing when members share a prefix), reset on list_changed. */
  tools?: Set<string>;
  prompts?: Set<string>;
  resources?: Set<string>;
  templates?: string[];
  /** Bumped with each connection: answers of an older one are not this one's. */
  generation = 0;

  constructor(readonly namespace: string) {}

  capability(name: string): boolean {
    const capabilities = this.init?.capabilities as Json | undefined;
    return capabilities?.[name] !== undefined && capabilities[name] !== null;
  }
}

/**
 * The backend side of a virtual server's session (SPEC §4 v2 behaviour 12): to the bridged
 * session it is one backend, so the client side (both client transports, answer streams, the
 * session id, forwarding between edges, DELETE) and the one message tap are the ones every
 * bridged session has. Behind it, one connection per member namespace (stdio child, legacy SSE,
 * Streamable HTTP, as the member's upstream says), opened at initialize with a bounded wait and
 * again on demand after it went down.
 *
 * - `initialize`: the members' capabilities merged, instructions labelled by member; the
 *   client's capabilities passed to each.
 * - Lists: one request to every member at once, merged (tools and prompts prefixed and
 *   overridden, URIs kept), one opaque cursor for the members that have more pages. A member
 *   that is down or slower than the bounded wait is left out (logged, counted in `/metrics`).
 * - Calls, gets, reads, subscriptions and completions go to the member that owns the name or
 *   URI, with the backend's name; cancellations follow them.
 * - Members' requests to the client (sampling, elicitation, roots) get ids of ours, so two
 *   members never collide, and the client's answers go back to the member that asked.
 *   Notifications pass; a member's `list_changed` also forgets what its lists said.
 *
 * Requests of ours to members carry ids of ours; a member's answer reaches the client with the
 * client's id. A call to a member that is down is answered with the gateway's upstream error.
 */
export class VirtualBackend implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  /** Answers a client's request with the gateway's error (the bridged session records it). */
  onfailure?: (id: RpcId, code: ErrorCode, message: string) => void;

  private readonly members: Member[];
  private nextId = 1;
  /** The client's initialize params, sent on to every member (and to a member that comes back). */
  private initParams?: Json;
  private initialized = false;
  /**
   * Client requests routed to a member, by the client's id: cancellations follow them, and a
   * member's request to the client belongs to one of them or to none.
   */
  private readonly routed = new Map<string, { member: Member; id: number; clientId: RpcId }>();
  /** Members' requests to the client, by our id. */
  private readonly asked = new Map<string, { member: Member; id: RpcId; generation: number }>();
  private closed = false;
  private readonly logger: Logger;

  constructor(private readonly options: VirtualBackendOptions) {
    this.members = options.names.members.map((ns) => new Member(ns));
    this.logger = options.logger.child({ server: options.names.server });
  }

  /** Members connect at the client's initialize (or later, on demand). */
  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Returns at once: answers arrive through `onmessage` (or `onfailure`). */
  send(message: JSONRPCMessage): Promise<void> {
    const value = message as Json;
    if (isResponse(value)) {
      this.answerMember(value);
      return Promise.resolve();
    }
    const method = typeof value.method === 'string' ? value.method : '';
    if (!('id' in value) || value.id === undefined || value.id === null) {
      this.notify(method, value);
      return Promise.resolve();
    }
    const id = value.id as RpcId;
    this.request(id, method, (value.params as Json | undefined) ?? {}).then(
      (result) => this.toClient({ jsonrpc: '2.0', id, ...result }),
      (error: unknown) => {
        if (error instanceof MemberError) this.onfailure?.(id, error.code, error.message);
        else this.toClient(rpcError(id, -32603, `Internal error: ${String(error)}`));
      },
    );
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.members.map((member) => this.disconnect(member)));
    this.onclose?.();
  }

  // ---- client to members ----

  /** A client request: answered here (merged, local) or routed; resolves to `{result}` or `{error}`. */
  private async request(id: RpcId, method: string, params: Json): Promise<Json> {
    switch (method) {
      case 'initialize':
        return { result: await this.initialize(params) };
      case 'ping':
        return { result: {} };
      case 'tools/list':
      case 'prompts/list':
      case 'resources/list':
      case 'resources/templates/list':
        return this.mergedList(method, params);
      case 'tools/call':
      case 'prompts/get':
        return this.byName(id, method, params, method === 'tools/call');
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        return this.byUri(id, method, params);
      case 'completion/complete':
        return this.completion(id, params);
      case 'logging/setLevel':
        await Promise.all(
          this.usableMembers()
            .filter((member) => member.state === 'ready' && member.capability('logging'))
            .map((member) => this.ask(member, method, params).catch(() => undefined)),
        );
        return { result: {} };
      default:
        return { error: { code: -32601, message: `Method not found: ${method}` } };
    }
  }

  private notify(method: string, value: Json): void {
    if (method === 'notifications/initialized') {
      this.initialized = true;
      for (const member of this.usableMembers())
        if (member.state === 'ready') this.post(member, value);
      return;
    }
    if (method === 'notifications/cancelled') {
      const params = (value.params as Json | undefined) ?? {};
      const requestId = params.requestId as RpcId | undefined;
      const route = requestId === undefined ? undefined : this.routed.get(idKey(requestId));
      if (!route) return;
      this.routed.delete(idKey(requestId!));
      this.post(route.member, { ...value, params: { ...params, requestId: route.id } });
      return;
    }
    // A request's method without an id (a `tools/call` sent as a notification) is no MCP
    // notification: it would reach every member under a name only one of them may own, past
    // the others' filters. Dropped; roots/list_changed and the other notifications reach all.
    if (!method.startsWith('notifications/')) return;
    for (const member of this.usableMembers())
      if (member.state === 'ready') this.post(member, value);
  }

  /** The client's answer to a member's request: to that member, with the member's own id. */
  private answerMember(value: Json): void {
    const key = idKey(value.id as RpcId);
    const asked = this.asked.get(key);
    if (!asked) return;
    this.asked.delete(key);
    if (asked.member.generation !== asked.generation || asked.member.state !== 'ready') return;
    if (!this.usable(asked.member)) {
      this.post(asked.member, refusal(asked.id, 'the client is no longer reachable through it'));
      return;
    }
    this.post(asked.member, { ...value, id: asked.id });
  }

  private async initialize(params: Json): Promise<Json> {
    this.initParams = params;
    await Promise.all(
      this.usableMembers().map((member) =>
        within(this.ready(member), this.options.memberWaitMs ?? MEMBER_WAIT_MS).catch(
          (error: unknown) => this.leftOut(member, error),
        ),
      ),
    );
    return this.merged(params.protocolVersion);
  }

  /**
   * The initialize result of the members the caller may use now that are up: their capabilities
   * merged, their instructions labelled by member (a 2026-07-28 `server/discover` asks it anew).
   */
  merged(requested?: unknown): Json {
    const capabilities: Json = {};
    const instructions: string[] = [];
    for (const member of this.usableMembers()) {
      if (member.state !== 'ready' || !member.init) continue;
      mergeCapabilities(capabilities, member.init.capabilities);
      if (typeof member.init.instructions === 'string' && member.init.instructions.trim()) {
        const prefix = this.options.names.prefixOf(member.namespace);
        const label = prefix ? ` (tools and prompts named ${prefix}…)` : '';
        instructions.push(`## ${member.namespace}${label}\n${member.init.instructions.trim()}`);
      }
    }
    return {
      protocolVersion:
        typeof requested === 'string' && VERSIONS.includes(requested) ? requested : VERSIONS[0],
      capabilities,
      serverInfo: { name: this.options.names.server, version: this.options.version },
      ...(instructions.length > 0 && { instructions: instructions.join('\n\n') }),
    };
  }

  /**
   * One page of a merged list: every member that has one (or, with a cursor, the members the
   * cursor names) asked at once; items renamed and merged in member order; the members with
   * more pages named in the next cursor.
   */
  private async mergedList(method: string, params: Json): Promise<Json> {
    const list = LISTS[method];
    let pages: Array<[Member, string | undefined]>;
    if (params.cursor === undefined) {
      pages = this.members.map((member) => [member, undefined]);
    } else {
      const cursor = decodeCursor(params.cursor, this.members);
      if (!cursor) return { error: { code: -32602, message: 'Invalid params: unknown cursor' } };
      pages = cursor;
    }
    // A member removed from the server, or one the caller lost, since the session (or the
    // cursor) began is no longer asked.
    pages = pages.filter(([member]) => this.usable(member));
    const answers = await Promise.all(
      pages.map(async ([member, cursor]) => {
        try {
          await within(this.ready(member), MEMBER_WAIT_MS);
          if (!member.capability(list.capability)) return undefined;
          const memberParams: Json = { ...params };
          if (cursor === undefined) delete memberParams.cursor;
          else memberParams.cursor = cursor;
          const answer = await within(this.ask(member, method, memberParams), MEMBER_WAIT_MS);
          return { member, cursor, answer };
        } catch (error) {
          this.leftOut(member, error);
          return undefined;
        }
      }),
    );
    const items: unknown[] = [];
    const next: Array<[string, string]> = [];
    const seen = new Map<string, string>();
    for (const page of answers) {
      if (!page) continue;
      const result = page.answer.result as Json | undefined;
      const entries = result?.[list.field];
      if (!Array.isArray(entries)) continue;
      this.remember(page.member, method, entries, page.cursor === undefined);
      for (const entry of entries) {
        const shown = this.shown(page.member, entry, list.named);
        if (!shown) continue;
        if (list.named) {
          const name = shown.name as string;
          const owner = seen.get(name);
          if (owner !== undefined) {
            this.collision(name, owner, page.member.namespace);
            continue;
          }
          seen.set(name, page.member.namespace);
        }
        items.push(shown);
      }
      if (typeof result?.nextCursor === 'string')
        next.push([page.member.namespace, result.nextCursor]);
    }
    const result: Json = { [list.field]: items };
    if (next.length > 0) result.nextCursor = encodeCursor(next);
    return { result };
  }

  /** What the client sees of one item of a member's list (undefined: not an item to show). */
  private shown(
    member: Member,
    entry: unknown,
    named: 'tool' | 'prompt' | undefined,
  ): Json | undefined {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return undefined;
    const item = entry as Json;
    if (!named) return item;
    if (typeof item.name !== 'string') return undefined;
    const { names } = this.options;
    const prefixed = names.prefixOf(member.namespace) + item.name;
    if (named === 'prompt') return { ...item, name: prefixed };
    const override = names.overrideOf(prefixed);
    const shown: Json = { ...item, name: override?.name ?? prefixed };
    if (override?.title !== undefined) shown.title = override.title;
    if (override?.description !== undefined) shown.description = override.description;
    if (override?.annotations !== undefined)
      shown.annotations = { ...(item.annotations as Json | undefined), ...override.annotations };
    provenance.set(shown, { namespace: member.namespace, prefixed, backend: item });
    return shown;
  }

  /** What a member's list page said, for routing by name or URI. */
  private remember(member: Member, method: string, entries: unknown[], first: boolean): void {
    const { known, key } = LISTS[method];
    const values = entries
      .map((entry) => (entry as Json | null)?.[key])
      .filter((value): value is string => typeof value === 'string');
    if (known === 'templates') {
      member.templates = first ? values : [...(member.templates ?? []), ...values];
      return;
    }
    const set = first || !member[known] ? new Set<string>() : member[known];
    for (const value of values) set.add(value);
    member[known] = set;
  }

  /** A tool call or prompt get: to the member whose name it is, with the backend's name. */
  private async byName(id: RpcId, method: string, params: Json, tool: boolean): Promise<Json> {
    const name = params.name;
    const notFound = {
      error: tool
        ? { code: -32602, message: `Tool not found: ${String(name)}` }
        : { code: -32602, message: `Prompt not found: ${String(name)}` },
    };
    if (typeof name !== 'string') return notFound;
    const target = await this.owner(name, tool);
    if (!target) return notFound;
    const gate = this.options.gate();
    if (tool && !gate.allowsMember(target.member.namespace, target.backend, target.prefixed, name))
      return notFound;
    return this.routeTo(target.member, id, method, { ...params, name: target.backend });
  }

  /** The member a name belongs to: by prefix, and by the members' lists when they share one. */
  private async owner(
    name: string,
    tool: boolean,
  ): Promise<{ member: Member; backend: string; prefixed: string } | undefined> {
    const candidates = this.options.names.candidates(name, tool);
    const matches = candidates
      .map((c) => ({ ...c, member: this.members.find((m) => m.namespace === c.namespace)! }))
      .filter((match) => this.usable(match.member));
    if (matches.length <= 1) return matches[0];
    const method = tool ? 'tools/list' : 'prompts/list';
    const field = tool ? 'tools' : 'prompts';
    const known = async (match: (typeof matches)[number]) => {
      if (!match.member[field]) await this.readAll(match.member, method).catch(() => undefined);
      return match.member[field]?.has(match.backend) ?? false;
    };
    const owners = [];
    for (const match of matches) if (await known(match)) owners.push(match);
    // Two members with the same name: the merged list shows neither, and neither is called.
    return owners.length === 1 ? owners[0] : undefined;
  }

  /** A resource read or (un)subscription: to the member that listed the URI (or its template). */
  private async byUri(id: RpcId, method: string, params: Json): Promise<Json> {
    const uri = params.uri;
    const member = typeof uri === 'string' ? await this.uriOwner(uri) : undefined;
    if (!member) return { error: { code: -32002, message: `Resource not found: ${String(uri)}` } };
    return this.routeTo(member, id, method, params);
  }

  private async uriOwner(uri: string): Promise<Member | undefined> {
    const members = this.usableMembers();
    const find = () =>
      members.find((m) => m.resources?.has(uri)) ??
      members.find((m) => m.templates?.some((t) => uri.startsWith(templateStem(t))));
    let found = find();
    if (found) return found;
    await Promise.all(
      members.map(async (member) => {
        try {
          await within(this.ready(member), MEMBER_WAIT_MS);
          if (!member.capability('resources')) return;
          await this.readAll(member, 'resources/list');
          await this.readAll(member, 'resources/templates/list');
        } catch {
          // A member that cannot say owns nothing this time.
        }
      }),
    );
    found = find();
    if (found) return found;
    const withResources = members.filter((m) => m.capability('resources'));
    return withResources.length === 1 ? withResources[0] : undefined;
  }

  private async completion(id: RpcId, params: Json): Promise<Json> {
    const ref = params.ref as Json | undefined;
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const target = await this.owner(ref.name, false);
      if (target)
        return this.routeTo(target.member, id, 'completion/complete', {
          ...params,
          ref: { ...ref, name: target.backend },
        });
    } else if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const member = await this.uriOwner(ref.uri);
      if (member) return this.routeTo(member, id, 'completion/complete', params);
    }
    return { result: { completion: { values: [], hasMore: false } } };
  }

  /** Every page of one member's list, remembered (bounded). */
  private async readAll(member: Member, method: string): Promise<void> {
    let cursor: string | undefined;
    for (let page = 0; page < MAX_OWNER_PAGES; page++) {
      const answer = await within(
        this.ask(member, method, cursor === undefined ? {} : { cursor }),
        MEMBER_WAIT_MS,
      );
      const result = answer.result as Json | undefined;
      const entries = result?.[LISTS[method].field];
      if (Array.isArray(entries)) this.remember(member, method, entries, page === 0);
      cursor = typeof result?.nextCursor === 'string' ? result.nextCursor : undefined;
      if (cursor === undefined) return;
    }
  }

  /** A client request to one member, its answer returned as the member gave it (minus our id). */
  private async routeTo(member: Member, id: RpcId, method: string, params: Json): Promise<Json> {
    if (!this.usable(member))
      return { error: { code: -32602, message: `Invalid params: not found (${method})` } };
    try {
      await within(this.ready(member), this.options.timeoutMs(member.namespace));
    } catch (error) {
      this.leftOut(member, error);
      throw new MemberError(ErrorCode.UpstreamError, `Backend unavailable (${member.namespace})`);
    }
    if (this.options.limit) {
      try {
        await this.options.limit(member.namespace);
      } catch (error) {
        if (error instanceof GatewayError) throw new MemberError(error.code, error.message);
        throw error;
      }
    }
    const ours = this.nextId++;
    const key = idKey(id);
    this.routed.set(key, { member, id: ours, clientId: id });
    try {
      const answer = await this.ask(member, method, params, ours);
      const { result, error } = answer;
      return error === undefined ? { result } : { error };
    } catch {
      // Its connection went while the request waited (the reason is logged by `down`).
      throw new MemberError(ErrorCode.UpstreamError, `Backend unavailable (${member.namespace})`);
    } finally {
      if (this.routed.get(key)?.id === ours) this.routed.delete(key);
    }
  }

  // ---- members ----

  /** Resolves once the member is connected and initialized (connecting it if need be). */
  private ready(member: Member): Promise<void> {
    if (member.state === 'ready') return Promise.resolve();
    if (member.state === 'connecting') return member.ready!;
    if (this.closed) return Promise.reject(new Error('session closed'));
    if (member.state === 'down' && Date.now() < member.retryAt)
      return Promise.reject(new Error('down; tried again shortly'));
    member.state = 'connecting';
    member.ready = this.connect(member);
    return member.ready;
  }

  private async connect(member: Member): Promise<void> {
    const generation = ++member.generation;
    const logger = this.logger.child({ namespace: member.namespace });
    try {
      const connection = await this.options.connect(member.namespace, logger);
      if (member.generation !== generation) {
        connection.release();
        throw new Error('replaced');
      }
      member.connection = connection;
      const { transport } = connection;
      transport.onmessage = (message) => {
        if (member.generation === generation) this.fromMember(member, message);
      };
      transport.onclose = () => {
        if (member.generation === generation) this.down(member, 'its connection closed');
      };
      transport.onerror = (error) => logger.warn({ err: error.message }, 'member transport error');
      if (transport instanceof StreamableHttpBackend)
        transport.onfailure = (id, _code, message) => {
          // A request of ours whose answer stream broke: the client's call fails at once.
          const waiting = typeof id === 'number' ? member.waiting.get(id) : undefined;
          if (!waiting || member.generation !== generation) return;
          member.waiting.delete(id as number);
          waiting.reject(new Error(message));
        };
      await transport.start();
      const answer = await within(
        this.ask(member, 'initialize', this.initParams ?? defaultInit()),
        this.options.timeoutMs(member.namespace),
      );
      if (answer.error !== undefined || !answer.result || typeof answer.result !== 'object')
        throw new Error(`initialize refused: ${JSON.stringify(answer.error)}`);
      if (member.generation !== generation) throw new Error('replaced');
      member.init = answer.result as Json;
      const version = member.init.protocolVersion;
      if (typeof version === 'string' && transport instanceof StreamableHttpBackend)
        transport.setProtocolVersion(version);
      member.state = 'ready';
      member.retryMs = FIRST_RETRY_MS;
      if (this.initialized)
        this.post(member, { jsonrpc: '2.0', method: 'notifications/initialized' });
    } catch (error) {
      if (member.generation === generation) this.down(member, String(error));
      throw error;
    }
  }

  /** A member's connection is gone: its waiting requests fail, it is tried again later. */
  private down(member: Member, reason: string): void {
    if (member.state === 'down' || this.closed) return;
    const wasReady = member.state === 'ready';
    member.state = 'down';
    member.retryAt = Date.now() + member.retryMs;
    member.retryMs = Math.min(member.retryMs * 2, MAX_RETRY_MS);
    member.generation++;
    member.tools = member.prompts = member.resources = member.templates = undefined;
    for (const waiting of member.waiting.values()) waiting.reject(new Error(reason));
    member.waiting.clear();
    for (const [key, asked] of this.asked) if (asked.member === member) this.asked.delete(key);
    this.options.metrics.virtualMembersDown
      .labels(this.options.names.server, member.namespace)
      .inc();
    this.logger.warn(
      { namespace: member.namespace, reason, was_ready: wasReady },
      'virtual server member unavailable; tried again on the next request that needs it',
    );
    void this.disconnect(member);
  }

  private async disconnect(member: Member): Promise<void> {
    const connection = member.connection;
    member.connection = undefined;
    if (connection) await endConnection(connection);
  }

  /** Left out of an answer: counted and logged (a member that is down was counted when it went). */
  private leftOut(member: Member, error: unknown): void {
    if (member.state === 'down' && !(error instanceof TimeoutError)) return;
    if (error instanceof TimeoutError) {
      this.options.metrics.virtualMembersDown
        .labels(this.options.names.server, member.namespace)
        .inc();
      this.logger.warn(
        { namespace: member.namespace, wait_ms: error.ms },
        'virtual server member slower than the bounded wait; left out of this answer',
      );
    }
  }

  private collision(name: string, first: string, second: string): void {
    this.options.metrics.virtualNameCollisions.labels(this.options.names.server).inc();
    this.logger.error(
      { name, members: [first, second], path: `servers.${this.options.names.server}.prefix` },
      `members ${first} and ${second} both have "${name}": it is left out; set a prefix with {ns} (or an override)`,
    );
  }

  /** A request of ours to a member; resolves with its answer (`result` or `error`). */
  private ask(member: Member, method: string, params: Json, id = this.nextId++): Promise<Json> {
    const connection = member.connection;
    if (!connection) return Promise.reject(new Error('not connected'));
    return new Promise<Json>((resolve, reject) => {
      member.waiting.set(id, { resolve, reject });
      connection.transport.send({ jsonrpc: '2.0', id, method, params }).catch((error: unknown) => {
        if (member.waiting.delete(id))
          reject(error instanceof Error ? error : new Error(String(error)));
        // A member that cannot be sent to is down (an HTTP member gone, or its session with it).
        if (member.connection === connection) this.down(member, String(error));
      });
    });
  }

  private post(member: Member, message: Json): void {
    const connection = member.connection;
    connection?.transport.send(message as JSONRPCMessage).catch((error: unknown) => {
      if (member.connection === connection) this.down(member, String(error));
    });
  }

  private fromMember(member: Member, value: Json): void {
    if (isResponse(value)) {
      const id = value.id;
      const waiting = typeof id === 'number' ? member.waiting.get(id) : undefined;
      if (!waiting) return; // an answer to nothing of ours
      member.waiting.delete(id as number);
      waiting.resolve(value);
      return;
    }
    const method = typeof value.method === 'string' ? value.method : undefined;
    if (method === undefined) return;
    const request = 'id' in value && value.id !== undefined && value.id !== null;
    if (!this.usable(member)) {
      // A member the caller may no longer use tells it nothing and asks it nothing.
      if (request) this.post(member, refusal(value.id as RpcId, 'the member was removed'));
      return;
    }
    if (request) {
      // A member's request to the client: an id of ours, so members never collide; marked with
      // the client's request it belongs to (or none), for a client side that must know.
      const ours = `${this.options.names.server}-${this.nextId++}`;
      this.asked.set(idKey(ours), { member, id: value.id as RpcId, generation: member.generation });
      const forwarded = { ...value, id: ours };
      markRelated(forwarded, this.callOf(member, value));
      this.toClient(forwarded);
      return;
    }
    if (method === 'notifications/tools/list_changed') member.tools = undefined;
    else if (method === 'notifications/prompts/list_changed') member.prompts = undefined;
    else if (method === 'notifications/resources/list_changed')
      member.resources = member.templates = undefined;
    else if (method === 'notifications/cancelled') {
      // The member withdraws a request it made to the client: by our id.
      const params = (value.params as Json | undefined) ?? {};
      const theirs = params.requestId as RpcId | undefined;
      const ours = [...this.asked].find(
        ([, asked]) =>
          asked.member === member && theirs !== undefined && idKey(asked.id) === idKey(theirs),
      );
      if (!ours) return;
      this.asked.delete(ours[0]);
      this.toClient({ ...value, params: { ...params, requestId: ours[0] } });
      return;
    }
    this.toClient(value);
  }

  /**
   * The client's request a member's request to the client belongs to: the one routed to that
   * member that its transport says it came with, or, where the transport cannot tell (stdio,
   * legacy SSE), the only one routed to it. Null when none can be named: never another
   * member's call.
   */
  private callOf(member: Member, value: Json): RpcId | null {
    const related = relatedRequest(value);
    if (related === null) return null;
    const candidates = [...this.routed.values()].filter(
      (route) =>
        route.member === member && (related === undefined || idKey(route.id) === idKey(related)),
    );
    return candidates.length === 1 ? candidates[0].clientId : null;
  }

  private usable(member: Member): boolean {
    return this.options.admits(member.namespace);
  }

  private usableMembers(): Member[] {
    return this.members.filter((member) => this.usable(member));
  }

  private toClient(value: Json): void {
    if (!this.closed) this.onmessage?.(value as JSONRPCMessage);
  }
}

/** A capability is offered when any member offers it; its flags are OR-ed. */
function mergeCapabilities(into: Json, from: unknown): void {
  if (!from || typeof from !== 'object') return;
  for (const [name, value] of Object.entries(from as Json)) {
    if (value === undefined || value === null) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      into[name] ??= value;
      continue;
    }
    const merged = (into[name] ??= {}) as Json;
    for (const [flag, setting] of Object.entries(value as Json)) {
      if (setting === true) merged[flag] = true;
      else merged[flag] ??= setting;
    }
  }
}

/** The cursor the client gets: the members with more pages, each with its own cursor. */
function encodeCursor(pages: Array<[string, string]>): string {
  return Buffer.from(JSON.stringify({ v: 1, p: pages })).toString('base64url');
}

function decodeCursor(cursor: unknown, members: Member[]): Array<[Member, string]> | undefined {
  if (typeof cursor !== 'string' || cursor.length > 16_384) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const pages = (value as { v?: unknown; p?: unknown } | null)?.p;
  if ((value as { v?: unknown } | null)?.v !== 1 || !Array.isArray(pages) || pages.length === 0)
    return undefined;
  const out: Array<[Member, string]> = [];
  for (const page of pages) {
    if (!Array.isArray(page) || page.length !== 2 || typeof page[1] !== 'string') return undefined;
    const member = members.find((m) => m.namespace === page[0]);
    if (!member || out.some(([m]) => m === member)) return undefined;
    out.push([member, page[1]]);
  }
  return out;
}

/** The literal start of a URI template (up to its first expression). */
function templateStem(template: string): string {
  const brace = template.indexOf('{');
  return brace === -1 ? template : template.slice(0, brace);
}

/** The answer to a member's request to the client that the client will not see. */
function refusal(id: RpcId, reason: string): Json {
  return rpcError(id, -32603, `The client cannot be asked: ${reason}`);
}

function rpcError(id: RpcId, code: number, message: string): Json {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

function defaultInit(): Json {
  return {
    protocolVersion: VERSIONS[0],
    capabilities: {},
    clientInfo: { name: 'mcp-gateway', version: '0' },
  };
}

class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** `promise`, or a TimeoutError after `ms` (the work itself goes on). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(ms)), ms);
    timer.unref();
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
