import { existsSync, readFileSync } from 'node:fs';
import { replaceFile } from '../files/replace-file.js';
import { z } from 'zod';
import { pinKey } from './kv-pin-store.js';
import {
  type PinRecord,
  type PinStore,
  PinStoreUnavailableError,
  pinRecord,
  type StoredPin,
} from './pin-store.js';

const pinsFile = z.object({ version: z.literal(1), pins: z.array(pinRecord) });

/** The file is unreadable or is not a pins file: the gateway refuses to start over it. */
export class PinsFileError extends Error {
  constructor(path: string, reason: string) {
    super(`pins file ${path}: ${reason} (fix or move it; it holds the pinned tool definitions)`);
    this.name = 'PinsFileError';
  }
}

/**
 * Standalone mode's pin store (SPEC §7 v2): one JSON file beside the DuckDB file. The edge and
 * the analytics service of the one process share this object, so an approval is seen by the
 * edge at once. The file is read once at start and rewritten whole on each change (a temporary
 * file renamed over it: a crash leaves the old file or the new one, never half). Revisions are
 * counted in memory: compare-and-set only has to hold within the process.
 */
export class FilePinStore implements PinStore {
  private pins = new Map<string, StoredPin>();
  private readonly listeners: Array<() => void> = [];
  private revision = 0;

  /** Reads the file (none yet: no pins); throws PinsFileError when it is not a pins file. */
  constructor(private readonly path: string) {
    for (const record of existsSync(path) ? read(path) : []) {
      this.pins.set(pinKey(record.namespace, record.tool), { record, revision: ++this.revision });
    }
  }

  /** Several readers share this store in one process: each gets every change. */
  // eslint-disable-next-line @typescript-eslint/require-await -- the PinStore contract is async
  async watch(onChange: () => void): Promise<void> {
    this.listeners.push(onChange);
    onChange();
  }

  get(namespace: string, tool: string): StoredPin | undefined {
    return this.pins.get(pinKey(namespace, tool));
  }

  list(): StoredPin[] {
    return [...this.pins.values()];
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the PinStore contract is async
  async put(record: PinRecord, revision: number | undefined): Promise<boolean> {
    const key = pinKey(record.namespace, record.tool);
    if (this.pins.get(key)?.revision !== revision) return false;
    const next = new Map(this.pins).set(key, { record, revision: ++this.revision });
    this.write([...next.values()].map((pin) => pin.record));
    this.pins = next;
    for (const listener of this.listeners) listener();
    return true;
  }

  async close(): Promise<void> {}

  private write(records: PinRecord[]): void {
    try {
      replaceFile(this.path, `${JSON.stringify({ version: 1, pins: records }, null, 2)}\n`);
    } catch (error) {
      throw new PinStoreUnavailableError('the pins file cannot be written', { cause: error });
    }
  }
}

function read(path: string): PinRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new PinsFileError(path, error instanceof Error ? error.message : String(error));
  }
  const parsed = pinsFile.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PinsFileError(path, `${issue.path.join('.') || 'file'}: ${issue.message}`);
  }
  return parsed.data.pins;
}
