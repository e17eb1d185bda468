import { randomUUID } from 'node:crypto';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Replaces the file at `path` with `text` whole: written to a temporary file beside it, then
 * renamed over it, so a crash leaves the old file or the new one, never half of either. With
 * `mode`, the new file has that mode (set again after writing: the umask masks it at creation).
 * Throws what the file system threw; the temporary file is removed then.
 */
export function replaceFile(path: string, text: string, mode?: number): void {
  const temporary = `${path}.${randomUUID()}.tmp`;
  try {
    writeFileSync(temporary, text, { flag: 'wx', ...(mode !== undefined && { mode }) });
    if (mode !== undefined) chmodSync(temporary, mode);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
