// The one poll-with-deadline helper of the tests and the bench. No child processes or other
// heavy imports here, so unit specs can use it too.

/** Thrown by an `eventually` probe when waiting longer cannot help (the process died). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something truthy; errors count as "not yet", except GiveUp.
 * `what` names the wait in the timeout error (a function: read when the wait times out).
 */
export async function eventually<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  what: string | (() => string) = 'condition',
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${typeof what === 'string' ? what : what()}${lastError ? `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}` : ''}`,
      );
    }
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
}
