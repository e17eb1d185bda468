import { type DynamicModule, Module } from '@nestjs/common';
import { AdminKeys } from './admin/admin-keys.js';
import { AdminKeysController } from './admin/admin-keys.controller.js';
import { AnalyticsController } from './api/analytics.controller.js';
import { AnalyticsQueries } from './api/analytics-queries.js';
import { AdminAuthenticator } from './auth/admin-authenticator.js';
import { AdminGuard } from './auth/admin.guard.js';
import { DashboardController } from './dashboard/dashboard.controller.js';
import { DocsController } from './docs/docs.controller.js';
import { HealthController } from './health/health.controller.js';
import { HealthService } from './health/health.service.js';
import { PinApprovals } from './pins/pin-approvals.js';
import { PinsController } from './pins/pins.controller.js';

export interface AnalyticsModuleDeps {
  queries: AnalyticsQueries;
  authenticator: AdminAuthenticator;
  health: HealthService;
  adminKeys: AdminKeys;
  pins: PinApprovals;
}

/**
 * The HTTP face of the service. Its collaborators (store, ingest, auth) are built and owned by
 * startAnalytics, which also closes them in order; Nest only routes requests to them.
 */
@Module({})
export class AnalyticsModule {
  static forRoot(deps: AnalyticsModuleDeps): DynamicModule {
    return {
      module: AnalyticsModule,
      controllers: [
        AnalyticsController,
        AdminKeysController,
        PinsController,
        HealthController,
        DocsController,
        DashboardController,
      ],
      providers: [
        { provide: AnalyticsQueries, useValue: deps.queries },
        { provide: AdminAuthenticator, useValue: deps.authenticator },
        { provide: HealthService, useValue: deps.health },
        { provide: AdminKeys, useValue: deps.adminKeys },
        { provide: PinApprovals, useValue: deps.pins },
        AdminGuard,
      ],
    };
  }
}
