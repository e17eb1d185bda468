/** Injection tokens of the auth service's own objects. */
export const AUTH_BUS = Symbol('AUTH_BUS');
export const AUTH_LOGGER = Symbol('AUTH_LOGGER');
/** The store of keys created at run time (RuntimeKeys), or null when there is none. */
export const RUNTIME_KEYS = Symbol('RUNTIME_KEYS');
