import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig, readRuntimeSettings, type RuntimeSettings } from '#common';

// The Kubernetes base (deploy/k8s) checked against the code it runs, as compose.spec.ts does for
// docker-compose.yml: commands, ports, probes, environment, config, selectors, drain timing.
// Every check runs on the base as this file renders it (a small reader of the kustomization
// fields the base uses, so the test never depends on kubectl) and, when kubectl is installed,
// on `kubectl kustomize` too, which must render the same thing.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BASE = 'deploy/k8s';
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// ---- the shapes of the resources the checks read ----

type Labels = Record<string, string>;
interface Metadata {
  name: string;
  labels?: Labels;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
  };
}
interface EnvFrom {
  configMapRef?: { name: string };
  secretRef?: { name: string };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  fsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[] };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  envFrom?: EnvFrom[];
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string };
  emptyDir?: object;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
}
interface Workload {
  kind: 'Deployment' | 'StatefulSet';
  metadata: Metadata;
  spec: {
    replicas?: number;
    selector: { matchLabels: Labels };
    template: { metadata: { labels: Labels }; spec: PodSpec };
    volumeClaimTemplates?: { metadata: Metadata }[];
  };
}
interface Service {
  metadata: Metadata;
  spec: {
    selector: Labels;
    ports: { name?: string; port: number; targetPort?: number | string }[];
  };
}
interface Pdb {
  metadata: Metadata;
  spec: { selector: { matchLabels: Labels } };
}
interface Hpa {
  metadata: Metadata;
  spec: {
    scaleTargetRef: { kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    metrics: { type: string; resource?: { name: string } }[];
  };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  data?: Record<string, string>;
  type?: string;
  spec?: unknown;
}

// ---- the base, rendered without kubectl ----

interface Generator {
  name: string;
  files?: string[];
  literals?: string[];
  envs?: string[];
  options?: { disableNameSuffixHash?: boolean; labels?: Labels };
}
interface Kustomization {
  resources?: string[];
  generatorOptions?: { labels?: Labels };
  images?: { name: string; newName?: string; newTag?: string }[];
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}
/** The kustomization fields the reader below understands; anything else must be taught to it. */
const UNDERSTOOD = [
  'apiVersion',
  'kind',
  'resources',
  'images',
  'configMapGenerator',
  'secretGenerator',
  'generatorOptions',
];

const kustomization = parse(read(`${BASE}/kustomization.yaml`)) as Kustomization;

function generated(generator: Generator): Record<string, string> {
  const data: Record<string, string> = {};
  const pair = (line: string) => {
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`${generator.name}: "${line}" is not KEY=VALUE`);
    data[line.slice(0, at)] = line.slice(at + 1);
  };
  for (const file of generator.files ?? []) {
    const [key, path] = file.includes('=') ? file.split('=', 2) : [basename(file), file];
    data[key] = read(posix.join(BASE, path));
  }
  for (const literal of generator.literals ?? []) pair(literal);
  for (const env of generator.envs ?? []) {
    for (const line of read(posix.join(BASE, env)).split('\n')) {
      if (line.trim() && !line.trimStart().startsWith('#')) pair(line);
    }
  }
  return data;
}

function generatedMetadata(generator: Generator): Metadata {
  const labels = { ...kustomization.generatorOptions?.labels, ...generator.options?.labels };
  return Object.keys(labels).length > 0
    ? { name: generator.name, labels }
    : { name: generator.name };
}

function podSpecs(manifests: Manifest[]): PodSpec[] {
  return workloads(manifests).map((w) => w.spec.template.spec);
}

/** `kustomize build`, for the fields in UNDERSTOOD. */
function renderOwn(): Manifest[] {
  const unknown = Object.keys(kustomization).filter((key) => !UNDERSTOOD.includes(key));
  if (unknown.length > 0) {
    throw new Error(`test/k8s.spec.ts does not render ${unknown.join(', ')} yet: teach it`);
  }
  const manifests: Manifest[] = [];
  for (const file of kustomization.resources ?? []) {
    for (const doc of parseAllDocuments(read(posix.join(BASE, file)))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
      const value = doc.toJS() as Manifest | null;
      if (value) manifests.push(value);
    }
  }
  for (const generator of kustomization.configMapGenerator ?? []) {
    manifests.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: generatedMetadata(generator),
      data: generated(generator),
    });
  }
  for (const generator of kustomization.secretGenerator ?? []) {
    const data = Object.entries(generated(generator)).map(([key, value]): [string, string] => [
      key,
      Buffer.from(value).toString('base64'),
    ]);
    manifests.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: generatedMetadata(generator),
      data: Object.fromEntries(data),
      type: 'Opaque',
    });
  }
  for (const spec of podSpecs(manifests)) {
    for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const [name, tag] = container.image.split(':');
      const image = kustomization.images?.find((entry) => entry.name === name);
      if (image) container.image = `${image.newName ?? name}:${image.newTag ?? tag}`;
    }
  }
  return manifests;
}

/** `kubectl kustomize`, or why it could not run. */
function renderKubectl(): { manifests?: Manifest[]; missing?: string } {
  const result = spawnSync('kubectl', ['kustomize', BASE], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) return { missing: result.error.message };
  if (result.status !== 0) throw new Error(`kubectl kustomize ${BASE} failed:\n${result.stderr}`);
  const manifests = parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
  return { manifests };
}

/** Generated names carry a content hash in kubectl's rendering (unless disabled): drop it. */
function withoutHashes(manifests: Manifest[]): Manifest[] {
  const hashed = [
    ...(kustomization.configMapGenerator ?? []),
    ...(kustomization.secretGenerator ?? []),
  ]
    .filter((generator) => !generator.options?.disableNameSuffixHash)
    .map((generator) => generator.name);
  const strip = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const name = hashed.find((n) => new RegExp(`^${n}-[a-z0-9]{10}$`).test(value));
      return name ?? value;
    }
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strip(v)]));
    }
    return value;
  };
  return manifests.map((manifest) => strip(manifest) as Manifest);
}

const byId = (manifests: Manifest[]) =>
  [...manifests].sort((a, b) =>
    `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`),
  );

// ---- what the code says ----

const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
const dockerfile = read('Dockerfile');
const runtimeStage = dockerfile.split(/^(?=FROM\s)/m).at(-1) ?? '';
const workdir = [...runtimeStage.matchAll(/^WORKDIR\s+(\S+)/gm)].at(-1)?.[1] ?? '/';

/** Every environment variable the services read (runtime settings, tracing, ...). */
const APP_VARS = (() => {
  const names = new Set<string>();
  const dirs = ['apps', 'libs'];
  for (const dir of dirs) {
    for (const file of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!/^[\w-]+\/src\/.*\.ts$/.test(file) || /\.(int-|e2e-)?spec\.ts$/.test(file)) continue;
      // The CLI (apps/cli) is an operator's client of the admin API, not a service.
      if (dir === 'apps' && file.startsWith('cli/')) continue;
      const text = read(posix.join(dir, file));
      for (const m of text.matchAll(
        /\benv\??\.([A-Z][A-Z0-9_]+)\b|\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g,
      ))
        names.add(m[1] ?? m[2]);
    }
  }
  return [...names].sort();
})();

type Component = 'edge' | 'auth' | 'analytics';
/** The gateway's services, the workload each runs as, and the npm script it stands for. */
const COMPONENTS: Record<Component, { kind: Workload['kind']; script: string }> = {
  edge: { kind: 'Deployment', script: 'start:edge' },
  auth: { kind: 'Deployment', script: 'start:auth' },
  analytics: { kind: 'StatefulSet', script: 'start:analytics' },
};
/** What each service must be given explicitly in the base. */
const REQUIRED: Record<Component, string[]> = {
  edge: [
    'GATEWAY_CONFIG',
    'NATS_URL',
    'REDIS_URL',
    'GATEWAY_SESSION_SECRET',
    'EDGE_ID',
    'EDGE_ADVERTISE_URL',
    'EDGE_SHUTDOWN_DELAY_MS',
    'LOG_LEVEL',
  ],
  auth: ['GATEWAY_CONFIG', 'NATS_URL', 'LOG_LEVEL'],
  analytics: ['GATEWAY_CONFIG', 'NATS_URL', 'ANALYTICS_DB', 'LOG_LEVEL'],
};
/** Read by the code and deliberately left unset (where REQUIRED does not ask for it). */
const DEFAULTED: [RegExp, string][] = [
  [/^EDGE_PORT$/, 'the default 8080 is the container port'],
  [/^ANALYTICS_PORT$/, 'the default 8081 is the container port'],
  [/^HOST$/, '0.0.0.0, every IPv4 address of the pod (an IPv6-only cluster sets ::)'],
  [/^REDIS_PREFIX$/, 'one gateway per Redis in the base'],
  [/^(EDGE_ID|EDGE_ADVERTISE_URL|EDGE_SHUTDOWN_DELAY_MS)$/, 'read by the edge only'],
  [/^GATEWAY_SESSION_SECRET$/, 'the edge signs sessions; auth and analytics sign nothing'],
  [/^REDIS_URL$/, 'used by the edge only (shared env, harmless elsewhere)'],
  [/^ANALYTICS_DB$/, 'read by analytics only'],
  [/^OTEL_/, 'tracing stays off until an overlay sets the standard OTEL_* variables'],
];
const defaulted = (name: string) => DEFAULTED.some(([pattern]) => pattern.test(name));

/** The config file's ${VAR}s: a container may be given them. */
const CONFIG_VARS = [...read(`${BASE}/gateway.yaml`).matchAll(/\$\{([A-Za-z_]\w*)/g)].map(
  (m) => m[1],
);

/** The Dockerfile's runtime user, by the uid the node images give it. */
const IMAGE_UIDS: Record<string, number> = { node: 1000 };
const imageUser = [...runtimeStage.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1] ?? 'root';

/**
 * How long an edge's drain can take after SIGTERM at most, apart from EDGE_SHUTDOWN_DELAY_MS,
 * from the code (apps/edge/src/http/shutdown.ts): in-flight requests and bridged calls waited
 * for within one grace (plus a settle pause), bridged sessions closed (a stdio child gets 2 s to
 * exit on EOF, then 2 s after SIGTERM), then the event flush.
 */
function drainBudgetMs(): number {
  const number = (text: string, pattern: RegExp, what: string) => {
    const found = pattern.exec(text)?.[1];
    if (!found) throw new Error(`cannot find ${what}: update drainBudgetMs()`);
    return Number(found.replaceAll('_', ''));
  };
  const shutdown = read('apps/edge/src/http/shutdown.ts');
  const graceMs = number(
    read('apps/edge/src/bootstrap.ts'),
    /close: async \(graceMs = ([\d_]+)\)/,
    'the default in-flight grace',
  );
  // main.ts must use that default.
  if (!/\bedge\.close\(\)/.test(read('apps/edge/src/main.ts'))) {
    throw new Error('apps/edge/src/main.ts no longer calls edge.close(): update drainBudgetMs()');
  }
  if (!/const deadline = Date\.now\(\) \+ parts\.graceMs/.test(shutdown)) {
    throw new Error('the drain no longer bounds its waits by one grace: update drainBudgetMs()');
  }
  const settleMs = number(shutdown, /const SETTLE_MS = ([\d_]+)/, 'SETTLE_MS');
  const flushMs = number(
    read('apps/edge/src/events/event-publisher.ts'),
    /async flush\(timeoutMs = ([\d_]+)\)/,
    'the event flush timeout',
  );
  const stdioCloseMs = 4_000;
  return stdioCloseMs + graceMs + settleMs + flushMs;
}

// ---- reading a rendering ----

function workloads(manifests: Manifest[]): Workload[] {
  return manifests.filter(
    (m): m is Manifest & Workload => m.kind === 'Deployment' || m.kind === 'StatefulSet',
  );
}
function ofKind<T>(manifests: Manifest[], kind: string): (Manifest & T)[] {
  return manifests.filter((m) => m.kind === kind) as (Manifest & T)[];
}
function named<T>(manifests: Manifest[], kind: string, name: string): Manifest & T {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the base`);
  return found as Manifest & T;
}
const selects = (selector: Labels, labels: Labels) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
const selected = (manifests: Manifest[], selector: Labels) =>
  workloads(manifests).filter((w) => selects(selector, w.spec.template.metadata.labels));

function containerPort(container: Container, port: number | string): number | undefined {
  const ports = container.ports ?? [];
  if (typeof port === 'number') return ports.find((p) => p.containerPort === port)?.containerPort;
  return ports.find((p) => p.name === port)?.containerPort;
}

/** Sample values of the downward API fields the base uses. */
const FIELDS: Record<string, string> = {
  'status.podIP': '10.1.2.3',
  'metadata.name': 'pod-0',
};

/**
 * The environment a container starts with, as the kubelet builds it: envFrom first, then env in
 * order with $(NAME) expanded from what is defined so far. Throws on a reference the base lacks.
 */
function environment(manifests: Manifest[], container: Container): Record<string, string> {
  const source = (kind: 'ConfigMap' | 'Secret', name: string) => {
    const data = named<Manifest>(manifests, kind, name).data ?? {};
    return kind === 'Secret'
      ? Object.fromEntries(
          Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        )
      : data;
  };
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, source('ConfigMap', from.configMapRef.name));
    if (from.secretRef) Object.assign(env, source('Secret', from.secretRef.name));
  }
  for (const variable of container.env ?? []) {
    const { value, valueFrom } = variable;
    let resolved: string | undefined;
    if (value !== undefined) {
      resolved = value.replace(
        /\$\(([A-Za-z_]\w*)\)/g,
        (whole, name: string) => env[name] ?? whole,
      );
    } else if (valueFrom?.fieldRef) {
      resolved = FIELDS[valueFrom.fieldRef.fieldPath];
    } else if (valueFrom?.secretKeyRef) {
      resolved = source('Secret', valueFrom.secretKeyRef.name)[valueFrom.secretKeyRef.key];
    } else if (valueFrom?.configMapKeyRef) {
      resolved = source('ConfigMap', valueFrom.configMapKeyRef.name)[valueFrom.configMapKeyRef.key];
    }
    if (resolved === undefined) throw new Error(`${container.name}: ${variable.name} has no value`);
    env[variable.name] = resolved;
  }
  return env;
}

/** Variables only there to be $(...)-expanded into others (POD_IP into EDGE_ADVERTISE_URL). */
function helperVars(container: Container): string[] {
  const values = (container.env ?? []).map((variable) => variable.value ?? '').join('\n');
  return (container.env ?? [])
    .map((variable) => variable.name)
    .filter((name) => values.includes(`$(${name})`));
}

/** The text of a file a container sees at `path`, from the ConfigMap mounted over its folder. */
function mountedConfigMap(
  manifests: Manifest[],
  spec: PodSpec,
  container: Container,
  path: string,
): { name: string; text: string } {
  const mount = (container.volumeMounts ?? []).find(
    (m) => m.mountPath === posix.dirname(path) && m.subPath === undefined,
  );
  const volume = spec.volumes?.find((v) => v.name === mount?.name);
  if (!volume?.configMap) throw new Error(`${container.name}: no ConfigMap folder over ${path}`);
  const text = named<Manifest>(manifests, 'ConfigMap', volume.configMap.name).data?.[
    posix.basename(path)
  ];
  if (text === undefined) throw new Error(`${volume.configMap.name} has no ${basename(path)}`);
  return { name: volume.configMap.name, text };
}

function argv(container: Container): string[] {
  return [...(container.command ?? []), ...(container.args ?? [])];
}

// ---- the checks, on each rendering ----

const own = renderOwn();
const kubectl = renderKubectl();
if (kubectl.missing) {
  console.info(
    `k8s.spec: kubectl not installed (${kubectl.missing}); checking the base as this test renders it only`,
  );
}
const renderings: [string, Manifest[]][] = [['this test', own]];
if (kubectl.manifests) renderings.push(['kubectl kustomize', kubectl.manifests]);

describe('deploy/k8s/kustomization.yaml', () => {
  it('uses only the fields this test renders itself', () => {
    expect(Object.keys(kustomization).filter((key) => !UNDERSTOOD.includes(key))).toEqual([]);
  });

  it('lets overlays set the gateway image by name', () => {
    expect(kustomization.images?.map((image) => image.name)).toContain('mcp-gateway');
  });

  it('keeps the name of the gateway.yaml ConfigMap free of a content hash, so an edit is reloaded in place', () => {
    const generator = kustomization.configMapGenerator?.find((g) =>
      (g.files ?? []).some((file) => basename(file) === 'gateway.yaml'),
    );
    expect(generator?.options?.disableNameSuffixHash).toBe(true);
  });

  (kubectl.manifests ? it : it.skip)('renders with kubectl exactly as this test renders it', () => {
    expect(byId(withoutHashes(kubectl.manifests ?? []))).toEqual(byId(own));
  });
});

describe.each(renderings)('deploy/k8s rendered by %s', (_renderer, manifests) => {
  const gatewayImage = (() => {
    const entry = kustomization.images?.find((image) => image.name === 'mcp-gateway');
    return `${entry?.newName ?? 'mcp-gateway'}:${entry?.newTag ?? 'latest'}`;
  })();
  const component = (name: Component) => named<Workload>(manifests, COMPONENTS[name].kind, name);
  const gatewayContainer = (name: Component) => {
    const containers = component(name).spec.template.spec.containers;
    expect(containers).toHaveLength(1);
    return containers[0];
  };
  const settingsOf = (name: Component): RuntimeSettings =>
    readRuntimeSettings(environment(manifests, gatewayContainer(name)));

  it('runs edge, auth and analytics from the gateway image, with NATS and Redis beside them', () => {
    for (const name of Object.keys(COMPONENTS) as Component[]) {
      expect({ name, image: gatewayContainer(name).image }).toEqual({ name, image: gatewayImage });
    }
    named<Workload>(manifests, 'StatefulSet', 'nats');
    named<Workload>(manifests, 'StatefulSet', 'redis');
    expect(component('auth').spec.replicas).toBe(2);
  });

  it.each(Object.entries(COMPONENTS))(
    'runs %s with the entry of its npm script, a file `npm run build` produces',
    (name, { script }) => {
      const command = argv(gatewayContainer(name as Component));
      expect(`${command.join(' ')}`).toBe(pkg.scripts[script]);
      // dist/<path>.js is compiled from <path>.ts (tsconfig rootDir ".", outDir "dist").
      const entry = command.find((arg) => arg.endsWith('.js')) ?? '';
      expect(entry).toMatch(/^dist\/apps\/[\w-]+\/src\/main\.js$/);
      expect(existsSync(join(ROOT, entry.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(
        true,
      );
      expect(read('tsconfig.json')).toMatch(/"outDir":\s*"dist"/);
      expect(runtimeStage).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    },
  );

  it('runs every other container of the gateway image from a production dependency it ships', () => {
    const gatewayWorkloads = Object.keys(COMPONENTS);
    const others = workloads(manifests).filter(
      (w) =>
        !gatewayWorkloads.includes(w.metadata.name) &&
        w.spec.template.spec.containers.some((c) => c.image === gatewayImage),
    );
    for (const workload of others) {
      for (const container of workload.spec.template.spec.containers) {
        const [bin, path] = argv(container);
        expect({ bin, dependency: path.startsWith('node_modules/') }).toEqual({
          bin: 'node',
          dependency: true,
        });
        expect(existsSync(join(ROOT, path))).toBe(true);
      }
    }
  });

  it('listens where the Services, probes and EDGE_ADVERTISE_URL point', () => {
    expect(containerPort(gatewayContainer('edge'), 'http')).toBe(settingsOf('edge').edgePort);
    expect(containerPort(gatewayContainer('analytics'), 'http')).toBe(
      settingsOf('analytics').analyticsPort,
    );
    for (const service of ofKind<Service>(manifests, 'Service')) {
      const pods = selected(manifests, service.spec.selector);
      expect({ service: service.metadata.name, pods: pods.length }).toEqual({
        service: service.metadata.name,
        pods: 1,
      });
      for (const port of service.spec.ports) {
        const target = port.targetPort ?? port.port;
        const found = pods[0].spec.template.spec.containers.some(
          (c) => containerPort(c, target) !== undefined,
        );
        expect({ service: service.metadata.name, target, found }).toEqual({
          service: service.metadata.name,
          target,
          found: true,
        });
      }
    }
    for (const workload of workloads(manifests)) {
      for (const container of workload.spec.template.spec.containers) {
        for (const probe of [
          container.startupProbe,
          container.readinessProbe,
          container.livenessProbe,
        ]) {
          const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
          if (port === undefined) continue;
          const found = containerPort(container, port) !== undefined;
          expect({ container: container.name, port, found }).toEqual({
            container: container.name,
            port,
            found: true,
          });
        }
      }
    }
    // The pod itself (never the Service), on the port the edge listens on.
    const edge = settingsOf('edge');
    expect(edge.advertiseUrl).toBe(`http://${FIELDS['status.podIP']}:${edge.edgePort}`);
    expect(edge.edgeId).toBe(FIELDS['metadata.name']);
  });

  it('probes readiness on /readyz and liveness on /healthz', () => {
    for (const name of ['edge', 'analytics'] as const) {
      const container = gatewayContainer(name);
      expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    }
  });

  it('probes with scripts the image ships', () => {
    for (const workload of workloads(manifests)) {
      for (const container of workload.spec.template.spec.containers) {
        if (container.image !== gatewayImage) continue;
        for (const probe of [
          container.startupProbe,
          container.readinessProbe,
          container.livenessProbe,
        ]) {
          const [bin, script] = probe?.exec?.command ?? [];
          if (bin === undefined) continue;
          expect(bin).toBe('node');
          const path = posix.relative(workdir, posix.resolve(workdir, script));
          expect(existsSync(join(ROOT, path))).toBe(true);
          expect(runtimeStage).toContain(`COPY ${path} `);
        }
      }
    }
  });

  it.each(Object.keys(COMPONENTS))(
    'gives %s every variable it needs, and only variables the code or config reads',
    (name) => {
      const container = gatewayContainer(name as Component);
      const env = environment(manifests, container);
      const helpers = helperVars(container);
      for (const variable of Object.keys(env)) {
        const known =
          APP_VARS.includes(variable) ||
          CONFIG_VARS.includes(variable) ||
          helpers.includes(variable) ||
          /^OTEL_/.test(variable);
        expect({ name, variable, known }).toEqual({ name, variable, known: true });
      }
      for (const variable of REQUIRED[name as Component]) {
        expect({ name, variable, read: APP_VARS.includes(variable) }).toEqual({
          name,
          variable,
          read: true,
        });
        expect({ name, variable, set: variable in env }).toEqual({ name, variable, set: true });
      }
      for (const variable of APP_VARS) {
        const decided =
          variable in env ||
          (!REQUIRED[name as Component].includes(variable) && defaulted(variable));
        expect({ name, variable, setOrDeliberatelyDefaulted: decided }).toEqual({
          name,
          variable,
          setOrDeliberatelyDefaulted: true,
        });
      }
      // Every value parses as the service will parse it (ports, milliseconds).
      expect(() => readRuntimeSettings(env)).not.toThrow();
    },
  );

  it('gives every edge the same session secret, from a Secret', () => {
    const secret = gatewayContainer('edge').env?.find((v) => v.name === 'GATEWAY_SESSION_SECRET');
    expect(secret?.valueFrom?.secretKeyRef).toBeDefined();
    expect(settingsOf('edge').sessionSecretGenerated).toBe(false);
  });

  it('points NATS_URL and REDIS_URL at Services of the base', () => {
    const services = ofKind<Service>(manifests, 'Service');
    for (const name of Object.keys(COMPONENTS) as Component[]) {
      const settings = settingsOf(name);
      for (const url of [settings.natsUrl, name === 'edge' ? settings.redisUrl : undefined]) {
        if (url === undefined) continue;
        const { hostname, port } = new URL(url);
        const service = services.find((s) => s.metadata.name === hostname);
        const listed = service?.spec.ports.some((p) => String(p.port) === port) ?? false;
        expect({ url, listed }).toEqual({ url, listed: true });
      }
    }
    expect(settingsOf('edge').redisUrl).toBeDefined();
  });

  it('mounts one gateway.yaml folder into every service; it validates with their environment', () => {
    const names = new Set<string>();
    for (const name of Object.keys(COMPONENTS) as Component[]) {
      const container = gatewayContainer(name);
      const env = environment(manifests, container);
      const settings = readRuntimeSettings(env);
      const spec = component(name).spec.template.spec;
      const { name: configMap, text } = mountedConfigMap(
        manifests,
        spec,
        container,
        settings.configPath,
      );
      names.add(configMap);
      const config = parseConfig(text, env, `${name}: ${settings.configPath}`);
      const services = ofKind<Service>(manifests, 'Service');
      for (const [ns, { upstream }] of Object.entries(config.namespaces)) {
        if (!('url' in upstream)) continue;
        const url = new URL(upstream.url);
        const service = services.find((s) => s.metadata.name === url.hostname);
        expect({ ns, port: service?.spec.ports.some((p) => String(p.port) === url.port) }).toEqual({
          ns,
          port: true,
        });
      }
    }
    expect(names.size).toBe(1);
    // Under the generator's own name: a content hash would turn every edit into a rollout.
    expect(kustomization.configMapGenerator?.map((g) => g.name)).toContain([...names][0]);
  });

  it('runs analytics as one StatefulSet replica with ANALYTICS_DB on its volume', () => {
    const analytics = component('analytics');
    expect(analytics.spec.replicas).toBe(1);
    const db = settingsOf('analytics').analyticsDb;
    const mount = gatewayContainer('analytics').volumeMounts?.find(
      (m) => m.mountPath === posix.dirname(db),
    );
    const claims = analytics.spec.volumeClaimTemplates?.map((t) => t.metadata.name) ?? [];
    expect(claims).toContain(mount?.name);
    // The volume is writable by the non-root user.
    expect(analytics.spec.template.spec.securityContext?.fsGroup).toBe(IMAGE_UIDS[imageUser]);
  });

  it('runs NATS with JetStream, its store on a volume', () => {
    const nats = named<Workload>(manifests, 'StatefulSet', 'nats');
    const [container] = nats.spec.template.spec.containers;
    const args = argv(container);
    const configPath = args[args.findIndex((a) => a === '--config' || a === '-c') + 1];
    const { text } = mountedConfigMap(manifests, nats.spec.template.spec, container, configPath);
    const storeDir = /jetstream\s*\{[^}]*store_dir:\s*"?([^"\s]+)"?/m.exec(text)?.[1];
    const mount = container.volumeMounts?.find((m) => m.mountPath === storeDir);
    const claims = nats.spec.volumeClaimTemplates?.map((t) => t.metadata.name) ?? [];
    expect(claims).toContain(mount?.name);
  });

  it('scales the edge with a CPU HorizontalPodAutoscaler that owns its replica count', () => {
    const hpas = ofKind<Hpa>(manifests, 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec.scaleTargetRef)).toEqual([
      expect.objectContaining({ kind: 'Deployment', name: 'edge' }),
    ]);
    const [hpa] = hpas;
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.metrics.map((m) => m.resource?.name)).toContain('cpu');
    const edge = component('edge');
    expect(edge.spec.replicas).toBeUndefined();
    expect(gatewayContainer('edge').resources?.requests?.cpu).toBeDefined();
  });

  it('budgets disruptions of exactly the edge and auth pods', () => {
    const targets = ofKind<Pdb>(manifests, 'PodDisruptionBudget').map((pdb) => {
      const pods = selected(manifests, pdb.spec.selector.matchLabels);
      expect({ pdb: pdb.metadata.name, pods: pods.length }).toEqual({
        pdb: pdb.metadata.name,
        pods: 1,
      });
      return pods[0].metadata.name;
    });
    expect(targets.sort()).toEqual(['auth', 'edge']);
  });

  it('selects each workload by labels no other workload carries', () => {
    for (const workload of workloads(manifests)) {
      const matches = selected(manifests, workload.spec.selector.matchLabels).map(
        (w) => w.metadata.name,
      );
      expect({ workload: workload.metadata.name, matches }).toEqual({
        workload: workload.metadata.name,
        matches: [workload.metadata.name],
      });
    }
  });

  it('gives the edge a termination grace longer than its shutdown delay plus its drain', () => {
    const spec = component('edge').spec.template.spec;
    const delayMs = settingsOf('edge').shutdownDelayMs;
    expect(delayMs).toBeGreaterThan(0);
    expect((spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(
      delayMs + drainBudgetMs(),
    );
  });

  it('runs every container as a non-root user, read-only, without capabilities, with resources', () => {
    for (const workload of workloads(manifests)) {
      const spec = workload.spec.template.spec;
      expect({
        workload: workload.metadata.name,
        token: spec.automountServiceAccountToken,
      }).toEqual({ workload: workload.metadata.name, token: false });
      for (const container of spec.containers) {
        const context = { ...spec.securityContext, ...container.securityContext };
        expect({ container: container.name, ...context }).toMatchObject({
          container: container.name,
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        // Numeric: the kubelet refuses runAsNonRoot with an image user it cannot resolve.
        expect({ container: container.name, uid: (context.runAsUser ?? 0) > 0 }).toEqual({
          container: container.name,
          uid: true,
        });
        if (container.image === gatewayImage) expect(context.runAsUser).toBe(IMAGE_UIDS[imageUser]);
        for (const kind of ['requests', 'limits'] as const) {
          const set = Object.keys(container.resources?.[kind] ?? {}).sort();
          expect({ container: container.name, kind, set }).toEqual({
            container: container.name,
            kind,
            set: ['cpu', 'memory'],
          });
        }
      }
    }
  });

  it('labels every resource as part of mcp-gateway and pins every image tag', () => {
    for (const manifest of manifests) {
      expect({
        id: `${manifest.kind}/${manifest.metadata.name}`,
        ...manifest.metadata.labels,
      }).toMatchObject({
        id: `${manifest.kind}/${manifest.metadata.name}`,
        'app.kubernetes.io/part-of': 'mcp-gateway',
      });
    }
    for (const spec of podSpecs(manifests)) {
      for (const container of spec.containers) {
        expect(container.image).toMatch(/:(?!latest$)[\w.-]+$/);
      }
    }
  });
});
