import type { Role, ToolRules } from '../contracts/subjects.js';
import type { GatewayConfig } from './schema.js';

/** What a principal was granted directly: a key's fields, or what a token's claims map to. */
export interface PermissionGrant {
  /** Role names; names the config does not hold grant nothing. */
  roles?: readonly string[];
  /** Namespaces granted besides the roles' (a key's inline `namespaces`). */
  namespaces?: readonly string[];
  /** The principal's own tool scope (a key's `tools`). */
  tools?: ToolRules;
  /** Further tool scopes it is bounded by: a created key's, those of the admin who created it. */
  inheritedTools?: readonly ToolRules[];
  /** A key's `role` field (v1): `admin` makes the principal an admin whatever its roles. */
  role?: Role;
}

/** The permissions a grant resolves to under one config: what a Principal carries. */
export interface Permissions {
  /** `admin` when the grant's role is, or any of its roles has `admin: true`. */
  role: Role;
  /** The roles of the grant the config holds, in the grant's order, each once. */
  roles: string[];
  /** The union of the grant's namespaces and each role's; `["*"]` when any is `*`. */
  namespaces: string[];
  /**
   * Tool rule sets to intersect with a namespace's filter (SPEC §4, v2 Permissions): the grant's
   * own and each role's, each once; sets that allow everything are left out, so an empty list
   * means the namespace's filter alone decides.
   */
  tools: ToolRules[];
}

/**
 * Resolves a grant against the config's `roles` (SPEC §3, v2): namespaces are the union of what
 * the grant and its roles name, tool rules the intersection of the grant's and its roles', admin
 * what any of them says. Pure, and the same for API keys (the auth service) and OAuth principals
 * (roles from a token claim through `role_map`), so both kinds of principal mean the same thing.
 */
export function resolvePermissions(
  config: Pick<GatewayConfig, 'roles'>,
  grant: PermissionGrant,
): Permissions {
  const roles: string[] = [];
  const namespaces = new Set(grant.namespaces ?? []);
  const tools: ToolRules[] = [];
  const seenTools = new Set<string>();
  const addTools = (rules: ToolRules | undefined) => {
    if (!rules || allowsEverything(rules)) return;
    const key = JSON.stringify([rules.allow, rules.deny]);
    if (seenTools.has(key)) return;
    seenTools.add(key);
    tools.push({ allow: [...rules.allow], deny: [...rules.deny] });
  };
  let admin = grant.role === 'admin';
  addTools(grant.tools);
  for (const rules of grant.inheritedTools ?? []) addTools(rules);
  for (const name of grant.roles ?? []) {
    // The config's roles record has no prototype: `constructor` finds nothing.
    const role = config.roles[name];
    if (!role || roles.includes(name)) continue;
    roles.push(name);
    for (const ns of role.namespaces) namespaces.add(ns);
    addTools(role.tools);
    admin ||= role.admin;
  }
  return {
    role: admin ? 'admin' : 'user',
    roles,
    namespaces: namespaces.has('*') ? ['*'] : [...namespaces],
    tools,
  };
}

function allowsEverything(rules: ToolRules): boolean {
  return rules.deny.length === 0 && rules.allow.includes('*');
}
