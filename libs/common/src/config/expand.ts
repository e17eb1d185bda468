import { isScalar, LineCounter, parseDocument, visit } from 'yaml';

export interface ConfigIssue {
  path: string;
  message: string;
}

// `${NAME}` or `${NAME:-default}`; `$${...}` escapes a literal `${`.
const VARIABLE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands environment variables in one string; reports each unset variable without default. */
export function expandString(
  value: string,
  env: Record<string, string | undefined>,
  onUnset: (name: string) => void,
): string {
  return value.replace(VARIABLE, (whole: string, name?: string, fallback?: string) => {
    if (whole === '$${') return '${';
    const found = env[name!];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    onUnset(name!);
    return '';
  });
}

const MAX_SYNTAX_ISSUES = 5;

export interface ParsedYaml {
  value: unknown;
  issues: ConfigIssue[];
}

/**
 * Parses YAML and expands `${VAR}` in every string scalar (keys excluded) before validation.
 * Issues carry the dotted path and the line, so an operator can find the culprit.
 */
export function parseAndExpand(
  source: string,
  env: Record<string, string | undefined>,
): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // A syntax error is reported by its kind, line and column only: the parser's own messages
  // quote the source around it, and in a config file that is a key's secret (a stray `}` makes
  // every later token an error). The first few are enough to find it; the rest are its echo.
  const issues: ConfigIssue[] = doc.errors.slice(0, MAX_SYNTAX_ISSUES).map((error) => {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    const kind = error.code.toLowerCase().replaceAll('_', ' ');
    return { path: '(file)', message: `YAML syntax error: ${kind} (line ${line}, column ${col})` };
  });
  if (issues.length > 0) return { value: undefined, issues };

  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const path = [pathOf(ancestry), typeof key === 'number' ? String(key) : '']
        .filter(Boolean)
        .join('.');
      const line = node.range ? lineCounter.linePos(node.range[0]).line : undefined;
      node.value = expandString(node.value, env, (name) =>
        issues.push({
          path: path || '(root)',
          message: `environment variable ${name} is not set${line ? ` (line ${line})` : ''}`,
        }),
      );
    },
  });
  return { value: doc.toJS(), issues };
}

function pathOf(ancestry: readonly unknown[]): string {
  const parts: string[] = [];
  for (let i = 0; i < ancestry.length; i++) {
    const node = ancestry[i] as { items?: unknown[]; key?: unknown };
    const next = ancestry[i + 1];
    if (node && typeof node === 'object' && 'key' in node && 'value' in node) {
      const key = (node as { key: unknown }).key;
      parts.push(String(isScalar(key) ? key.value : key));
    } else if (
      node &&
      Array.isArray(node.items) &&
      next !== undefined &&
      !('key' in (next as object))
    ) {
      parts.push(String(node.items.indexOf(next)));
    }
  }
  return parts.join('.');
}
