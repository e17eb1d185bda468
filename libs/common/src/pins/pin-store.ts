import { z } from 'zod';

/** Longest canonical definition a pin keeps (a bigger one is pinned by hash, without its text). */
export const MAX_PINNED_DEFINITION = 64 * 1024;

const drift = z.object({
  /** When an edge first saw the drifted definition. */
  seen_at: z.iso.datetime({ offset: true }),
  hash: z.string(),
  /** Canonical JSON of the drifted definition; null when larger than MAX_PINNED_DEFINITION. */
  definition: z.string().nullable(),
  tokens: z.number().int().nonnegative().nullable(),
  /** Readable diff from the pinned definition (tool-definition.ts diffDefinitions). */
  diff: z.string(),
  /** The edge that saw it. */
  edge_id: z.string(),
});

/**
 * One pinned tool (SPEC §7 v2 Pinning): its definition as first seen (or as last approved) by
 * any edge, and the drift an edge saw since, if any. Stored as JSON, one entry per namespace and
 * tool; read back through this schema, so an entry that is not a pin is ignored, never trusted.
 */
export const pinRecord = z.object({
  namespace: z.string(),
  tool: z.string(),
  hash: z.string(),
  definition: z.string().nullable(),
  /** Tokens of the definition as the client received it, with the docs' tokenizer. */
  tokens: z.number().int().nonnegative().nullable(),
  first_seen: z.iso.datetime({ offset: true }),
  /** pinned: as first seen; drifted: an edge saw another definition; approved: an admin accepted one. */
  status: z.enum(['pinned', 'drifted', 'approved']),
  drift: drift.nullable(),
  approved_at: z.iso.datetime({ offset: true }).nullable(),
  /** Key id of the admin who approved. */
  approved_by: z.string().nullable(),
});

export type PinRecord = z.infer<typeof pinRecord>;
export type PinDrift = z.infer<typeof drift>;

/** A pin as held from the store, with the store's revision of it (for compare-and-set writes). */
export interface StoredPin {
  record: PinRecord;
  revision: number;
}

/** The pin store cannot be reached (NATS or JetStream down, the file unwritable). */
export class PinStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PinStoreUnavailableError';
  }
}

/**
 * The durable store of pinned tool definitions, shared by every edge and the analytics service
 * (SPEC §7 v2: the same kind of store as keys created at run time): a JetStream key-value bucket
 * in distributed mode (KvPinStore), a file beside the DuckDB file in standalone mode
 * (FilePinStore). Every reader holds what the watch delivered; writes are compare-and-set on the
 * revision read, so two edges that see the same new tool or the same drift at once write it once,
 * and whoever loses reads the winner's record from the watch.
 */
export interface PinStore {
  /**
   * Starts following the store: `onChange` runs once the pins are loaded and after every change
   * by anyone. Resolves once loaded, or after `readyTimeoutMs` when the store cannot be reached
   * yet (it keeps trying; the pins last known, none at first, apply meanwhile).
   */
  watch(onChange: () => void, readyTimeoutMs?: number): Promise<void>;
  /** The pin of `tool` in `namespace`, as last delivered by the watch. */
  get(namespace: string, tool: string): StoredPin | undefined;
  /** Every pin, as last delivered. */
  list(): StoredPin[];
  /**
   * Writes `record` when the stored revision of its namespace and tool is still `revision`
   * (undefined: when there is no pin yet). False when someone else wrote first; throws
   * PinStoreUnavailableError. Resolves once this reader's watch holds the write (bounded).
   */
  put(record: PinRecord, revision: number | undefined): Promise<boolean>;
  close(): Promise<void>;
}
