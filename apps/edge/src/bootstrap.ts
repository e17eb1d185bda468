import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
  type FastifyServerFactoryHandler,
  LogController,
} from 'fastify';
import {
  type Bus,
  type ConfigStore,
  ensureEventsStream,
  ErrorCode,
  type InProcessEventChannel,
  PinoNestLogger,
} from '#common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AuthFailureLimiter } from './auth/auth-failures.js';
import { KeyVerifier } from './auth/key-verifier.js';
import { EdgeModule } from './edge.module.js';
import { errorBody } from './errors/error-response.js';
import {
  type EventPublisher,
  InProcessEventPublisher,
  JetStreamEventPublisher,
} from './events/event-publisher.js';
import { Readiness } from './health/readiness.js';
import { EdgeMetrics } from './metrics/edge-metrics.js';
import { McpPipeline } from './pipeline/mcp-pipeline.js';
import { InFlight } from './pipeline/in-flight.js';
import { McpRoutes } from './pipeline/mcp.routes.js';
import { requestIdOf } from './pipeline/request-id.js';
import { HttpUpstream } from './proxy/http-upstream.js';
import { RateLimiter } from './ratelimit/rate-limiter.js';
import { SessionCodec } from './sessions/session-codec.js';
import { BridgeSessions } from './bridge/bridge-sessions.js';
import { ClosedSessions } from './sessions/closed-sessions.js';
import { SessionForwarder } from './sessions/session-forwarder.js';
import { createServer, type ServerOptions } from 'node:http';
import net from 'node:net';
import { networkInterfaces } from 'node:os';

/** Time for requests on already-accepted connections to arrive once accepting has stopped. */
const SETTLE_MS = 250;

export interface EdgeOptions {
  port: number;
  host: string;
  edgeId: string;
  sessionSecret: string;
  config: ConfigStore;
  logger: Logger;
  bus: Bus;
  events:
    | { kind: 'jetstream'; connection: NatsConnection }
    | { kind: 'in-process'; channel: InProcessEventChannel };
  /** Shared counters for rate limits across replicas; in-memory limits without it. */
  redis?: Redis;
  redisPrefix?: string;
  /** How other edges reach this one (EDGE_ADVERTISE_URL); derived from the host and port otherwise. */
  advertiseUrl?: string;
  /** On close, how long to keep accepting while /readyz answers 503 (EDGE_SHUTDOWN_DELAY_MS). */
  shutdownDelayMs?: number;
}

export interface EdgeHandle {
  url: string;
  port: number;
  publisher: EventPublisher;
  metrics: EdgeMetrics;
  /** Graceful: waits up to `graceMs` for in-flight unary requests. */
  close(graceMs?: number): Promise<void>;
}

export async function startEdge(options: EdgeOptions): Promise<EdgeHandle> {
  const { logger, config } = options;
  const metrics = new EdgeMetrics();
  let publisher: EventPublisher;
  if (options.events.kind === 'jetstream') {
    await ensureEventsStream(options.events.connection).catch((error: unknown) =>
      logger.warn(
        { err: String(error) },
        'could not ensure the events stream yet; events are buffered',
      ),
    );
    publisher = new JetStreamEventPublisher(options.events.connection, metrics, logger, () =>
      options.bus.isConnected(),
    );
  } else {
    publisher = new InProcessEventPublisher(options.events.channel, metrics);
  }
  const readiness = new Readiness(options.bus, options.events.kind === 'jetstream', options.redis);
  const http = new HttpUpstream(metrics, logger);
  const bridges = new BridgeSessions(metrics, logger);
  const forwarder = new SessionForwarder(options.sessionSecret);
  let advertiseUrl = options.advertiseUrl ?? '';
  const pipeline = new McpPipeline({
    edgeId: options.edgeId,
    config,
    verifier: new KeyVerifier(
      options.bus,
      config,
      metrics,
      new AuthFailureLimiter(config, metrics, options.redis, options.redisPrefix),
    ),
    limiter: new RateLimiter(config, metrics, options.redis, options.redisPrefix),
    sessions: new SessionCodec(options.sessionSecret),
    http,
    bridges,
    closedSessions: new ClosedSessions(options.bus),
    forwarder,
    get advertiseUrl() {
      return advertiseUrl;
    },
    publisher,
    metrics,
    logger,
  });

  const inflight = new InFlight();
  const mcpRoutes = new McpRoutes(pipeline, config, inflight);
  const adapter = new FastifyAdapter({
    // Plain MCP requests are served before Fastify sees them (see McpRoutes); the server is
    // set up as Fastify sets up its own.
    serverFactory: ((fastifyHandler: FastifyServerFactoryHandler, options) => {
      const settings = options as {
        http?: ServerOptions;
        keepAliveTimeout: number;
        requestTimeout: number;
        connectionTimeout: number;
        maxRequestsPerSocket?: number;
      };
      const server = createServer(settings.http ?? {}, (req, res) => {
        if (!mcpRoutes.serve(req, res)) fastifyHandler(req, res);
      });
      server.keepAliveTimeout = settings.keepAliveTimeout;
      server.requestTimeout = settings.requestTimeout;
      server.setTimeout(settings.connectionTimeout);
      if (settings.maxRequestsPerSocket)
        server.maxRequestsPerSocket = settings.maxRequestsPerSocket;
      return server;
    }) satisfies FastifyServerFactory,
    loggerInstance: logger,
    // Per-request access lines are off on the hot path; every line the edge writes about a
    // request carries request_id.
    logController: new LogController({
      disableRequestLogging: true,
      requestIdLogLabel: 'request_id',
    }),
    genReqId: requestIdOf,
    // A URL the router refuses before any route or hook runs (a segment past the router's
    // length limit: 414, a malformed percent-escape: 400) still gets the request id and the
    // gateway's error shape (SPEC §4: every response carries X-Request-Id).
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode === 414 ? 414 : 400;
      void reply
        .code(status)
        .header('X-Request-Id', String(request.id))
        .type('application/json')
        .send(
          errorBody(
            ErrorCode.BadRequest,
            status === 414 ? 'URI too long' : 'Malformed URL',
            String(request.id),
          ),
        );
    },
    trustProxy: config.current.server.trust_proxy,
    bodyLimit: 64 * 1024 * 1024,
    return503OnClosing: true,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    EdgeModule.forRoot({ metrics, readiness }),
    adapter,
    {
      logger: new PinoNestLogger(logger),
    },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Every response, errors and streams included, carries the request id.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.raw.setHeader('X-Request-Id', String(request.id));
    done();
  });
  await mcpRoutes.register(fastify);
  await app.listen(options.port, options.host);
  const address = fastify.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  advertiseUrl ||= defaultAdvertiseUrl(options.host, port);
  logger.info({ port, edge_id: options.edgeId }, 'edge ready');

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    publisher,
    metrics,
    close: async (graceMs = 10_000) => {
      // SPEC §8: stop accepting, finish in-flight unary requests (bounded), close SSE streams
      // cleanly, flush events.
      readiness.draining = true;
      // Load balancers that check /readyz take this edge out of rotation while it still serves
      // what they send meanwhile. Closing the listener at once would reset the connections still
      // in its accept backlog: requests a client cannot tell were never seen.
      if (options.shutdownDelayMs)
        await new Promise((resolve) => setTimeout(resolve, options.shutdownDelayMs));
      // Stop accepting at the socket level only: http.Server#close() would also drop accepted
      // connections whose request has not been read yet, a reset the client cannot retry.
      net.Server.prototype.close.call(fastify.server);
      http.endStreams();
      await bridges.closeAll();
      await inflight.idle(graceMs);
      // Let requests already on accepted connections arrive and finish, then close the rest.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      await inflight.idle(graceMs);
      fastify.server.closeIdleConnections();
      fastify.server.closeAllConnections();
      await app.close();
      await http.close();
      await forwarder.close();
      await publisher.close();
    },
  };
}

/** The address other edges use for this one: loopback when bound there, else the first LAN IPv4. */
function defaultAdvertiseUrl(host: string, port: number): string {
  if (host !== '0.0.0.0' && host !== '::')
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const lan = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === 'IPv4' && !address.internal);
  return `http://${lan?.address ?? '127.0.0.1'}:${port}`;
}
