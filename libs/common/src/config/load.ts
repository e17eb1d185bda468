import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { type ConfigIssue, parseAndExpand } from './expand.js';
import { type GatewayConfig, gatewayConfigSchema } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      `invalid configuration in ${source}:\n` +
        issues.map((issue) => `  ${issue.path}: ${issue.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** Parses, expands and validates a config document; throws ConfigError listing every problem. */
export function parseConfig(
  text: string,
  env: Record<string, string | undefined>,
  source = 'config',
): GatewayConfig {
  const parsed = parseAndExpand(text, env);
  if (parsed.issues.length > 0) throw new ConfigError(source, parsed.issues);
  const result = gatewayConfigSchema.safeParse(parsed.value ?? {});
  if (!result.success) throw new ConfigError(source, result.error.issues.map(toIssue));
  return result.data;
}

export function loadConfigFile(
  path: string,
  env: Record<string, string | undefined> = process.env,
): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [{ path: '(file)', message: (error as Error).message }]);
  }
  return parseConfig(text, env, path);
}

function toIssue(issue: z.core.$ZodIssue): ConfigIssue {
  const path = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    return { path, message: `unknown field(s): ${issue.keys.join(', ')}` };
  }
  if (issue.code === 'invalid_key') {
    // zod says only "Invalid key in record"; the key schema's own message says what is wrong.
    return {
      path,
      message: issue.issues.map((inner) => inner.message).join('; ') || issue.message,
    };
  }
  return { path, message: issue.message };
}
