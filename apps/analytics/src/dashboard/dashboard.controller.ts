import { Controller, Get, Header } from '@nestjs/common';
import { DASHBOARD_HTML, DASHBOARD_SCRIPT } from './dashboard-page.js';

// Only this origin's own script and API: a value that slipped into markup could still not
// load or send anything elsewhere.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The dashboard's static page and script; the data comes from the keyed API. */
@Controller()
export class DashboardController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CSP)
  page(): string {
    return DASHBOARD_HTML;
  }

  @Get('dashboard.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Content-Security-Policy', CSP)
  script(): string {
    return DASHBOARD_SCRIPT;
  }
}
