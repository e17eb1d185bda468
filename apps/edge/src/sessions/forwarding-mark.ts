import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** How long a mark is good for: edges forward at once, so seconds are plenty (clock skew too). */
export const MARK_VALID_MS = 10_000;
const MAX_REMEMBERED = 100_000;

/** What a mark is bound to: the one request it was made for, and who sent it. */
export interface MarkedRequest {
  method: string;
  /** Path and query, as sent. */
  target: string;
  body: Buffer | undefined;
  /** The sender's principal and credential (principalRef), not only its key id. */
  principal: string;
  requestId: string;
}

/**
 * The mark an edge puts on a request it forwards to the edge that holds its session, so the
 * owner knows its rate limits were counted already (SPEC §6). An HMAC with the shared session
 * secret over the time and everything that makes the request what it is — method, path and
 * query, a digest of the body, the credential, the request id — valid for seconds and accepted once:
 * a captured mark is worth nothing on another request, later, or a second time.
 */
export class ForwardingMarks {
  /** Marks already accepted, until they expire (a replay is not forwarded, so it is counted). */
  private readonly seen = new Map<string, number>();

  constructor(private readonly secret: string) {}

  make(request: MarkedRequest, now = Date.now()): string {
    return `${now}.${this.sign(request, now)}`;
  }

  /** True for a sound, fresh mark of `request` not seen before; it is then spent. */
  accept(mark: string | undefined, request: MarkedRequest, now = Date.now()): boolean {
    if (mark === undefined) return false;
    const dot = mark.indexOf('.');
    const at = Number(mark.slice(0, dot));
    if (dot <= 0 || !Number.isSafeInteger(at) || Math.abs(now - at) > MARK_VALID_MS) return false;
    const given = Buffer.from(mark.slice(dot + 1));
    const expected = Buffer.from(this.sign(request, at));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    this.forgetExpired(now);
    if (this.seen.has(mark)) return false;
    if (this.seen.size >= MAX_REMEMBERED) return false; // never forget one unexpired: refuse more
    this.seen.set(mark, at);
    return true;
  }

  private sign(request: MarkedRequest, at: number): string {
    const body = createHash('sha256')
      .update(request.body ?? Buffer.alloc(0))
      .digest('base64url');
    return createHmac('sha256', this.secret)
      .update(
        [at, request.method, request.target, body, request.principal, request.requestId].join('\n'),
      )
      .digest('base64url');
  }

  /** Marks are remembered in the order they were accepted; the oldest expire first. */
  private forgetExpired(now: number): void {
    for (const [mark, at] of this.seen) {
      if (now - at <= MARK_VALID_MS * 2) return;
      this.seen.delete(mark);
    }
  }
}
