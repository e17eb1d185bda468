import { randomUUID } from 'node:crypto';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_MAP, ErrorCode, type NamespaceConfig } from '#common';
import type { Logger } from 'pino';
import { outcomeOf, rpcErrorFor } from '../errors/error-writer.js';
import type { ExchangeRecorder } from '../events/exchange-recorder.js';
import type { Gate } from '../pins/tool-catalog.js';
import { idKey, isResponse, type RpcId, type RpcMessage } from '../jsonrpc/messages.js';
import { MessageTap } from '../tap/message-tap.js';
import { writeTraceMeta } from '../tracing/tracing.js';
import { VirtualBackend } from '../virtual/virtual-backend.js';
import { StreamableHttpBackend } from './http-backend.js';
import type { ClientStream } from './client-stream.js';

export type ClientSide = 'streamable' | 'legacy';

export interface BridgeSessionOptions {
  namespace: string;
  /** The key that opened it. */
  keyId: string;
  /** The backend's upstream config (a virtual server's session has none: its members do). */
  upstream?: NamespaceConfig['upstream'];
  /**
   * The backend connection, made for this session: an SDK client transport, a stdio child (new or
   * warm) or a session's lane on a shared child; its log lines go to `logger` (the session's).
   */
  connect: (logger: Logger) => Transport;
  timeoutMs: number;
  idleTimeoutMs: number;
  client: ClientSide;
  /** The gateway session id; computed lazily because it names this session's id. */
  token: (sessionId: string) => string;
  gate: () => Gate;
  /** The exchange that opened the session: it records server messages that answer no request. */
  exchange: ExchangeRecorder;
  logger: Logger;
  onClosed: (session: BridgeSession) => void;
}

/** The answer stream of one POST: ends when every request it carried is answered. */
export class AnswerStream {
  private waiting = 0;

  constructor(readonly stream: ClientStream) {}

  expect(): void {
    this.waiting++;
  }

  /** A response for one of its requests (or the gateway's error in its place). */
  answer(message: unknown): void {
    this.waiting--;
    if (this.waiting <= 0) this.stream.sendLast(message);
    else this.stream.send(message);
  }

  endIfDone(): void {
    if (this.waiting <= 0) this.stream.end();
  }

  get done(): boolean {
    return this.waiting <= 0;
  }
}

interface PendingRequest {
  id: RpcId;
  method: string | undefined;
  /** The client exchange (POST) that sent it: its events carry that exchange's id and timing. */
  exchange: ExchangeRecorder;
  /** Where its answer goes: the POST's stream (Streamable HTTP), else the session's stream. */
  answers: AnswerStream | undefined;
  timer: NodeJS.Timeout;
  progressToken?: string;
}

/**
 * One client session bridged to one backend connection that lives in this edge: a stdio child
 * (its own, or its lane on a shared one), a legacy SSE backend, or (for legacy SSE clients) a
 * Streamable HTTP backend, reached through a Transport. Every message either way crosses the one `MessageTap`, recorded with
 * the exchange it belongs to. Requests are tracked by id while they wait (timeout reset by
 * progress); the session ends with DELETE, the legacy stream closing, idle reaping, or the
 * backend going away — then every waiting request gets the one error writer's JSON-RPC error.
 */
export class BridgeSession {
  readonly id = randomUUID();
  readonly token: string;
  private readonly backend: Transport;
  private readonly pending = new Map<string, PendingRequest>();
  private readonly progress = new Map<string, string>();
  /** Where server messages that answer no request go: the GET stream or a legacy client's stream. */
  private sessionStream: ClientStream | undefined;
  private streamExchange: ExchangeRecorder;
  private readonly logger: Logger;
  private closed = false;
  readonly createdAt = Date.now();
  lastActive = this.createdAt;
  /** The client went past initialize (sent anything after it). */
  used = false;

  constructor(private readonly options: BridgeSessionOptions) {
    this.token = options.token(this.id);
    this.streamExchange = options.exchange;
    this.logger = options.logger.child({ namespace: options.namespace, session: this.id });
    this.backend = options.connect(this.logger);
    this.backend.onmessage = (message) => this.fromBackend(message);
    this.backend.onclose = () => void this.close('backend closed the connection');
    this.backend.onerror = (error) =>
      this.logger.warn({ err: error.message }, 'backend transport error');
    if (this.backend instanceof VirtualBackend || this.backend instanceof StreamableHttpBackend) {
      this.backend.onfailure = (id, code, message) => {
        const entry = this.pending.get(idKey(id));
        if (entry) this.fail(entry, code, message);
      };
    }
  }

  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs;
  }

  get clientSide(): ClientSide {
    return this.options.client;
  }

  get namespace(): string {
    return this.options.namespace;
  }

  get keyId(): string {
    return this.options.keyId;
  }

  async start(): Promise<void> {
    await this.backend.start();
  }

  isPending(id: RpcId): boolean {
    return this.pending.has(idKey(id));
  }

  /** Requests sent to the backend and not answered yet. */
  get waiting(): number {
    return this.pending.size;
  }

  /**
   * Ends a Streamable client's stream for server messages that answer no request (shutdown: the
   * answers of calls in flight go on their POSTs' streams). A legacy client's stream carries its
   * answers too: it stays until the session closes.
   */
  endStream(): void {
    if (this.options.client === 'legacy') return;
    const stream = this.sessionStream;
    this.sessionStream = undefined;
    stream?.end();
  }

  /**
   * The stream for server messages that answer no request; a new one replaces the old (a client
   * reconnecting after a network blip must not find its session locked). `exchange` records them.
   */
  attachStream(stream: ClientStream, exchange: ExchangeRecorder): void {
    const previous = this.sessionStream;
    this.sessionStream = stream;
    this.streamExchange = exchange;
    previous?.end();
    stream.onclose = () => {
      if (this.sessionStream === stream) this.sessionStream = undefined;
      if (this.options.client === 'legacy') void this.close('client closed the SSE stream');
    };
  }

  /**
   * The messages of one client exchange, each through the tap: a hidden tool's call is answered
   * here, everything else goes to the backend. Answers go to `answers` (the POST's stream) when
   * given, else to the session's stream.
   */
  fromClient(
    messages: RpcMessage[],
    bytesEach: number,
    exchange: ExchangeRecorder,
    answers?: AnswerStream,
  ): void {
    this.lastActive = Date.now();
    if (messages.some((message) => message.method !== 'initialize')) this.used = true;
    const gate = this.options.gate();
    exchange.upstreamStarted = performance.now();
    // The gateway's own answers (a refused message) on the POST's stream, after the loop: when
    // nothing else is awaited, the last of them ends the stream in the same write.
    const refused: unknown[] = [];
    for (const message of messages) {
      const verdict = MessageTap.inbound(message, bytesEach, gate, exchange);
      if (!verdict.deliver) {
        if (verdict.answer && answers) refused.push(verdict.answer);
        else if (verdict.answer) this.sessionStream?.send(verdict.answer);
        continue;
      }
      if (message.kind === 'request') {
        this.track(message, exchange, answers);
        // The message is serialised again by the SDK transport anyway: the trace context goes
        // in its `_meta` (MCP conventions), the one carrier every transport has.
        if (exchange.tracing && this.options.upstream) {
          const context = exchange.backendTrace(message, this.options.upstream);
          if (context) writeTraceMeta(message.value, context);
        }
      }
      this.backend.send(message.value as JSONRPCMessage).catch((error: unknown) => {
        this.logger.warn(
          { request_id: exchange.identity.request_id, err: String(error) },
          'could not send to backend',
        );
        const entry = message.id === undefined ? undefined : this.pending.get(idKey(message.id));
        if (entry) this.fail(entry, ErrorCode.UpstreamError, 'Backend unavailable');
      });
    }
    if (answers) {
      refused.forEach((answer, i) => {
        if (i === refused.length - 1 && answers.done) answers.stream.sendLast(answer);
        else answers.stream.send(answer);
      });
      answers.endIfDone();
      answers.stream.onclose = () => this.clientLeft(answers, exchange);
    }
  }

  private track(message: RpcMessage, exchange: ExchangeRecorder, answers?: AnswerStream): void {
    const entry: PendingRequest = {
      id: message.id!,
      method: message.method,
      exchange,
      answers,
      timer: this.requestTimer(message.id!),
    };
    const token = (message.value.params as { _meta?: { progressToken?: unknown } } | undefined)
      ?._meta?.progressToken;
    if (token !== undefined) {
      entry.progressToken = progressKey(token);
      this.progress.set(entry.progressToken, idKey(entry.id));
    }
    this.pending.set(idKey(entry.id), entry);
    answers?.expect();
  }

  /** The client closed a POST's stream before its answers: nobody is left to read them. */
  private clientLeft(answers: AnswerStream, exchange: ExchangeRecorder): void {
    if (answers.done) return;
    for (const [key, entry] of this.pending) {
      if (entry.answers !== answers) continue;
      this.settle(key, entry);
    }
    exchange.finish('client_closed', null);
  }

  private fromBackend(message: JSONRPCMessage): void {
    const value = message as Record<string, unknown>;
    this.lastActive = Date.now();
    const bytes = Buffer.byteLength(JSON.stringify(value));
    const gate = this.options.gate();
    if (isResponse(value)) {
      const key = idKey(value.id as RpcId);
      const entry = this.pending.get(key);
      if (!entry) return; // answered already (timed out, or its client left)
      this.settle(key, entry);
      MessageTap.outbound(value, bytes, 200, gate, entry.exchange);
      if (entry.method === 'initialize') this.adoptVersion(value);
      if (entry.answers) entry.answers.answer(value);
      else this.sessionStream?.send(value);
      return;
    }
    const related = this.relatedRequest(value);
    MessageTap.outbound(value, bytes, 200, gate, related?.exchange ?? this.streamExchange);
    (related?.answers?.stream ?? this.sessionStream)?.send(value);
  }

  /** Progress goes to its request's stream; other server messages to the newest open request. */
  private relatedRequest(value: Record<string, unknown>): PendingRequest | undefined {
    if (value.method === 'notifications/progress') {
      const token = (value.params as { progressToken?: unknown } | undefined)?.progressToken;
      const key = token === undefined ? undefined : this.progress.get(progressKey(token));
      const entry = key === undefined ? undefined : this.pending.get(key);
      if (entry) {
        clearTimeout(entry.timer);
        entry.timer = this.requestTimer(entry.id); // progress resets the timeout
        return entry;
      }
    }
    let newest: PendingRequest | undefined;
    for (const entry of this.pending.values()) newest = entry;
    return newest;
  }

  /** A Streamable HTTP backend needs the negotiated revision on every later request. */
  private adoptVersion(value: Record<string, unknown>): void {
    const version = (value.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    if (typeof version === 'string' && this.backend instanceof StreamableHttpBackend)
      this.backend.setProtocolVersion(version);
  }

  private settle(key: string, entry: PendingRequest): void {
    clearTimeout(entry.timer);
    this.pending.delete(key);
    if (entry.progressToken !== undefined) this.progress.delete(entry.progressToken);
  }

  private requestTimer(id: RpcId): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const entry = this.pending.get(idKey(id));
      if (!entry) return;
      this.fail(entry, ErrorCode.UpstreamTimeout, 'Backend timed out');
      void this.backend
        .send({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: id, reason: 'gateway timeout' },
        })
        .catch(() => undefined);
    }, this.options.timeoutMs);
    timer.unref();
    return timer;
  }

  /** Answers a waiting request with the gateway's error for `code` and records its outcome. */
  private fail(entry: PendingRequest, code: ErrorCode, message: string): void {
    this.settle(idKey(entry.id), entry);
    entry.exchange.failRequest(entry.id, outcomeOf(code), ERROR_MAP[code].status, code);
    const answer = rpcErrorFor(code, entry.id, message, entry.exchange.identity.request_id);
    if (entry.answers) entry.answers.answer(answer);
    else this.sessionStream?.send(answer);
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.logger.info({ reason }, 'bridged session closed');
    for (const entry of [...this.pending.values()]) {
      this.fail(entry, ErrorCode.UpstreamError, 'Backend unavailable');
    }
    this.options.onClosed(this);
    this.sessionStream?.end();
    if (this.backend instanceof StreamableHttpBackend && this.backend.sessionId) {
      await this.backend.terminateSession().catch(() => undefined);
    }
    await this.backend.close().catch(() => undefined);
  }
}

/** Progress tokens are strings or numbers; anything else is keyed by its JSON form. */
function progressKey(token: unknown): string {
  return typeof token === 'string' || typeof token === 'number'
    ? String(token)
    : JSON.stringify(token);
}
