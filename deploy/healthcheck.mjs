#!/usr/bin/env node
// Container healthcheck for the gateway image. The image is node:*-slim, which has no curl or
// wget, so Docker's HEALTHCHECK runs this instead. Ports and the NATS URL come from the same
// readRuntimeSettings() the services use, so a check can never probe a port the service does
// not listen on.
//
//   node deploy/healthcheck.mjs edge [healthz|readyz]       GET 127.0.0.1:EDGE_PORT/<path>
//   node deploy/healthcheck.mjs analytics [healthz|readyz]  GET 127.0.0.1:ANALYTICS_PORT/<path>
//   node deploy/healthcheck.mjs auth                        one auth.key.verify round trip over NATS
//                                                           (on the subject of GATEWAY_CONFIG's events.nats_prefix)
//   node deploy/healthcheck.mjs tcp PORT                    something accepts connections on PORT
//
// Exit 0 = healthy, 1 = unhealthy (Docker treats every other code as reserved).
import { connect } from 'node:net';

const TIMEOUT_MS = 4_000;
const [target = 'edge', arg] = process.argv.slice(2);

try {
  await check(target, arg);
  process.exit(0);
} catch (error) {
  console.error(`unhealthy (${target}): ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

async function check(what, detail) {
  switch (what) {
    case 'edge':
    case 'analytics': {
      // Loaded lazily: '#common' pulls in the whole shared library, which `tcp` does not need.
      const { readRuntimeSettings } = await import('#common');
      const settings = readRuntimeSettings();
      const port = what === 'edge' ? settings.edgePort : settings.analyticsPort;
      const path = detail === 'healthz' ? 'healthz' : 'readyz';
      const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`/${path} answered ${response.status}`);
      return;
    }
    case 'auth': {
      // The auth service has no HTTP port: ask it a real question. An unknown key must be
      // answered `{ ok: false }`; "no responders" or a timeout means auth is not serving. It asks
      // on the subject of the deployment's prefix, read from the config file as the service does.
      const { AUTH_KEY_VERIFY, NatsBus, loadConfigFile, natsNames, readRuntimeSettings } =
        await import('#common');
      const { natsUrl, configPath, env } = readRuntimeSettings();
      if (!natsUrl) throw new Error('NATS_URL is not set');
      const names = natsNames(loadConfigFile(configPath, env).events.nats_prefix);
      const bus = await NatsBus.connect(natsUrl, 'healthcheck', names);
      try {
        const reply = await bus.send(
          AUTH_KEY_VERIFY,
          { keySha256: '0'.repeat(64) },
          { timeoutMs: TIMEOUT_MS },
        );
        if (typeof reply?.ok !== 'boolean') throw new Error('auth answered without "ok"');
      } finally {
        await bus.close();
      }
      return;
    }
    case 'tcp':
      await tcp(Number(detail));
      return;
    default:
      throw new Error(`unknown target "${what}" (edge | analytics | auth | tcp PORT)`);
  }
}

function tcp(port) {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    return Promise.reject(new Error('tcp needs a port'));
  }
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: TIMEOUT_MS });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`port ${port}: timeout`));
    });
    socket.once('error', reject);
  });
}
