import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { ensureEventsStream, KvPinStore, TokenCounter } from '#common';
import { AuthFailureLimiter } from './auth/auth-failures.js';
import { KeyVerifier } from './auth/key-verifier.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { BridgeSessions } from './bridge/bridge-sessions.js';
import { EDGE_OPTIONS, type EdgeOptions, EVENT_PUBLISHER, TRACING } from './edge-options.js';
import {
  type EventPublisher,
  InProcessEventPublisher,
  JetStreamEventPublisher,
} from './events/event-publisher.js';
import { RejectionTally } from './events/rejection-tally.js';
import { OpsRoutes } from './health/ops-routes.js';
import { Readiness } from './health/readiness.js';
import { VirtualServers } from './virtual/virtual-servers.js';
import { EraBridge } from './era/era-bridge.js';
import { EraProbe } from './era/era-probe.js';
import { RequestStates } from './era/request-state.js';

/** The gateway's version, as it names itself to clients and backends. */
const GATEWAY_VERSION = process.env.npm_package_version ?? '0.1.0';
import { EdgeAddress, EdgeServer } from './http/edge-server.js';
import { InFlight } from './http/in-flight.js';
import { EdgeRouter } from './http/router.js';
import { EdgeMetrics } from './metrics/edge-metrics.js';
import { ToolCatalog } from './pins/tool-catalog.js';
import { Admission } from './pipeline/admission.js';
import { McpPipeline } from './pipeline/mcp-pipeline.js';
import { RateLimiter } from './ratelimit/rate-limiter.js';
import { startTracing, type Tracing } from './tracing/tracing.js';
import { ClosedSessions } from './sessions/closed-sessions.js';
import { ForwardingMarks } from './sessions/forwarding-mark.js';
import { SessionCodec } from './sessions/session-codec.js';
import { BridgedUpstream } from './upstream/bridged.js';
import { ForwardedUpstream } from './upstream/forwarded.js';
import { HttpPassthrough } from './upstream/http-passthrough.js';

/** A provider built by `factory` from the providers named in `inject`. */
function made<T>(
  provide: unknown,
  inject: unknown[],
  factory: (...deps: never[]) => T | Promise<T>,
): Provider {
  return { provide: provide as string, inject: inject as string[], useFactory: factory };
}

/**
 * The edge's composition: Nest is its dependency-injection container and lifecycle (the server
 * listens on bootstrap and drains on shutdown, see http/edge-server.ts and http/shutdown.ts).
 * HTTP itself is served by the edge's own router (http/router.ts), below Nest's HTTP layer: one
 * router for every route, with no framework work per request (see apps/edge/README.md).
 */
@Module({})
export class EdgeModule {
  static forRoot(options: EdgeOptions): DynamicModule {
    return {
      module: EdgeModule,
      providers: [
        { provide: EDGE_OPTIONS, useValue: options },
        { provide: EdgeMetrics, useValue: new EdgeMetrics() },
        { provide: InFlight, useValue: new InFlight() },
        { provide: EdgeAddress, useValue: new EdgeAddress() },
        ...policyProviders(),
        ...upstreamProviders(),
        ...pipelineProviders(),
        EdgeServer,
      ],
      exports: [EdgeServer, EdgeMetrics, EVENT_PUBLISHER, TRACING],
    };
  }
}

const o = EDGE_OPTIONS;

/** Who may ask, how often, and on which session. */
function policyProviders(): Provider[] {
  return [
    made(KeyVerifier, [o, EdgeMetrics], (opts: EdgeOptions, metrics: EdgeMetrics) => {
      const failures = new AuthFailureLimiter(opts.config, metrics, opts.redis, opts.redisPrefix);
      const tokens = new TokenVerifier(opts.config, opts.logger.child({ component: 'oauth' }));
      return new KeyVerifier(opts.bus, opts.config, metrics, failures, tokens);
    }),
    made(
      RateLimiter,
      [o, EdgeMetrics],
      (opts: EdgeOptions, metrics: EdgeMetrics) =>
        new RateLimiter(opts.config, metrics, opts.redis, opts.redisPrefix),
    ),
    made(SessionCodec, [o], (opts: EdgeOptions) => new SessionCodec(opts.sessionSecret)),
    made(ClosedSessions, [o], (opts: EdgeOptions) => new ClosedSessions(opts.bus)),
    made(ToolCatalog, [o, EdgeMetrics], catalogOf),
    made(
      Admission,
      [
        o,
        KeyVerifier,
        RateLimiter,
        SessionCodec,
        ClosedSessions,
        ForwardingMarks,
        ToolCatalog,
        VirtualServers,
      ],
      (
        opts: EdgeOptions,
        verifier: KeyVerifier,
        limiter: RateLimiter,
        sessions: SessionCodec,
        closedSessions: ClosedSessions,
        marks: ForwardingMarks,
        catalog: ToolCatalog,
        virtual: VirtualServers,
      ) =>
        new Admission({
          config: opts.config,
          verifier,
          limiter,
          sessions,
          closedSessions,
          marks,
          catalog,
          virtual,
        }),
    ),
  ];
}

/** The delivery paths (one `Upstream` per kind): HTTP backends, virtual servers, eras. */
function upstreamProviders(): Provider[] {
  return [
    made(
      BridgeSessions,
      [o, EdgeMetrics],
      (opts: EdgeOptions, metrics: EdgeMetrics) =>
        new BridgeSessions(opts.config, metrics, opts.logger),
    ),
    made(EraProbe, [], () => new EraProbe({ name: 'mcp-gateway', version: GATEWAY_VERSION })),
    made(
      VirtualServers,
      [o, ToolCatalog, BridgeSessions, EdgeMetrics, RateLimiter, EraProbe],
      (
        opts: EdgeOptions,
        catalog: ToolCatalog,
        bridges: BridgeSessions,
        metrics: EdgeMetrics,
        limiter: RateLimiter,
        probe: EraProbe,
      ) =>
        new VirtualServers(
          opts.config,
          catalog,
          bridges,
          metrics,
          opts.logger,
          GATEWAY_VERSION,
          limiter,
          probe,
        ),
    ),
    made(
      HttpPassthrough,
      [o, SessionCodec, ClosedSessions, EdgeMetrics],
      (opts: EdgeOptions, codec: SessionCodec, closed: ClosedSessions, metrics: EdgeMetrics) =>
        new HttpPassthrough(codec, closed, metrics, opts.logger),
    ),
    made(
      EraBridge,
      [
        o,
        VirtualServers,
        HttpPassthrough,
        ForwardedUpstream,
        EdgeAddress,
        EraProbe,
        BridgeSessions,
      ],
      (
        opts: EdgeOptions,
        virtual: VirtualServers,
        http: HttpPassthrough,
        forwarded: ForwardedUpstream,
        address: EdgeAddress,
        probe: EraProbe,
        bridges: BridgeSessions,
      ) => {
        const era = new EraBridge({
          config: opts.config,
          virtual,
          http,
          forwarded,
          advertiseUrl: () => address.advertiseUrl,
          probe,
          states: new RequestStates(opts.sessionSecret),
          edgeId: opts.edgeId,
          logger: opts.logger,
        });
        // A key at its cap in a namespace first gets back a backend session it left idle there.
        bridges.reclaimer = (namespace, keyId) => era.reclaimIdle(namespace, keyId);
        return era;
      },
    ),
    ...sessionUpstreamProviders(),
  ];
}

/** The delivery paths of sessions one edge holds: bridged here, or forwarded to their edge. */
function sessionUpstreamProviders(): Provider[] {
  return [
    made(ForwardingMarks, [o], (opts: EdgeOptions) => new ForwardingMarks(opts.sessionSecret)),
    made(
      ForwardedUpstream,
      [o, ForwardingMarks],
      (opts: EdgeOptions, marks: ForwardingMarks) => new ForwardedUpstream(marks, opts.logger),
    ),
    made(
      BridgedUpstream,
      [o, BridgeSessions, SessionCodec, EdgeAddress, ToolCatalog, VirtualServers],
      (
        opts: EdgeOptions,
        bridges: BridgeSessions,
        sessions: SessionCodec,
        address: EdgeAddress,
        catalog: ToolCatalog,
        virtual: VirtualServers,
      ) =>
        new BridgedUpstream({
          catalog,
          virtual,
          bridges,
          sessions,
          config: opts.config,
          edgeId: opts.edgeId,
          advertiseUrl: () => address.advertiseUrl,
        }),
    ),
  ];
}

/** The request path, its events and the routes that lead to it. */
function pipelineProviders(): Provider[] {
  return [
    made(EVENT_PUBLISHER, [o, EdgeMetrics], publisherOf),
    // The OpenTelemetry SDK is loaded only when traces are on.
    made(TRACING, [o], (opts: EdgeOptions) =>
      opts.traces ? startTracing(opts.traces, opts.edgeId, opts.logger) : null,
    ),
    made(
      McpPipeline,
      [
        o,
        EVENT_PUBLISHER,
        EdgeMetrics,
        Admission,
        HttpPassthrough,
        BridgedUpstream,
        ForwardedUpstream,
        EraBridge,
        TRACING,
      ],
      (
        opts: EdgeOptions,
        publisher: EventPublisher,
        metrics: EdgeMetrics,
        admission: Admission,
        http: HttpPassthrough,
        bridged: BridgedUpstream,
        forwarded: ForwardedUpstream,
        era: EraBridge,
        tracing: Tracing | null,
      ) =>
        new McpPipeline({
          ...{ edgeId: opts.edgeId, config: opts.config, logger: opts.logger },
          ...{ admission, http, bridged, forwarded, era, publisher, metrics },
          tracing: tracing ?? undefined,
        }),
    ),
    made(Readiness, [o], (opts: EdgeOptions) => {
      return new Readiness(opts.bus, opts.events.kind === 'jetstream', opts.redis);
    }),
    made(
      OpsRoutes,
      [Readiness, EdgeMetrics],
      (r: Readiness, m: EdgeMetrics) => new OpsRoutes(r, m),
    ),
    made(
      EdgeRouter,
      [McpPipeline, OpsRoutes, o, InFlight],
      (pipeline: McpPipeline, ops: OpsRoutes, opts: EdgeOptions, inflight: InFlight) =>
        new EdgeRouter(pipeline, ops, opts.config, inflight),
    ),
  ];
}

/**
 * Tool definitions' tokens and pins (SPEC §7 v2). The tokenizer's tables load while the rest of
 * the edge starts; the pin store is the caller's, or the deployment's bucket on JetStream.
 */
async function catalogOf(options: EdgeOptions, metrics: EdgeMetrics): Promise<ToolCatalog> {
  const { events, logger } = options;
  const owned =
    options.pins === undefined && events.kind === 'jetstream'
      ? new KvPinStore(
          events.connection,
          events.names.pinsBucket,
          logger.child({ component: 'pins' }),
        )
      : undefined;
  const catalog = new ToolCatalog(
    options.config,
    options.pins ?? owned,
    await TokenCounter.load(),
    metrics,
    logger.child({ component: 'pins' }),
    options.edgeId,
    owned !== undefined,
  );
  await catalog.start();
  return catalog;
}

async function publisherOf(options: EdgeOptions, metrics: EdgeMetrics): Promise<EventPublisher> {
  const { events, logger } = options;
  if (events.kind === 'in-process')
    return new RejectionTally(new InProcessEventPublisher(events.channel, metrics));
  await ensureEventsStream(events.connection, events.names).catch((error: unknown) =>
    logger.warn(
      { err: String(error) },
      'could not ensure the events stream yet; events are buffered',
    ),
  );
  return new RejectionTally(
    new JetStreamEventPublisher(events.connection, events.names, metrics, logger, () =>
      options.bus.isConnected(),
    ),
  );
}
