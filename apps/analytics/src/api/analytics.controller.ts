import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import type { Principal } from '#common';
import { AdminGuard, AdminPrincipal } from '../auth/admin.guard.js';
import {
  AnalyticsQueries,
  type ContextBudget,
  type EventsPage,
  type KeyStats,
  type LatencyHistogram,
  type NamespaceStats,
  type ServerStats,
  type Summary,
  type TimeseriesPoint,
  type ToolStats,
} from './analytics-queries.js';
import { BUCKETS, FILTER_PARAMETERS, QueryParams } from './query-params.js';
import { scopeToPrincipal } from './tenant-scope.js';

/** SPEC §7 analytics REST: parse and scope the query, run one query, answer its result. */
@Controller('api/v1')
@UseGuards(AdminGuard)
export class AnalyticsController {
  constructor(@Inject(AnalyticsQueries) private readonly queries: AnalyticsQueries) {}

  @Get('summary')
  summary(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<Summary> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.summary(scopeToPrincipal(params.filters(), principal));
  }

  @Get('tools')
  tools(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<ToolStats[]> {
    const params = new QueryParams(query, [...FILTER_PARAMETERS, 'limit']);
    const limit = params.integer('limit', { min: 1, max: 1000, default: 50 });
    return this.queries.tools(scopeToPrincipal(params.filters(), principal), limit);
  }

  @Get('timeseries')
  timeseries(
    @Query() query: unknown,
    @AdminPrincipal() principal: Principal,
  ): Promise<TimeseriesPoint[]> {
    const params = new QueryParams(query, [...FILTER_PARAMETERS, 'bucket']);
    const bucket = params.oneOf('bucket', BUCKETS, '1h');
    return this.queries.timeseries(scopeToPrincipal(params.filters(), principal), bucket);
  }

  @Get('keys')
  keys(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<KeyStats[]> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.keys(scopeToPrincipal(params.filters(), principal));
  }

  @Get('namespaces')
  namespaces(
    @Query() query: unknown,
    @AdminPrincipal() principal: Principal,
  ): Promise<NamespaceStats[]> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.namespaces(scopeToPrincipal(params.filters(), principal));
  }

  @Get('servers')
  servers(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<ServerStats[]> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.servers(scopeToPrincipal(params.filters(), principal));
  }

  @Get('histogram')
  histogram(
    @Query() query: unknown,
    @AdminPrincipal() principal: Principal,
  ): Promise<LatencyHistogram> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.histogram(scopeToPrincipal(params.filters(), principal));
  }

  @Get('context')
  context(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<ContextBudget> {
    const params = new QueryParams(query, FILTER_PARAMETERS);
    return this.queries.context(scopeToPrincipal(params.filters(), principal));
  }

  @Get('events')
  events(@Query() query: unknown, @AdminPrincipal() principal: Principal): Promise<EventsPage> {
    const params = new QueryParams(query, [...FILTER_PARAMETERS, 'limit', 'before']);
    const limit = params.integer('limit', { min: 1, max: 1000, default: 100 });
    const before = params.cursor('before');
    return this.queries.events(scopeToPrincipal(params.filters(), principal), limit, before);
  }
}
