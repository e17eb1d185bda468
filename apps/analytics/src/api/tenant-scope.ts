import { ErrorCode, GatewayError, type Principal } from '#common';
import type { EventFilters } from './query-params.js';

/**
 * A tenant admin sees only its tenant: its tenant filter is forced, and asking for another
 * tenant is refused rather than silently answered with the admin's own figures.
 */
export function scopeToPrincipal(filters: EventFilters, principal: Principal): EventFilters {
  if (principal.tenant === null) return filters;
  if (filters.tenant !== undefined && filters.tenant !== principal.tenant) {
    throw new GatewayError(
      ErrorCode.Forbidden,
      `this key may only read tenant "${principal.tenant}"`,
    );
  }
  return { ...filters, tenant: principal.tenant };
}
