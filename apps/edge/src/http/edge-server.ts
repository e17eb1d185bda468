import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode, GatewayError } from '#common';
import { writeError, writeSocketError } from '../errors/error-writer.js';
import { requestIdOf } from '../pipeline/request-id.js';
import { networkInterfaces } from 'node:os';
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { BridgeSessions } from '../bridge/bridge-sessions.js';
import { EraBridge } from '../era/era-bridge.js';
import { EDGE_OPTIONS, type EdgeOptions, EVENT_PUBLISHER, TRACING } from '../edge-options.js';
import type { EventPublisher } from '../events/event-publisher.js';
import { Readiness } from '../health/readiness.js';
import type { Tracing } from '../tracing/tracing.js';
import { ForwardedUpstream } from '../upstream/forwarded.js';
import { HttpPassthrough } from '../upstream/http-passthrough.js';
import { IdleConnections } from './idle-connections.js';
import { InFlight } from './in-flight.js';
import { EdgeRouter } from './router.js';
import { drain } from './shutdown.js';

/** Where this edge listens, and how other edges reach it: known once it listens. */
export class EdgeAddress {
  port = 0;
  advertiseUrl = '';
}

/** Keep-alive connections idle this long are closed (behind load balancers that keep theirs ~60 s). */
const KEEP_ALIVE_MS = 72_000;
/** Node's own whole-request timeout trails the body reader's by this much. */
const BACKSTOP_MS = 5_000;

/** The edge's HTTP server: Node's, with the one router; listens on bootstrap, drains on shutdown. */
@Injectable()
export class EdgeServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly server: Server;
  /** How long shutdown waits for in-flight unary requests. */
  graceMs = 10_000;
  /** Per client address, a bound on idle connections. */
  readonly idleConnections: IdleConnections;

  constructor(
    @Inject(EDGE_OPTIONS) private readonly options: EdgeOptions,
    @Inject(EdgeRouter) router: EdgeRouter,
    @Inject(EdgeAddress) private readonly address: EdgeAddress,
    @Inject(Readiness) private readonly readiness: Readiness,
    @Inject(InFlight) private readonly inflight: InFlight,
    @Inject(HttpPassthrough) private readonly http: HttpPassthrough,
    @Inject(BridgeSessions) private readonly bridges: BridgeSessions,
    @Inject(EraBridge) private readonly era: EraBridge,
    @Inject(ForwardedUpstream) private readonly forwarded: ForwardedUpstream,
    @Inject(EVENT_PUBLISHER) private readonly publisher: EventPublisher,
    @Inject(TRACING) private readonly tracing: Tracing | null,
  ) {
    // Headers must arrive within server.request_timeout (Node answers 408 and closes); bodies are
    // timed by the edge's body reader, which answers 408 itself. Node's whole-request timeout is
    // only a backstop behind it. Answers take as long as their namespace's timeout_ms allows.
    const timeoutMs = options.config.current.server.request_timeout;
    this.idleConnections = new IdleConnections(options.config);
    this.server = createServer(
      {
        headersTimeout: timeoutMs,
        requestTimeout: timeoutMs + BACKSTOP_MS,
        connectionsCheckingInterval: 1_000,
      },
      router.handle,
    );
    this.server.keepAliveTimeout = KEEP_ALIVE_MS;
    this.server.on('clientError', answerClientError);
    // Node would answer `100 Continue` before the router saw the request; the body reader does,
    // once it has judged the declared length (a 413 comes before the body is sent).
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      this.server.emit('request', req, res),
    );
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
      res.setHeader('x-request-id', requestIdOf(req));
      writeError(
        res,
        new GatewayError(ErrorCode.BadRequest, 'Unsupported Expect header (only 100-continue)'),
        String(res.getHeader('x-request-id')),
      );
    });
    this.idleConnections.attach(this.server);
  }

  async onApplicationBootstrap(): Promise<void> {
    const { options, server } = this;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const bound = server.address();
    this.address.port = typeof bound === 'object' && bound ? bound.port : options.port;
    this.address.advertiseUrl =
      options.advertiseUrl || defaultAdvertiseUrl(options.host, this.address.port);
    options.logger.info({ port: this.address.port, edge_id: options.edgeId }, 'edge ready');
  }

  async beforeApplicationShutdown(): Promise<void> {
    await drain({
      server: this.server,
      readiness: this.readiness,
      inflight: this.inflight,
      http: this.http,
      bridges: this.bridges,
      era: this.era,
      forwarded: this.forwarded,
      publisher: this.publisher,
      tracing: this.tracing,
      delayMs: this.options.shutdownDelayMs ?? 0,
      graceMs: this.graceMs,
    });
  }

  get port(): number {
    return this.address.port;
  }
}

/**
 * Requests Node's parser refuses never reach the router: answered here, through the one error
 * writer, as JSON with an X-Request-Id (Node's own answer is a bare status line).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || started?.headersSent || error.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    writeSocketError(socket, new GatewayError(ErrorCode.RequestTimeout, 'Request timeout'));
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    writeSocketError(
      socket,
      new GatewayError(ErrorCode.BadRequest, 'Request headers too large'),
      431,
    );
  } else {
    writeSocketError(socket, new GatewayError(ErrorCode.BadRequest, 'Malformed HTTP request'));
  }
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
