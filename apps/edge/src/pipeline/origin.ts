const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * DNS-rebinding defence (SPEC §4 item 9). A request without Origin passes (non-browser
 * clients); with `allowed_origins` unset only local origins on any port pass.
 */
export function originAllowed(origin: string | undefined, allowed: string[] | undefined): boolean {
  if (origin === undefined) return true;
  if (allowed) return allowed.includes('*') || allowed.includes(origin.replace(/\/$/, ''));
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && LOCAL_HOSTS.has(url.hostname);
  } catch {
    return false;
  }
}
