import {
  type GatewayConfig,
  KEY_ID,
  KEY_ID_HELP,
  looksLikeSecret,
  parseDuration,
  SECRET_PREFIX,
} from '#common';
import { z } from 'zod';

const glob = z.string().min(1, 'must not be empty');

/** The body of `POST /api/v1/admin/keys` (SPEC §5 v2): a file key's fields, minus the secret. */
const newKeyInput = z.strictObject({
  id: z
    .string()
    .regex(KEY_ID, KEY_ID_HELP)
    // An id never looks like a secret, so one that does is refused (and redacted) as a secret.
    .refine((id) => !looksLikeSecret(id), `must not contain ${SECRET_PREFIX} (how secrets begin)`)
    .optional(),
  user: z
    .string({ error: (issue) => (issue.input === undefined ? 'required' : 'must be a string') })
    .min(1, 'must not be empty')
    .max(256),
  tenant: z.string().min(1, 'must not be empty').max(128).optional(),
  roles: z.array(z.string()).max(64).default([]),
  namespaces: z.array(z.string()).max(256).default([]),
  tools: z
    .strictObject({ allow: z.array(glob).default(['*']), deny: z.array(glob).default([]) })
    .optional(),
  rate_limit: z
    .strictObject({
      requests: z.number().int().positive(),
      per: z.string().refine((text) => parseDuration(text) !== undefined, {
        error: (issue) =>
          `invalid duration ${JSON.stringify(issue.input)} (use e.g. 500ms, 30s, 5m, 1h, 7d)`,
      }),
    })
    .optional(),
  expires_at: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time' }).optional(),
});

export type NewKey = z.output<typeof newKeyInput>;

/**
 * Validates a new key against the config in force, as a file key is validated: its roles must
 * exist, its namespaces exist (or be `*`), its expiry lie ahead. Answers every problem at once,
 * each with the field it is about (`roles.0: unknown role "x"`), or the key.
 */
export function parseNewKey(
  input: unknown,
  config: Pick<GatewayConfig, 'roles' | 'namespaces'>,
  now = Date.now(),
): { ok: true; key: NewKey } | { ok: false; message: string } {
  const parsed = newKeyInput.safeParse(input);
  if (!parsed.success) {
    return { ok: false, message: parsed.error.issues.map(describe).join('; ') };
  }
  const key = parsed.data;
  const problems: string[] = [];
  key.roles.forEach((role, i) => {
    if (!Object.hasOwn(config.roles, role)) problems.push(`roles.${i}: unknown role "${role}"`);
  });
  key.namespaces.forEach((ns, i) => {
    if (ns !== '*' && !Object.hasOwn(config.namespaces, ns)) {
      problems.push(`namespaces.${i}: unknown namespace "${ns}"`);
    }
  });
  if (key.expires_at !== undefined && Date.parse(key.expires_at) <= now) {
    problems.push('expires_at: must be in the future');
  }
  return problems.length > 0 ? { ok: false, message: problems.join('; ') } : { ok: true, key };
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
    return issue.keys.map((key) => `${at}${key}: unknown field`).join('; ');
  }
  if (issue.path.length === 0) return 'the body must be a JSON object';
  return `${issue.path.join('.')}: ${issue.message.replace(/^Invalid input: /, '')}`;
}
