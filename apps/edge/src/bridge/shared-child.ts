import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_MAP, ErrorCode } from '#common';
import type { Logger } from 'pino';
import { idKey, isResponse, type RpcId } from '../jsonrpc/messages.js';
import { SharedLane } from './shared-lane.js';
import type { StdioChild } from './stdio-child.js';

export type Message = Record<string, unknown>;

/** A request of a session on its way to the child, under the child-side id it was given. */
interface Outgoing {
  lane: SharedLane;
  /** The session's own id, given back with the answer. */
  id: RpcId;
  /** The session's own progress token, when it asked for progress. */
  progressToken?: unknown;
  initialize: boolean;
}

/**
 * One stdio child serving many sessions (`upstream.shared: true`, for stateless servers). Each
 * session talks to it through its own `SharedLane`, a Transport like any other, so every message
 * still crosses the session's own tap with the session's own exchange (bridge-session.ts); what
 * this class does is keep the sessions apart on the one connection:
 *
 * - every request gets a child-side id of its own (and its progress token that id), so two
 *   sessions using the same ids never collide, and each answer and progress notification goes
 *   back, with the session's own id and token, to the session that asked — and to no other;
 * - the child is initialized once: the first session's `initialize` reaches it, the gateway then
 *   sends `notifications/initialized` itself, and every later session is answered from that
 *   result (the child speaks the revision it negotiated then, so that is the one they get);
 * - notifications that answer nothing (`list_changed`, logging) go to every session;
 * - a request of the child (sampling, elicitation, roots) goes to the one session with requests
 *   in flight, which alone may answer it; with none or several, the child gets a JSON-RPC error
 *   at once (a guess could show one session's question to another). The gateway answers `ping`.
 *
 * There is no isolation between sessions inside the child: state one session leaves there
 * (a subscription, a log level, a file) is every session's. Hence opt-in, for stateless servers.
 */
export class SharedChild {
  private nextId = 0;
  private readonly lanes = new Set<SharedLane>();
  private readonly outgoing = new Map<number, Outgoing>();
  /** Requests of the child handed to a session, by the child's id: only that session answers. */
  private readonly asked = new Map<string, SharedLane>();
  /** The child's initialize result, once it has one. */
  private initialized?: Message;
  /** Sessions whose initialize waits for the first one's answer. */
  private waiting?: Array<{ lane: SharedLane; id: RpcId }>;
  private gone = false;
  private closed?: Promise<void>;
  /** A reload changed the namespace: no new session joins; it ends with its last session. */
  retiring = false;

  constructor(
    readonly namespace: string,
    /** What the child runs (`childSpec`): a session joins a child of its own config only. */
    readonly spec: string,
    private readonly child: StdioChild,
    private readonly logger: Logger,
    private readonly events: {
      /** Its last session left; whether to keep it running (as the namespace's warm child). */
      keepIdle: () => boolean;
      /** It exited or was ended. */
      gone: (shared: SharedChild) => void;
    },
  ) {
    child.useLogger(logger);
    child.onmessage = (message) => this.fromChild(message);
    child.onerror = (error) => logger.warn({ err: error.message }, 'backend transport error');
    child.onclose = () => this.end('the shared child exited');
  }

  get running(): boolean {
    return !this.gone && this.child.running;
  }

  get sessions(): number {
    return this.lanes.size;
  }

  /** A connection for one more session. */
  lane(): SharedLane {
    const lane = new SharedLane(this);
    this.lanes.add(lane);
    return lane;
  }

  start(): Promise<void> {
    return this.child.start();
  }

  /** Ends the child when nobody uses it (a retired child, or the namespace keeps none warm). */
  retireIfIdle(): void {
    if (this.lanes.size === 0 && (this.retiring || !this.events.keepIdle())) {
      void this.close('no session left');
    }
  }

  close(reason: string): Promise<void> {
    this.end(reason);
    this.closed ??= this.child.close().catch(() => undefined);
    return this.closed;
  }

  /** A message of `lane`'s session, its ids made the child's own. */
  fromLane(lane: SharedLane, message: Message): Promise<void> {
    if (isResponse(message)) return this.answerOfSession(lane, message);
    if (typeof message.method !== 'string') return Promise.resolve();
    if ('id' in message) return this.requestOfSession(lane, message);
    switch (message.method) {
      case 'notifications/initialized':
        return Promise.resolve(); // the gateway sent its own, once
      case 'notifications/cancelled':
        return this.cancelOfSession(lane, message);
      default:
        return this.send(message);
    }
  }

  /** The session of `lane` ended: its requests are cancelled at the child, its questions refused. */
  leave(lane: SharedLane): void {
    if (!this.lanes.delete(lane)) return;
    for (const [childId, entry] of this.outgoing) {
      // An initialize in flight is kept: its answer is every waiting session's.
      if (entry.lane !== lane || entry.initialize) continue;
      this.outgoing.delete(childId);
      this.toChild(cancelled(childId, 'the session ended'));
    }
    for (const [key, asked] of this.asked) {
      if (asked !== lane) continue;
      this.asked.delete(key);
      this.toChild(refusal(keyId(key), 'The session that was asked has ended'));
    }
    this.waiting = this.waiting?.filter((entry) => entry.lane !== lane);
    this.retireIfIdle();
  }

  private requestOfSession(lane: SharedLane, message: Message): Promise<void> {
    const id = message.id as RpcId;
    if (message.method === 'initialize') {
      if (this.initialized) {
        queueMicrotask(() => lane.deliver(this.initializeAnswer(id)));
        return Promise.resolve();
      }
      if (this.waiting) {
        this.waiting.push({ lane, id });
        return Promise.resolve();
      }
      this.waiting = [];
    }
    const childId = ++this.nextId;
    const entry: Outgoing = { lane, id, initialize: message.method === 'initialize' };
    let params = message.params as Message | undefined;
    const meta = params?._meta as Message | undefined;
    if (meta && 'progressToken' in meta) {
      // Tokens are the sessions' own choice: the child sees one that is unique, the request's id.
      entry.progressToken = meta.progressToken;
      params = { ...params, _meta: { ...meta, progressToken: childId } };
    }
    this.outgoing.set(childId, entry);
    lane.childIds.set(idKey(id), childId);
    return this.send({ ...message, id: childId, params });
  }

  private answerOfSession(lane: SharedLane, message: Message): Promise<void> {
    const key = idKey(message.id as RpcId);
    if (this.asked.get(key) !== lane) {
      this.logger.debug(
        { id: message.id },
        'dropped an answer to a question not put to this session',
      );
      return Promise.resolve();
    }
    this.asked.delete(key);
    return this.send(message);
  }

  private cancelOfSession(lane: SharedLane, message: Message): Promise<void> {
    const params = message.params as { requestId?: unknown } | undefined;
    const requestId = params?.requestId;
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return Promise.resolve();
    const childId = lane.childIds.get(idKey(requestId));
    const entry = childId === undefined ? undefined : this.outgoing.get(childId);
    // Another session's request, or one answered already; an initialize is never cancelled.
    if (childId === undefined || !entry || entry.initialize) return Promise.resolve();
    this.outgoing.delete(childId);
    lane.childIds.delete(idKey(requestId));
    return this.send({ ...message, params: { ...params, requestId: childId } });
  }

  private fromChild(message: Message): void {
    if (isResponse(message)) {
      this.answerOfChild(message);
      return;
    }
    if (typeof message.method !== 'string') return;
    if ('id' in message) {
      this.questionOfChild(message);
      return;
    }
    const params = message.params as Message | undefined;
    if (message.method === 'notifications/progress') {
      const entry =
        typeof params?.progressToken === 'number'
          ? this.outgoing.get(params.progressToken)
          : undefined;
      if (entry?.progressToken !== undefined) {
        entry.lane.deliver({
          ...message,
          params: { ...params, progressToken: entry.progressToken },
        });
      }
      return;
    }
    if (message.method === 'notifications/cancelled') {
      const requestId = params?.requestId;
      const key =
        typeof requestId === 'string' || typeof requestId === 'number' ? idKey(requestId) : '';
      const lane = this.asked.get(key);
      this.asked.delete(key);
      lane?.deliver(message);
      return;
    }
    // Answers nothing: every session's. Each gets its own copy, which its tap may change.
    let first = true;
    for (const lane of this.lanes) {
      lane.deliver(first ? message : structuredClone(message));
      first = false;
    }
  }

  private answerOfChild(message: Message): void {
    const childId = message.id;
    const entry = typeof childId === 'number' ? this.outgoing.get(childId) : undefined;
    if (!entry) return; // cancelled, its session gone, or an answer to nothing: nobody's
    this.outgoing.delete(childId as number);
    entry.lane.childIds.delete(idKey(entry.id));
    if (entry.initialize) this.initializedBy(message);
    entry.lane.deliver({ ...message, id: entry.id });
  }

  /** The first initialize's answer: kept for every later session, or given to those waiting. */
  private initializedBy(answer: Message): void {
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    if (answer.result && typeof answer.result === 'object') {
      this.initialized = answer.result as Message;
      this.toChild({ jsonrpc: '2.0', method: 'notifications/initialized' });
      for (const entry of waiting) entry.lane.deliver(this.initializeAnswer(entry.id));
      return;
    }
    // Refused: each waiting session hears the same; the next initialize tries again.
    for (const entry of waiting) entry.lane.deliver({ ...answer, id: entry.id });
  }

  private initializeAnswer(id: RpcId): Message {
    return { jsonrpc: '2.0', id, result: structuredClone(this.initialized) };
  }

  /** A request of the child: to the one session that can be asked, else refused at once. */
  private questionOfChild(message: Message): void {
    const id = message.id as RpcId;
    if (message.method === 'ping') {
      this.toChild({ jsonrpc: '2.0', id, result: {} });
      return;
    }
    const waiting = new Set<SharedLane>();
    for (const entry of this.outgoing.values()) {
      if (!entry.lane.closed) waiting.add(entry.lane);
      if (waiting.size > 1) break;
    }
    if (waiting.size !== 1) {
      this.logger.warn(
        { method: message.method, sessions_waiting: waiting.size },
        'refused a request of a shared child: no single session to ask',
      );
      this.toChild(
        refusal(
          id,
          waiting.size === 0
            ? 'No session to ask: this child is shared and no session has a request in flight'
            : 'No single session to ask: this child is shared by several sessions with requests in flight',
        ),
      );
      return;
    }
    const [lane] = waiting;
    this.asked.set(idKey(id), lane);
    lane.deliver(message);
  }

  private send(message: Message): Promise<void> {
    return this.child.send(message as unknown as JSONRPCMessage);
  }

  /** A message of the gateway's own to the child, best effort. */
  private toChild(message: Message): void {
    if (this.running) this.send(message).catch(() => undefined);
  }

  /** Every session on it ends (its waiting requests get the gateway's error there). */
  private end(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    this.child.onclose = undefined;
    this.logger.info({ reason, sessions: this.lanes.size }, 'shared stdio child ended');
    const lanes = [...this.lanes];
    this.lanes.clear();
    this.outgoing.clear();
    this.asked.clear();
    this.waiting = undefined;
    for (const lane of lanes) lane.ended();
    this.events.gone(this);
  }
}

function cancelled(requestId: number, reason: string): Message {
  return { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } };
}

/** The gateway's refusal of a request of the child, in the one error table's terms. */
function refusal(id: RpcId, message: string): Message {
  const code = ErrorCode.Unavailable;
  return { jsonrpc: '2.0', id, error: { code: ERROR_MAP[code].rpcCode, message, data: { code } } };
}

/** The id an `idKey` was made from. */
function keyId(key: string): RpcId {
  return key.startsWith('n:') ? Number(key.slice(2)) : key.slice(2);
}
