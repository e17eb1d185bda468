import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, GatewayError } from '#common';
import { writeError } from '../errors/error-writer.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { Readiness } from './readiness.js';

/** Operations routes (no key): liveness, readiness of the dependencies, Prometheus metrics. */
export class OpsRoutes {
  constructor(
    private readonly readiness: Readiness,
    private readonly metrics: EdgeMetrics,
  ) {}

  /** Answers `path` when it is an operations route (GET); false leaves it to the router. */
  serve(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET') return false;
    switch (path) {
      case '/healthz':
        send(res, 200, 'application/json', '{"status":"ok"}');
        return true;
      case '/readyz':
        void this.readiness
          .check()
          .then((report) =>
            send(res, report.ready ? 200 : 503, 'application/json', JSON.stringify(report)),
          );
        return true;
      case '/metrics':
        this.metrics.registry.metrics().then(
          (text) => send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', text),
          () =>
            writeError(
              res,
              new GatewayError(ErrorCode.Internal, 'Metrics unavailable'),
              String(res.getHeader('x-request-id')),
            ),
        );
        return true;
      default:
        return false;
    }
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.destroyed) return;
  res
    .writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)) })
    .end(body);
}
