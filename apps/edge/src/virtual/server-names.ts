import { memberPrefix, type ServerConfig } from '#common';

/** Where a name the client uses on a virtual server leads: a member and the backend's own name. */
export interface MemberName {
  namespace: string;
  /** The backend's name of the tool or prompt. */
  backend: string;
  /** The name with the member's prefix, before any override (what the server's `tools` rules see). */
  prefixed: string;
}

type Override = ServerConfig['overrides'][string];

/**
 * The names of one virtual server (SPEC §3 v2 `servers`): a member's tool or prompt is shown as
 * its prefix (`prefix` with `{ns}` replaced by the member's name) plus the backend's name, then
 * renamed by an override; and back. A name an override renamed away is no name at all: the
 * client is shown, and may call, only the new one.
 */
export class ServerNames {
  private readonly prefixes: Array<[namespace: string, prefix: string]>;
  /** Override name -> prefixed name. */
  private readonly renamed = new Map<string, string>();

  constructor(
    readonly server: string,
    readonly config: ServerConfig,
    readonly members: readonly string[],
  ) {
    this.prefixes = members.map((ns) => [ns, memberPrefix(config.prefix, ns)]);
    for (const [prefixed, override] of Object.entries(config.overrides)) {
      if (override.name !== undefined) this.renamed.set(override.name, prefixed);
    }
  }

  prefixOf(namespace: string): string {
    return memberPrefix(this.config.prefix, namespace);
  }

  /** The override of a prefixed tool name, if the config has one. */
  overrideOf(prefixed: string): Override | undefined {
    return Object.hasOwn(this.config.overrides, prefixed)
      ? this.config.overrides[prefixed]
      : undefined;
  }

  /** The name the client sees for a member's tool (`tool: false`: a prompt, never overridden). */
  clientName(namespace: string, backend: string, tool = true): string {
    const prefixed = this.prefixOf(namespace) + backend;
    return (tool ? this.overrideOf(prefixed)?.name : undefined) ?? prefixed;
  }

  /** The prefixed name behind a client's tool name; undefined for a name renamed away. */
  prefixedOf(name: string, tool = true): string | undefined {
    if (!tool) return name;
    const renamed = this.renamed.get(name);
    if (renamed !== undefined) return renamed;
    const override = this.overrideOf(name);
    return override?.name !== undefined && override.name !== name ? undefined : name;
  }

  /**
   * The members a client's name may belong to: those whose prefix it carries. Several only when
   * members share a prefix (`""`, or one without `{ns}`): then their lists decide.
   */
  candidates(name: string, tool = true): MemberName[] {
    const prefixed = this.prefixedOf(name, tool);
    if (prefixed === undefined) return [];
    const found: MemberName[] = [];
    for (const [namespace, prefix] of this.prefixes) {
      if (prefixed.length > prefix.length && prefixed.startsWith(prefix))
        found.push({ namespace, backend: prefixed.slice(prefix.length), prefixed });
    }
    return found;
  }
}
