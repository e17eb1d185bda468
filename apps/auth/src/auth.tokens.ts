/** Injection tokens of the auth service's own objects. */
export const AUTH_BUS = Symbol('AUTH_BUS');
export const AUTH_LOGGER = Symbol('AUTH_LOGGER');
