import {
  ErrorCode,
  GatewayError,
  type PinRecord,
  type PinStore,
  PinStoreUnavailableError,
  type Principal,
} from '#common';
import { readableBody } from '../api/json-body.js';
import type { PinView } from '../api/answers.js';
import type { AdminRequestContext, AuditLog } from '../admin/audit-log.js';

const RETRY_AFTER_S = '5';

/**
 * The admin side of tool pinning (SPEC §7 v2): the pins as the store holds them, and the
 * approval of a drifted definition as the new pin. The edges own pinning itself (they write each
 * first sight and each drift); an approval written here reaches them through their watch of the
 * same store. The answer does not depend on `tool_pinning.mode`: with `off` the edges stop
 * writing, and what was pinned before still shows (and can still be approved).
 *
 * Without a store (a service started without one: both modes of the gateway pass one) every
 * route is a 503 saying so, rather than an empty list that would read as "nothing drifted".
 */
export class PinApprovals {
  constructor(
    private readonly store: PinStore | undefined,
    private readonly audit: AuditLog,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Every pin (of `namespace`, of `tool` when given), drifted ones first. A tenant admin sees
   * the pins of the namespaces its own credential may use (a virtual server's members count
   * only when usable on their own, as at the edge), not every tenant's backends.
   */
  list(filters: { namespace?: string; tool?: string }, principal: Principal): PinView[] {
    const everyNamespace = principal.tenant === null || principal.namespaces.includes('*');
    const usable = new Set(principal.namespaces);
    return this.requireStore()
      .list()
      .map((pin) => pin.record)
      .filter(
        (record) =>
          (everyNamespace || usable.has(record.namespace)) &&
          (filters.namespace === undefined || record.namespace === filters.namespace) &&
          (filters.tool === undefined || record.tool === filters.tool),
      )
      .sort(
        (a, b) =>
          Number(b.status === 'drifted') - Number(a.status === 'drifted') ||
          a.namespace.localeCompare(b.namespace) ||
          a.tool.localeCompare(b.tool),
      )
      .map(toView);
  }

  /**
   * Accepts the drifted definition of a tool as its pin. `body` may name the drift's hash (what
   * the admin reviewed): when the definition drifted again since, the approval is refused rather
   * than accepting a diff nobody saw. A tenant admin may not approve: a pin holds for every
   * tenant. Recorded in the audit log, done or refused.
   */
  approve(
    namespace: string,
    tool: string,
    body: unknown,
    principal: Principal,
    context: AdminRequestContext,
  ): Promise<PinView> {
    const target = `${namespace}/${tool}`;
    const audit = { method: 'admin/pins/approve', principal, context, target, status: 200 };
    return this.audit.audited(audit, async () => {
      if (principal.tenant !== null) {
        throw new GatewayError(
          ErrorCode.Forbidden,
          'a tenant admin may not approve a tool definition: a pin holds for every tenant',
        );
      }
      const reviewed = reviewedHash(readableBody(body));
      const store = this.requireStore();
      const stored = store.get(namespace, tool);
      if (!stored) throw new GatewayError(ErrorCode.NotFound, `no pin of ${target}`);
      const { record, revision } = stored;
      if (record.status !== 'drifted' || record.drift === null) {
        throw new GatewayError(
          ErrorCode.Conflict,
          `${target} has not drifted (status ${record.status}): nothing to approve`,
        );
      }
      if (reviewed !== undefined && reviewed !== record.drift.hash) {
        throw new GatewayError(
          ErrorCode.Conflict,
          `the drifted definition of ${target} is ${record.drift.hash}, not ${reviewed}: it changed again, review its diff`,
        );
      }
      const approved: PinRecord = {
        ...record,
        hash: record.drift.hash,
        definition: record.drift.definition,
        tokens: record.drift.tokens,
        status: 'approved',
        drift: null,
        approved_at: this.now().toISOString(),
        approved_by: principal.keyId,
      };
      if (!(await this.write(store, approved, revision))) {
        throw new GatewayError(
          ErrorCode.Conflict,
          `the pin of ${target} changed while approving it: reload and review it again`,
        );
      }
      return { result: toView(approved), target };
    });
  }

  private async write(store: PinStore, record: PinRecord, revision: number): Promise<boolean> {
    try {
      return await store.put(record, revision);
    } catch (error) {
      if (!(error instanceof PinStoreUnavailableError)) throw error;
      throw new GatewayError(
        ErrorCode.Unavailable,
        `the pin store is unavailable (${error.message}), retry shortly`,
        { 'Retry-After': RETRY_AFTER_S },
      );
    }
  }

  private requireStore(): PinStore {
    if (this.store) return this.store;
    throw new GatewayError(
      ErrorCode.Unavailable,
      'tool pins are not available: this analytics service was started without a pin store',
    );
  }
}

/** The hash the body names (`{"hash": "sha256:…"}`); no body or `{}` names none. */
function reviewedHash(body: unknown): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'object' && !Array.isArray(body)) {
    const { hash, ...rest } = body as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length > 0)
      throw new GatewayError(ErrorCode.BadRequest, `unknown field "${extra[0]}" in the body`);
    if (hash === undefined) return undefined;
    if (typeof hash === 'string' && hash.length > 0 && hash.length <= 256) return hash;
  }
  throw new GatewayError(
    ErrorCode.BadRequest,
    'the body must be empty or {"hash": "<the drift\'s hash>"}',
  );
}

function toView(record: PinRecord): PinView {
  const { drift } = record;
  return {
    namespace: record.namespace,
    tool: record.tool,
    hash: record.hash,
    tokens: record.tokens,
    first_seen: record.first_seen,
    status: record.status,
    ...(drift !== null && {
      drift: { seen_at: drift.seen_at, hash: drift.hash, tokens: drift.tokens, diff: drift.diff },
    }),
    approved_at: record.approved_at,
    approved_by: record.approved_by,
  };
}
