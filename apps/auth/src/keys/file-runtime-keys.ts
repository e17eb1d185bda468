import { existsSync, readFileSync } from 'node:fs';
import { replaceFile } from '#common';
import { z } from 'zod';
import {
  DuplicateKeyIdError,
  KeyStoreUnavailableError,
  type RuntimeKeyRecord,
  type RuntimeKeys,
  runtimeKeyRecord,
} from './runtime-keys.js';

const keysFile = z.object({ version: z.literal(1), keys: z.array(runtimeKeyRecord) });

/** The file is unreadable or is not a keys file: the auth service refuses to start over it. */
export class KeysFileError extends Error {
  constructor(path: string, reason: string) {
    super(`keys file ${path}: ${reason} (fix or move it; it holds the keys created at run time)`);
    this.name = 'KeysFileError';
  }
}

/**
 * Standalone mode's store of keys created at run time: one JSON file beside the DuckDB file
 * (SPEC §5 v2), readable by the owner only (0600), holding the records (digests, never a secret).
 * One process owns it, so the file is read once at start and rewritten whole on each change:
 * a temporary file renamed over it, so a crash leaves the old file or the new one, never half.
 */
export class FileRuntimeKeys implements RuntimeKeys {
  private records: RuntimeKeyRecord[];
  private onChange?: (keys: RuntimeKeyRecord[]) => void;

  /** Reads the file (none yet: no keys); throws KeysFileError when it is not a keys file. */
  constructor(private readonly path: string) {
    this.records = existsSync(path) ? read(path) : [];
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async watch(onChange: (keys: RuntimeKeyRecord[]) => void): Promise<void> {
    this.onChange = onChange;
    onChange(this.list());
  }

  list(): RuntimeKeyRecord[] {
    return [...this.records];
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async get(id: string): Promise<RuntimeKeyRecord | undefined> {
    return this.records.find((record) => record.id === id);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async create(record: RuntimeKeyRecord): Promise<void> {
    if (this.records.some((existing) => existing.id === record.id)) {
      throw new DuplicateKeyIdError(record.id);
    }
    this.replace([...this.records, record]);
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the RuntimeKeys contract is async
  async revoke(id: string): Promise<boolean> {
    const rest = this.records.filter((record) => record.id !== id);
    if (rest.length === this.records.length) return false;
    this.replace(rest);
    return true;
  }

  async close(): Promise<void> {}

  private replace(records: RuntimeKeyRecord[]): void {
    try {
      replaceFile(this.path, `${JSON.stringify({ version: 1, keys: records }, null, 2)}\n`, 0o600);
    } catch (error) {
      throw new KeyStoreUnavailableError('the keys file cannot be written', { cause: error });
    }
    this.records = records;
    this.onChange?.(this.list());
  }
}

function read(path: string): RuntimeKeyRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new KeysFileError(path, error instanceof Error ? error.message : String(error));
  }
  const parsed = keysFile.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeysFileError(path, `${issue.path.join('.') || 'file'}: ${issue.message}`);
  }
  return parsed.data.keys;
}
