// The drift alarm (SPEC §7 v2 Pinning): a banner at the top of the page for each pinned tool whose
// definition changed, with the diff and an Approve button. The diff is the backend's text (a
// rug-pull puts its instructions there): it reaches the page through textContent only.
import { ApiError, approvePin, type PinView } from './api.js';
import { element } from './dom.js';
import { ago } from './format.js';

/**
 * Approve asks the API with the page's key (`key`), then `approved` refreshes the page; an
 * approval refused (a tenant admin, a definition that drifted again) stays shown on its alarm
 * across refreshes, until that drift is gone.
 */
export class DriftAlarms {
  /** Why an approval failed, by pin and drift hash. */
  private readonly failures = new Map<string, string>();
  /** What the alarms shown stand for: the same answer again only updates their times. */
  private shown = '';

  constructor(
    private readonly section: HTMLElement,
    private readonly key: () => string,
    private readonly approved: () => void,
  ) {}

  /** The pins' answer, or why it could not be read (shown as a note: the figures still are). */
  render(pins: PinView[] | null, failure: string | null): void {
    const drifted = (pins ?? []).filter((pin) => pin.status === 'drifted' && pin.drift);
    // Rebuilt only when the drifts change, so a live refresh neither scrolls a diff being read
    // back to its top nor resets an approval in progress.
    const shown = JSON.stringify([drifted.map(driftKey), failure]);
    if (shown === this.shown) {
      for (const time of this.section.querySelectorAll('time'))
        time.textContent = when(time.dateTime);
      return;
    }
    this.shown = shown;
    const alarms: HTMLElement[] = drifted.map((pin) => this.alarm(pin));
    if (failure !== null) {
      alarms.push(element('p', 'alarm-note', `Tool pins could not be read: ${failure}`));
    }
    const current = new Set(drifted.map(driftKey));
    for (const key of this.failures.keys()) if (!current.has(key)) this.failures.delete(key);
    this.section.replaceChildren(...alarms);
    this.section.hidden = alarms.length === 0;
  }

  clear(): void {
    this.failures.clear();
    this.render([], null);
  }

  private alarm(pin: PinView): HTMLElement {
    const drift = pin.drift!;
    const box = element('div', 'alarm');
    box.setAttribute('role', 'alert');
    box.dataset.namespace = pin.namespace;
    box.dataset.tool = pin.tool;
    const title = element('h3', undefined, 'Tool definition changed: ');
    title.append(element('span', 'alarm-tool', `${pin.namespace} / ${pin.tool}`));
    const seen = element('time', undefined, when(drift.seen_at));
    seen.dateTime = drift.seen_at;
    const facts = element('p', 'alarm-facts', 'Seen ');
    facts.append(
      seen,
      `; pinned ${short(pin.hash)} (${tokens(pin.tokens)}), now ${short(drift.hash)} ` +
        `(${tokens(drift.tokens)}). Review the change; approve it only if it is expected.`,
    );
    const diff = element('pre', 'diff', drift.diff);
    const approve = element('button', 'approve', 'Approve new definition');
    approve.type = 'button';
    const status = element('span', 'alarm-status', this.failures.get(driftKey(pin)) ?? '');
    approve.addEventListener('click', () => void this.approve(pin, approve, status));
    const actions = element('div', 'alarm-actions');
    actions.append(approve, status);
    box.append(title, facts, diff, actions);
    return box;
  }

  private async approve(pin: PinView, button: HTMLButtonElement, status: HTMLElement) {
    button.disabled = true;
    status.textContent = 'Approving…';
    try {
      await approvePin(pin, this.key());
      this.failures.delete(driftKey(pin));
      status.textContent = 'Approved.';
      this.approved();
    } catch (error) {
      const reason =
        error instanceof ApiError
          ? `${error.status}: ${error.message}`
          : `cannot reach the analytics service (${String(error)})`;
      const message = `Not approved (${reason}).`;
      this.failures.set(driftKey(pin), message);
      status.textContent = message;
      button.disabled = false;
    }
  }
}

function when(iso: string): string {
  return `${new Date(iso).toLocaleString()} (${ago(iso)})`;
}

function driftKey(pin: PinView): string {
  return `${pin.namespace}\u0000${pin.tool}\u0000${pin.drift?.hash ?? ''}`;
}

/** `sha256:` and the first 12 hex digits: enough to tell two definitions apart. */
function short(hash: string): string {
  return hash.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');
}

function tokens(n: number | null): string {
  return n === null ? 'tokens not counted' : `${n.toLocaleString()} tokens`;
}
