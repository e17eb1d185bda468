import { Controller, Get, Header } from '@nestjs/common';
import { OPENAPI_DOCUMENT } from '../api/openapi.js';
import { renderDocsPage } from './docs-page.js';

// Rendered once: the document does not change while the process runs.
const DOCS_PAGE = renderDocsPage();

/** The API's description, readable without a key: it holds no data. */
@Controller()
export class DocsController {
  @Get('api/v1/openapi.json')
  openapi(): typeof OPENAPI_DOCUMENT {
    return OPENAPI_DOCUMENT;
  }

  @Get('api/docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
  docs(): string {
    return DOCS_PAGE;
  }
}
