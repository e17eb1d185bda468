import {
  type ConfigStore,
  isStdioUpstream,
  type Principal,
  type ServerConfig,
  type ToolRules,
} from '#common';
import type { Logger } from 'pino';
import { mayUseNamespace } from '../auth/key-verifier.js';
import type { EraProbe } from '../era/era-probe.js';
import { ModernBackend } from '../era/modern-backend.js';
import type { BridgeSessions } from '../bridge/bridge-sessions.js';
import type { ExchangeIdentity } from '../events/exchange-recorder.js';
import { toolFilterFor } from '../filtering/tool-filter.js';
import { transportOf } from '../pipeline/admission.js';
import type { EdgeMetrics } from '../metrics/edge-metrics.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import type { ToolCatalog, ToolGate } from '../pins/tool-catalog.js';
import { ServerNames } from './server-names.js';
import { type MemberConnection, VirtualBackend } from './virtual-backend.js';
import { VirtualGate } from './virtual-gate.js';

/** No rules of its own: the filter of a caller's scope alone (compiled once per scope). */
const SCOPE_ONLY: { tools: ToolRules } = { tools: { allow: ['*'], deny: [] } };

/**
 * The virtual servers of the config (SPEC §3 v2 `servers`): which members a caller may use,
 * the gate the tap applies on a server for a caller, and the backend of a new session.
 */
export class VirtualServers {
  constructor(
    private readonly config: ConfigStore,
    private readonly catalog: ToolCatalog,
    private readonly bridges: BridgeSessions,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
    private readonly version: string,
    private readonly limiter?: RateLimiter,
    /** Which era an HTTP member speaks: a 2026-07-28-only member is reached through ModernBackend. */
    private readonly probe?: EraProbe,
  ) {}

  get(name: string): ServerConfig | undefined {
    const servers = this.config.current.servers;
    return Object.hasOwn(servers, name) ? servers[name] : undefined;
  }

  /** The server's members this caller may use ("*": every namespace it may use), in order. */
  members(server: ServerConfig, principal: Principal): string[] {
    const namespaces = this.config.current.namespaces;
    const listed = server.namespaces.includes('*') ? Object.keys(namespaces) : server.namespaces;
    return [...new Set(listed)].filter(
      (ns) => Object.hasOwn(namespaces, ns) && mayUseNamespace(principal, ns),
    );
  }

  /**
   * Whether a caller may use `namespace` through server `name` now: a member by the config in
   * force, and one the caller's latest scope allows. Asked on every request and list of an open
   * session, so an edit or a revocation applies to it as to a new one (SPEC §3).
   */
  admits(name: string, namespace: string, principal: Principal): boolean {
    const server = this.get(name);
    return server !== undefined && this.members(server, principal).includes(namespace);
  }

  names(name: string, server: ServerConfig, principal: Principal): ServerNames {
    return new ServerNames(name, server, this.members(server, principal));
  }

  /**
   * Where a tool the client named goes, for its events: the member, the backend's name and the
   * member's backend kind (the first candidate; undefined for a name no member's prefix fits).
   */
  route(names: ServerNames): ExchangeIdentity['route'] {
    return (tool) => {
      const candidate = names.candidates(tool)[0];
      if (!candidate) return undefined;
      const upstream = this.config.current.namespaces[candidate.namespace]?.upstream;
      return {
        namespace: candidate.namespace,
        tool: candidate.backend,
        transport: upstream ? transportOf(upstream) : undefined,
      };
    };
  }

  /** The tap's gate for a caller on a server (rules of the config in force). */
  gate(names: ServerNames, principal: Principal): VirtualGate {
    const server = this.get(names.server) ?? names.config;
    return new VirtualGate(
      names,
      toolFilterFor(server),
      toolFilterFor(SCOPE_ONLY, principal),
      (namespace) => this.memberGate(namespace, principal, names),
      this.catalog,
    );
  }

  /** The backend of a new session of the server: a connection per member, made as needed. */
  backend(
    names: ServerNames,
    gate: () => VirtualGate,
    logger: Logger,
    options: {
      memberWaitMs?: number;
      /**
       * The caller (its latest scope): which members it may still use, and each request routed
       * to a member is taken from that member's own limit.
       */
      principal: () => Principal;
    },
  ): VirtualBackend {
    const { principal } = options;
    const limiter = this.limiter;
    return new VirtualBackend({
      names,
      gate,
      memberWaitMs: options.memberWaitMs,
      admits: (namespace) => this.admits(names.server, namespace, principal()),
      limit: limiter ? (namespace) => limiter.consumeMember(principal(), namespace) : undefined,
      connect: (namespace, memberLogger) =>
        this.connection(namespace, memberLogger, principal().keyId),
      timeoutMs: (namespace) => this.config.current.namespaces[namespace]?.timeout_ms ?? 300_000,
      metrics: this.metrics,
      logger: logger ?? this.logger,
      version: this.version,
    });
  }

  /**
   * A session the gateway holds with a namespace's backend (a member's, or a 2026-07-28 client's
   * on a 2025-era backend): over HTTP to a backend that speaks 2026-07-28, the gateway keeps the
   * session itself (ModernBackend, as for a 2025 client of that namespace), since such a backend
   * may refuse a 2025 initialize; every other member through its namespace's bridge, counted as
   * one of `keyId`'s sessions there.
   */
  async connection(namespace: string, logger: Logger, keyId: string): Promise<MemberConnection> {
    const upstream = this.config.current.namespaces[namespace]?.upstream;
    if (this.probe && upstream && !isStdioUpstream(upstream) && (await this.probe.modern(upstream)))
      return { transport: new ModernBackend(upstream), release: () => undefined };
    return this.bridges.memberConnection(namespace, logger, keyId);
  }

  /**
   * A member's own gate for the caller, or undefined when it is no member (any more: the config
   * in force and the caller's latest scope decide, not the members the session opened with).
   */
  private memberGate(
    namespace: string,
    principal: Principal,
    names: ServerNames,
  ): ToolGate | undefined {
    if (!names.members.includes(namespace) || !this.admits(names.server, namespace, principal))
      return undefined;
    const config = this.config.current.namespaces[namespace];
    if (!config) return undefined;
    return this.catalog.gate(namespace, toolFilterFor(config, principal));
  }
}
