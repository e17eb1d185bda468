import type { GatewayConfig } from './schema.js';

/**
 * What a valid config probably does not mean to do, for the log at start and on reload: a key
 * (with its roles) that names a virtual server but none of the server's members. A server shows
 * a caller only the members it may use on its own, so that key gets an empty server: tools/list
 * answers no tools and every call is "not found", with nothing else to tell why.
 */
export function configAdvice(config: GatewayConfig): string[] {
  const advice: string[] = [];
  for (const key of config.keys) {
    const usable = new Set(key.namespaces);
    for (const role of key.roles)
      for (const ns of config.roles[role]?.namespaces ?? []) usable.add(ns);
    if (usable.has('*')) continue;
    for (const name of usable) {
      const server = config.servers[name];
      if (!server) continue;
      const members = server.namespaces.includes('*')
        ? [...usable].filter((ns) => Object.hasOwn(config.namespaces, ns))
        : server.namespaces;
      if (members.some((ns) => usable.has(ns))) continue;
      advice.push(
        `key ${key.id} may use virtual server ${name} but none of its members ` +
          `(${server.namespaces.join(', ')}): it sees the server empty. ` +
          'A server shows a caller the members it may use on its own: add them to the key or its roles.',
      );
    }
  }
  return advice;
}
