import { OPENAPI_DOCUMENT } from '../api/openapi.js';

interface Parameter {
  name: string;
  description: string;
  schema: { type?: string; enum?: readonly string[]; default?: unknown };
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface Operation {
  summary: string;
  parameters: Parameter[];
  requestBody?: { description: string };
  responses: Record<string, { description: string }>;
}

function parameterRow(parameter: Parameter): string {
  const type = parameter.schema.enum
    ? parameter.schema.enum.join(' | ')
    : (parameter.schema.type ?? 'string');
  return `<tr><td><code>${escapeHtml(parameter.name)}</code></td><td>${escapeHtml(type)}</td><td>${escapeHtml(parameter.description)}</td></tr>`;
}

/**
 * The API reference as one self-contained HTML page, rendered from the OpenAPI document (no
 * external scripts: standalone mode works offline).
 */
export function renderDocsPage(): string {
  const sections = Object.entries(OPENAPI_DOCUMENT.paths).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Operation>).map(([verb, operation]) => {
      const responses = Object.entries(operation.responses)
        .map(
          ([status, response]) => `<li><b>${status}</b> ${escapeHtml(response.description)}</li>`,
        )
        .join('');
      const parameters =
        operation.parameters.length > 0
          ? `<table><thead><tr><th>parameter</th><th>type</th><th></th></tr></thead><tbody>${operation.parameters.map(parameterRow).join('')}</tbody></table>`
          : '';
      const body = operation.requestBody
        ? `<p>Body (JSON): ${escapeHtml(operation.requestBody.description)}</p>`
        : '';
      return `<section><h2><span class="verb">${verb.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h2>
<p>${escapeHtml(operation.summary)}</p>
${parameters}${body}
<ul>${responses}</ul></section>`;
    }),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(OPENAPI_DOCUMENT.info.title)} API</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
code{font:13px ui-monospace,monospace;background:#f1f3f7;padding:0 .25rem;border-radius:3px}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border-bottom:1px solid #e3e6ec;padding:.3rem .5rem;text-align:left;vertical-align:top}
.verb{background:#2b6cb0;color:#fff;font-size:12px;padding:.1rem .4rem;border-radius:3px}section{margin:2rem 0}
</style></head><body>
<h1>${escapeHtml(OPENAPI_DOCUMENT.info.title)} API</h1>
<p>${escapeHtml(OPENAPI_DOCUMENT.info.description)}</p>
<p>Every endpoint needs an admin key: <code>Authorization: Bearer &lt;key&gt;</code> or <code>X-API-Key: &lt;key&gt;</code>.
Errors are <code>{ "error": { "code", "message", "requestId" } }</code>. Machine-readable: <a href="/api/v1/openapi.json">openapi.json</a>.</p>
${sections.join('\n')}
</body></html>`;
}
