import { Controller, Get, Header, NotFoundException, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import {
  type ClientModules,
  type DashboardAssets,
  loadClientModules,
  loadDashboardAssets,
} from './dashboard-assets.js';
import { dashboardHtml } from './dashboard-page.js';
import { DASHBOARD_CSS } from './dashboard-style.js';

// Only this origin's own files and API: a value that slipped into markup could still not run
// inline script, load anything from elsewhere or send data away. No inline styles either:
// uPlot sizes its elements through the CSSOM, which the CSP does not restrict.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
// The page and its script change with a deploy: revalidate. Library files carry their version
// in their name: keep them.
const REVALIDATE = 'no-cache';
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The dashboard's static files; its data comes from the keyed API, so none of these needs a key. */
@Controller()
export class DashboardController {
  private readonly assets: DashboardAssets = loadDashboardAssets();
  private readonly client: ClientModules = loadClientModules();
  private readonly html = dashboardHtml({ ...this.assets, clientEntry: this.client.entry });

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CSP)
  @Header('Cache-Control', REVALIDATE)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Referrer-Policy', 'no-referrer')
  page(): string {
    return this.html;
  }

  /**
   * The page's browser module (client/), one file per source file: the entry and what it
   * imports. Headers only on success: a 404 is the API's JSON error.
   */
  @Get('dashboard/:name')
  script(@Param('name') name: string, @Res({ passthrough: true }) reply: FastifyReply): Buffer {
    const body = this.client.byName.get(name);
    if (!body) throw new NotFoundException();
    void reply
      .header('Content-Type', 'text/javascript; charset=utf-8')
      .header('Cache-Control', REVALIDATE)
      .header('X-Content-Type-Options', 'nosniff');
    return body;
  }

  @Get('dashboard.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', REVALIDATE)
  @Header('X-Content-Type-Options', 'nosniff')
  style(): string {
    return DASHBOARD_CSS;
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res({ passthrough: true }) reply: FastifyReply): Buffer {
    const asset = this.assets.byName.get(name);
    if (!asset) throw new NotFoundException();
    void reply
      .header('Content-Type', asset.contentType)
      .header('Cache-Control', IMMUTABLE)
      .header('X-Content-Type-Options', 'nosniff');
    return asset.body;
  }
}
