import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { JsonErrorFilter } from './errors/http-exception.filter.js';
import { HealthController } from './health/health.controller.js';
import { Readiness } from './health/readiness.js';
import { EdgeMetrics } from './metrics/edge-metrics.js';

/**
 * Nest owns the edge's lifecycle and its operations routes. The MCP routes themselves are
 * served off the HTTP server, with plain Fastify routes for the unusual requests (see
 * pipeline/mcp.routes.ts), built from the objects given here.
 */
@Module({})
export class EdgeModule {
  static forRoot(deps: { metrics: EdgeMetrics; readiness: Readiness }): DynamicModule {
    return {
      module: EdgeModule,
      controllers: [HealthController],
      providers: [
        { provide: EdgeMetrics, useValue: deps.metrics },
        { provide: Readiness, useValue: deps.readiness },
        { provide: APP_FILTER, useClass: JsonErrorFilter },
      ],
    };
  }
}
