// The keyed analytics API, as the page calls it: the admin key as a Bearer token, never in a
// URL; same origin only (the CSP's connect-src 'self').
import type {
  ContextBudget,
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  PinView,
  ServerStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from '../../api/answers.js';

export type {
  ContextBudget,
  ContextTool,
  HistogramBucket,
  KeyStats,
  LatencyHistogram,
  NamespaceStats,
  PinView,
  ServerStats,
  Summary,
  TimeseriesPoint,
  ToolStats,
} from '../../api/answers.js';

/** The fields of an event (SPEC §7) the page shows; the API answers all of them. */
export interface EventRow {
  ts: string;
  direction: 'client_to_server' | 'server_to_client';
  namespace: string;
  server: string | null;
  key_id: string | null;
  client_name: string | null;
  method: string | null;
  tool: string | null;
  outcome: string;
  http_status: number | null;
  duration_ms: number | null;
  count: number;
  client_network: string | null;
}

export interface EventsPage {
  events: EventRow[];
  next_before: string | null;
}

/** What each endpoint answers. */
export interface Answers {
  summary: Summary;
  timeseries: TimeseriesPoint[];
  tools: ToolStats[];
  keys: KeyStats[];
  namespaces: NamespaceStats[];
  servers: ServerStats[];
  events: EventsPage;
  histogram: LatencyHistogram;
  context: ContextBudget;
  pins: PinView[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export async function getAnswer<E extends keyof Answers>(
  endpoint: E,
  params: URLSearchParams,
  key: string,
  signal: AbortSignal,
): Promise<Answers[E]> {
  const response = await fetch(`/api/v1/${endpoint}?${params.toString()}`, {
    headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
    signal,
  });
  return (await answerOf(response)) as Answers[E];
}

/**
 * Accepts the drifted definition of a pinned tool. `hash` is the drift the person saw: when the
 * definition drifted again since, the API refuses (409) instead of approving a diff nobody read.
 */
export async function approvePin(pin: PinView, key: string): Promise<PinView> {
  const path = [pin.namespace, pin.tool].map(encodeURIComponent).join('/');
  const response = await fetch(`/api/v1/pins/${path}/approve`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${key}`,
      Accept: 'application/json',
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ hash: pin.drift?.hash }),
    credentials: 'omit',
    cache: 'no-store',
  });
  return (await answerOf(response)) as PinView;
}

/** The JSON body of an answer; an ApiError with the API's message when it is not a success. */
async function answerOf(response: Response): Promise<unknown> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
    throw new ApiError(
      response.status,
      typeof message === 'string' ? message : response.statusText,
    );
  }
  return body;
}
