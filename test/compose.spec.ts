import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { type GatewayConfig, parseConfig, parseDuration, readRuntimeSettings } from '#common';

// The deployment files (docker-compose.yml, Dockerfile, deploy/, .ci/run) are checked against
// the code they start: npm scripts, runtime defaults, the config schema. There is no Docker
// engine in CI, so this is what keeps them from drifting; `docker compose config` and
// `nginx -t` run too when their binaries happen to be installed.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
/** A shell script or Dockerfile without its comment lines (which may name what not to do). */
const code = (text: string) =>
  text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n');

/** SPEC §2: the environment variables the gateway reads. */
const SPEC_ENV = [
  'GATEWAY_CONFIG',
  'EDGE_PORT',
  'ANALYTICS_PORT',
  'NATS_URL',
  'REDIS_URL',
  'GATEWAY_SESSION_SECRET',
  'ANALYTICS_DB',
  'LOG_LEVEL',
];
/** Compose services that run a gateway process, and the npm script each one stands for. */
const GATEWAY_SERVICES = { auth: 'start:auth', analytics: 'start:analytics', edge: 'start:edge' };

interface Healthcheck {
  test: string[] | string;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | null>;
  ports?: (string | { target: number; published?: string | number })[];
  expose?: (string | number)[];
  volumes?: (string | { source?: string; target: string })[];
  container_name?: string;
  restart?: string;
  deploy?: { replicas?: number };
  healthcheck?: Healthcheck;
  depends_on?: string[] | Record<string, { condition?: string }>;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// `merge: true`: the file shares blocks between services with YAML merge keys (`<<:`).
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const pkg = JSON.parse(read('package.json')) as {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};
const defaults = readRuntimeSettings({});

function argv(command: string[] | string | undefined): string[] {
  if (command === undefined) return [];
  return Array.isArray(command) ? command : command.trim().split(/\s+/);
}

/** The npm script a command runs: `npm run X`, `npm start`, or `node <a script's entry>`. */
function scriptOf(command: string[]): string | undefined {
  const [bin, ...args] = command;
  if (bin === 'npm' && args[0] === 'run') return args[1] in pkg.scripts ? args[1] : undefined;
  if (bin === 'npm' && args[0] === 'start' && 'start' in pkg.scripts) return 'start';
  if (bin === 'node' && args.length > 0) {
    const entry = `node ${args.join(' ')}`;
    return Object.keys(pkg.scripts).find((name) => pkg.scripts[name] === entry);
  }
  return undefined;
}

/** `host:container` volume strings and long-form volumes, as { source, target }. */
function mounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') return { source: volume.source ?? '', target: volume.target };
    const [source, target] = volume.split(':');
    return { source, target };
  });
}

/** Container ports a service publishes on the host, as { published, target }. */
function published(service: Service): { published: string; target: number }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string')
      return { published: String(port.published ?? ''), target: port.target };
    const parts = port.split(':');
    return {
      published: parts.length > 1 ? parts[parts.length - 2] : '',
      target: Number(parts.at(-1)),
    };
  });
}

/** Reads a file bind-mounted into a service at `target` (or inside a mounted folder). */
function mountedFile(service: Service, target: string): string {
  for (const { source, target: at } of mounts(service)) {
    if (!source.startsWith('./')) continue;
    if (at === target) return read(source);
    if (target.startsWith(`${at}/`)) return read(posix.join(source, target.slice(at.length + 1)));
  }
  throw new Error(`nothing is mounted at ${target}`);
}

/** A deploy/ script the image contains: copied by the Dockerfile, let through .dockerignore. */
function shipped(path: string): boolean {
  return (
    existsSync(join(ROOT, path)) &&
    read('Dockerfile').includes(`COPY ${path} `) &&
    read('.dockerignore').split('\n').includes(`!${path}`)
  );
}

function nginxDirective(conf: string, name: string): string[] {
  return [...conf.matchAll(new RegExp(`^\\s*${name}\\s+([^;]+);`, 'gm'))].map((m) => m[1].trim());
}

describe('docker-compose.yml', () => {
  it('has nats, redis, auth, analytics, edge and a load balancer', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['nats', 'redis', 'auth', 'analytics', 'edge', 'lb']),
    );
  });

  it.each(Object.entries(GATEWAY_SERVICES))(
    'runs the %s service with the entry of `npm run %s`',
    (name, script) => {
      const service = services[name];
      expect(scriptOf(argv(service.command))).toBe(script);
      // A plain `npm start` would run `prestart` (a build) in an image without a compiler.
      expect(argv(service.command)).not.toContain('start');
    },
  );

  it('runs every service built from the gateway image with a command the image contains', () => {
    const fromImage = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(fromImage.length).toBeGreaterThanOrEqual(3);
    for (const [name, service] of fromImage) {
      const command = argv(service.command);
      if (scriptOf(command)) continue;
      const [bin, path] = command;
      expect({ name, bin }).toEqual({ name, bin: 'node' });
      if (path.startsWith('deploy/')) {
        expect({ name, path, shipped: shipped(path) }).toEqual({ name, path, shipped: true });
        continue;
      }
      // Otherwise a demo backend shipped as a production dependency (kept by `npm prune`).
      const dependency = Object.keys(pkg.dependencies).find((dep) =>
        path.startsWith(`node_modules/${dep}/`),
      );
      expect({ name, path, fromDependency: dependency !== undefined }).toEqual({
        name,
        path,
        fromDependency: true,
      });
      expect(existsSync(join(ROOT, path))).toBe(true);
    }
  });

  it('keeps the edge scalable: no container_name, no host port, no fixed replica count', () => {
    const edge = services.edge;
    expect(edge.container_name).toBeUndefined();
    expect(edge.ports ?? []).toEqual([]);
    expect(edge.deploy?.replicas).toBeUndefined();
    expect(edge.environment?.EDGE_PORT ?? String(defaults.edgePort)).toBe(
      String(defaults.edgePort),
    );
  });

  it('gives every edge replica the same session secret and Redis', () => {
    const env = services.edge.environment ?? {};
    expect(String(env.GATEWAY_SESSION_SECRET ?? '')).not.toBe('');
    expect(String(env.REDIS_URL)).toMatch(/^redis:\/\/redis:6379/);
    expect(String(env.NATS_URL)).toMatch(/^nats:\/\/nats:4222/);
  });

  it('publishes analytics on the default ANALYTICS_PORT, as exactly one replica with a data volume', () => {
    const analytics = services.analytics;
    expect(analytics.environment?.ANALYTICS_PORT ?? String(defaults.analyticsPort)).toBe(
      String(defaults.analyticsPort),
    );
    expect(published(analytics).map((p) => p.target)).toContain(defaults.analyticsPort);
    expect(analytics.deploy?.replicas).toBe(1);
    expect(analytics.container_name).toBeUndefined();
    const db = String(analytics.environment?.ANALYTICS_DB ?? defaults.analyticsDb);
    const dataDir = mounts(analytics).find((m) => m.target === posix.dirname(db));
    expect(dataDir?.source).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(dataDir?.source);
  });

  it('starts NATS with JetStream and its store on a volume', () => {
    const nats = services.nats;
    const command = argv(nats.command);
    expect(command.some((arg) => arg === '-js' || arg === '--jetstream')).toBe(true);
    const storeDir = command[command.indexOf('-sd') + 1];
    expect(mounts(nats).map((m) => m.target)).toContain(storeDir);
  });

  it('passes the gateway only SPEC §2 variables and those its mounted config expands', () => {
    for (const name of Object.keys(GATEWAY_SERVICES)) {
      const service = services[name];
      const env = service.environment ?? {};
      const configPath = String(env.GATEWAY_CONFIG ?? defaults.configPath);
      const configVars = [...mountedFile(service, configPath).matchAll(/\$\{([A-Za-z_]\w*)/g)].map(
        (m) => m[1],
      );
      for (const variable of Object.keys(env)) {
        expect({
          service: name,
          variable,
          known: [...SPEC_ENV, ...configVars].includes(variable),
        }).toEqual({
          service: name,
          variable,
          known: true,
        });
      }
    }
  });

  it('mounts a gateway config that validates, with every backend reachable as a compose service', () => {
    const edge = services.edge;
    const text = mountedFile(edge, String(edge.environment?.GATEWAY_CONFIG));
    // With nothing set, as for a bare `docker compose up`: the demo defaults must be valid.
    const config = parseConfig(text, {}, 'deploy config');
    expect(Object.keys(config.namespaces).length).toBeGreaterThan(0);
    for (const [ns, { upstream }] of Object.entries(config.namespaces)) {
      if (!('url' in upstream)) continue;
      const host = new URL(upstream.url).hostname;
      expect({ ns, host, service: host in services }).toEqual({ ns, host, service: true });
    }
    // The same file (same mount) for every gateway service.
    for (const name of Object.keys(GATEWAY_SERVICES)) {
      expect(mountedFile(services[name], String(services[name].environment?.GATEWAY_CONFIG))).toBe(
        text,
      );
    }
  });

  it('waits only on dependencies that have a healthcheck', () => {
    for (const [name, service] of Object.entries(services)) {
      // A one-shot job (restart: 'no', it exits when done) has nothing to check.
      expect({ name, healthcheck: service.healthcheck !== undefined }).toEqual({
        name,
        healthcheck: service.restart !== 'no',
      });
      const deps = service.depends_on;
      if (deps === undefined || Array.isArray(deps)) continue;
      for (const [dep, { condition }] of Object.entries(deps)) {
        expect(dep in services).toBe(true);
        if (condition === 'service_healthy') expect(services[dep].healthcheck).toBeDefined();
      }
    }
  });

  it('health-checks with scripts that the image ships', () => {
    for (const [name, service] of Object.entries(services)) {
      const test = argv(service.healthcheck?.test);
      const script = test.find((arg) => arg.startsWith('deploy/'));
      if (!script) continue;
      expect({ name, script, shipped: shipped(script) }).toEqual({ name, script, shipped: true });
    }
  });
});

describe('banner (what `npm start` prints, for the compose stack)', () => {
  const banner = services.banner;
  const [, script, mcpUrl, analyticsUrl] = argv(banner.command);
  const configText = mountedFile(banner, String(banner.environment?.GATEWAY_CONFIG));
  const bannerText = async (env: Record<string, string>) => {
    const module = (await import(pathToFileURL(join(ROOT, script)).href)) as {
      bannerText: (options: {
        config: GatewayConfig;
        fileDefaults: GatewayConfig;
        mcpUrl: string;
        analyticsUrl: string;
      }) => string;
    };
    return module.bannerText({
      config: parseConfig(configText, env, 'deploy config'),
      fileDefaults: parseConfig(configText, {}, 'deploy config'),
      mcpUrl,
      analyticsUrl,
    });
  };

  it('runs once, after the load balancer and analytics are healthy', () => {
    expect(script).toBe('deploy/banner.mjs');
    expect(banner.restart).toBe('no');
    expect(banner.depends_on).toEqual({
      lb: { condition: 'service_healthy' },
      analytics: { condition: 'service_healthy' },
    });
  });

  it('prints the URLs of the host ports that lb and analytics publish', () => {
    const hostPort = (url: string) => new URL(url).port;
    expect(published(services.lb).map((p) => p.published)).toContain(hostPort(mcpUrl));
    expect(published(services.analytics).map((p) => p.published)).toContain(hostPort(analyticsUrl));
  });

  it('reads the config the gateway services read', () => {
    expect(configText).toBe(
      mountedFile(services.edge, String(services.edge.environment?.GATEWAY_CONFIG)),
    );
  });

  it('prints every namespace endpoint and the demo keys of a bare `docker compose up`', async () => {
    const text = await bannerText({});
    const config = parseConfig(configText, {}, 'deploy config');
    for (const ns of Object.keys(config.namespaces)) {
      expect(text).toContain(`${mcpUrl}/mcp/${ns}\n`);
    }
    expect(text).toContain(`${analyticsUrl}/api/v1/summary`);
    for (const key of config.keys)
      expect(text).toContain(`(${key.id}, role ${key.role}): ${key.key}`);
  });

  it('never prints a key set in the environment', async () => {
    const secret = 'a-real-secret-set-by-the-operator';
    const text = await bannerText({ GATEWAY_DEMO_KEY: secret, GATEWAY_ADMIN_KEY: secret });
    expect(text).not.toContain(secret);
    expect(text).toContain('(admin, role admin): set in the environment, not shown');
  });
});

describe('load balancer (deploy/nginx)', () => {
  const lb = services.lb;
  const conf = mountedFile(lb, '/etc/nginx/nginx.conf');

  it('sends traffic to the edge service on the default EDGE_PORT', () => {
    const variables = Object.fromEntries(
      nginxDirective(conf, 'set').map((value) => value.split(/\s+/) as [string, string]),
    );
    const targets = nginxDirective(conf, 'proxy_pass').map((target) =>
      target.replace(/\$\w+/g, (name) => variables[name] ?? name),
    );
    expect(targets).toEqual([`http://edge:${defaults.edgePort}`]);
  });

  it('resolves the edge name through Docker DNS at request time, so every replica gets traffic', () => {
    expect(nginxDirective(conf, 'resolver')[0]).toMatch(/^127\.0\.0\.11\b/);
    // A variable in proxy_pass is what makes nginx use the resolver per request.
    expect(nginxDirective(conf, 'proxy_pass')[0]).toMatch(/\$\w+/);
  });

  it('relays SSE streams unbuffered over HTTP/1.1 with long read timeouts', () => {
    expect(nginxDirective(conf, 'proxy_buffering')).toEqual(['off']);
    expect(nginxDirective(conf, 'proxy_request_buffering')).toEqual(['off']);
    expect(nginxDirective(conf, 'proxy_http_version')).toEqual(['1.1']);
    expect(nginxDirective(conf, 'proxy_set_header')).toContain('Connection ""');
    for (const timeout of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const [value] = nginxDirective(conf, timeout);
      expect(parseDuration(value) ?? 0).toBeGreaterThanOrEqual(600_000);
    }
  });

  it('publishes the port it listens on', () => {
    const listen = nginxDirective(conf, 'listen').map(Number);
    for (const port of published(lb)) expect(listen).toContain(port.target);
    expect(published(lb).map((p) => p.published)).toContain(String(defaults.edgePort));
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  // Stages: split at each FROM, keeping the FROM line with its stage.
  const stages = dockerfile.split(/^(?=FROM\s)/m).filter((s) => s.startsWith('FROM'));
  const build = stages.find((s) => /^FROM\s+\S+\s+AS\s+build\b/i.test(s)) ?? '';
  const runtime = stages.at(-1) ?? '';

  it('builds on Node 20 with npm ci (exactly the lockfile) and npm run build', () => {
    expect(dockerfile).toMatch(/node:20-bookworm-slim/);
    expect(build).toMatch(/^RUN npm ci\b/m);
    expect(build).toMatch(/^RUN npm run build\b/m);
    expect(code(dockerfile)).not.toMatch(/npm install\b/);
    expect(build).toMatch(/npm prune --omit=dev/);
  });

  it('runs as a non-root user, standalone (`npm start`) by default', () => {
    const users = [...runtime.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toBeDefined();
    expect(users.at(-1)).not.toMatch(/^(root|0)$/);
    const cmd = /^CMD\s+(\[.*\])/m.exec(runtime)?.[1];
    expect(scriptOf(JSON.parse(cmd ?? '[]') as string[])).toBe('start');
  });
});

describe('.ci/run', () => {
  const script = read('.ci/run');

  it('is strict bash that installs with npm ci and runs npm test', () => {
    expect(script.split('\n')[0]).toMatch(/^#!.*bash/);
    expect(script).toMatch(/^set -euo pipefail$/m);
    expect(() => accessSync(join(ROOT, '.ci/run'), constants.X_OK)).not.toThrow();
    // npm ci: the lockfile as committed, never rewritten by CI (it lists every platform).
    expect(script).toMatch(/^npm ci\b/m);
    expect(code(script)).not.toMatch(/npm install\b/);
    expect(script).toMatch(/^npm test$/m);
  });
});

// Optional: real validators, when this machine has them (CI may not; nothing here needs them).
function available(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.status === 0;
}
const composeCli: string[] | undefined = available('docker', ['compose', 'version'])
  ? ['docker', 'compose']
  : available('docker-compose', ['version'])
    ? ['docker-compose']
    : undefined;
const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));

describe('external validators', () => {
  if (!composeCli)
    console.info('compose.spec: `docker compose` not installed; skipping `compose config`');
  (composeCli ? it : it.skip)(
    '`docker compose config` accepts docker-compose.yml (offline)',
    () => {
      const [bin, ...args] = composeCli ?? [];
      const result = spawnSync(bin, [...args, '-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    },
  );

  if (!nginx) console.info('compose.spec: nginx not installed; skipping `nginx -t`');
  (nginx ? it : it.skip)('`nginx -t` accepts the load balancer config', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'nginx-t-'));
    try {
      const result = spawnSync(
        nginx!,
        ['-t', '-q', '-p', prefix, '-c', join(ROOT, 'deploy/nginx/nginx.conf'), '-e', 'stderr'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});
