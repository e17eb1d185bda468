// oidc-provider 9 ships no types (and @types/oidc-provider lags its majors): the few members
// the test IdP (oidc-provider.ts) uses, typed narrowly enough for the type-aware lint rules.
// The configuration stays a loose record: its callbacks are typed where they are written.

declare module 'oidc-provider' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface Client {
    readonly clientId: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  /** The Koa context oidc-provider passes to configuration callbacks (only what is read). */
  export interface KoaContextWithOIDC {
    oidc: { client?: Client; params?: Record<string, unknown> };
  }

  /** An AccessToken or ClientCredentials model, as handed to `extraTokenClaims`. */
  export interface AccessTokenModel {
    readonly kind: string;
    readonly accountId?: string;
    readonly clientId: string;
    readonly scope?: string;
    readonly resourceServer?: { audience?: string | string[] };
  }

  export interface Interaction {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId?: string };
    grantId?: string;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface GrantModel {
    new (properties: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant | undefined>;
  }

  export class Provider extends EventEmitter {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    readonly Grant: GrantModel;
    /** Koa's request listener. */
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>;
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: Record<string, unknown>,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>;
  }

  export default Provider;
}

// Not a public entry point (the package has no "exports" map), but it is how one gets an
// in-memory adapter without the "development-only adapter" warning the default one prints.
declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  export function createMemoryAdapter(clockTolerance?: number): (model: string) => {
    upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
  };
}
