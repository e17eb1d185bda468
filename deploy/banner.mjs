#!/usr/bin/env node
// What `npm start` prints when the gateway is up (apps/standalone/src/main.ts, printBanner), for
// the compose stack: docker-compose.yml runs this once every service is healthy. Only compose
// knows the URLs a client uses (the ports it publishes), so it passes them in:
//
//   node deploy/banner.mjs MCP_URL ANALYTICS_URL      e.g. http://localhost:8080 http://localhost:8081
//
// The config is GATEWAY_CONFIG's, expanded with the environment as the services expand it. A key
// is printed only when the file itself gives it in clear (the public demo defaults); one set
// through the environment (GATEWAY_DEMO_KEY=…) is named but never printed, so a real secret
// does not end up in `docker compose logs`.
import { fileURLToPath } from 'node:url';

/**
 * The banner's text. `config` is the config as the services load it; `fileDefaults` the same
 * file expanded with an empty environment (undefined when it needs a variable without a default).
 */
export function bannerText({ config, fileDefaults, mcpUrl, analyticsUrl }) {
  const mcp = mcpUrl.replace(/\/+$/, '');
  const analytics = analyticsUrl.replace(/\/+$/, '');
  const lines = [
    '',
    'MCP Gateway is running (compose: auth, analytics and the edges behind the load balancer)',
    '',
    '  MCP endpoints (Streamable HTTP):',
    ...Object.keys(config.namespaces).map((ns) => `    ${mcp}/mcp/${ns}`),
    '',
    `  Analytics:   ${analytics}/   (API: ${analytics}/api/v1/summary)`,
    `  Operations:  ${mcp}/healthz  /readyz  /metrics`,
    '',
  ];
  const inClear = config.keys.filter((key) => key.key !== undefined);
  const fromFile = (key) =>
    fileDefaults?.keys.some((other) => other.id === key.id && other.key === key.key) === true;
  for (const key of inClear) {
    const who = `(${key.id}, role ${key.role})`;
    lines.push(
      fromFile(key)
        ? `  Demo key ${who}: ${key.key}`
        : `  Key ${who}: set in the environment, not shown`,
    );
  }
  const admin = inClear.find((key) => key.role === 'admin' && fromFile(key));
  if (admin) {
    lines.push(
      '',
      `  Try: curl -s -H "Authorization: Bearer ${admin.key}" ${analytics}/api/v1/summary`,
    );
  }
  return `${lines.join('\n')}\n\n`;
}

async function main([mcpUrl, analyticsUrl]) {
  if (!URL.canParse(mcpUrl ?? '') || !URL.canParse(analyticsUrl ?? '')) {
    throw new Error('usage: node deploy/banner.mjs MCP_URL ANALYTICS_URL');
  }
  // '#common' is the built shared library (package.json "imports"), as in healthcheck.mjs.
  const { loadConfigFile, readRuntimeSettings } = await import('#common');
  const { configPath, env } = readRuntimeSettings();
  const config = loadConfigFile(configPath, env);
  let fileDefaults;
  try {
    fileDefaults = loadConfigFile(configPath, {});
  } catch {
    // A variable without a default: no key can be told to be the file's own, so none is shown.
  }
  process.stdout.write(bannerText({ config, fileDefaults, mcpUrl, analyticsUrl }));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await main(process.argv.slice(2));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
