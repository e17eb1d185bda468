import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';

/**
 * A wire-level OAuth issuer: its OpenID discovery document and JWKS over HTTP, counting fetches,
 * with keys that can be rotated. `hang()` makes it take requests and never answer (an IdP that
 * is up but stuck), `release()` drops the requests it holds, so a test decides when a fetch ends.
 */
export class FakeIssuer {
  url = '';
  jwksFetches = 0;
  /** Requests for discovery or keys held unanswered while hanging. */
  readonly held: IncomingMessage[] = [];
  private hanging = false;
  private server?: Server;
  private keys: Array<{ kid: string; privateKey: CryptoKey; jwk: JWK; pem: string }> = [];
  private port = 0;

  /** @param audience the `aud` of the tokens it signs unless a claim says otherwise */
  constructor(private readonly audience = 'https://gateway.test/mcp/tools') {}

  /** Listens (again, on the same port after a stop: the issuer URL stays). */
  async start(): Promise<this> {
    if (this.keys.length === 0) await this.addKey();
    this.server = createServer((req, res) => this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** From now on, discovery and key requests are held without an answer. */
  hang(): void {
    this.hanging = true;
  }

  /** Fails every held request at once (its connection reset); with `recover`, answers again. */
  release({ recover = false } = {}): void {
    for (const req of this.held.splice(0)) req.socket.destroy();
    if (recover) this.hanging = false;
  }

  async addKey(): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = randomUUID();
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    this.keys.push({ kid, privateKey, jwk, pem: await exportSPKI(publicKey) });
    return kid;
  }

  get current() {
    return this.keys[this.keys.length - 1];
  }

  sign(claims: JWTPayload, options: { kid?: string; key?: CryptoKey; issuer?: string } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ scope: 'mcp', email: 'ada@acme.example', tenant_id: 'acme', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? this.current.kid, typ: 'at+jwt' })
      .setIssuer(options.issuer ?? this.url)
      .setSubject(typeof claims.sub === 'string' ? claims.sub : 'user-ada')
      .setAudience(claims.aud ?? this.audience)
      .setIssuedAt(now)
      .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : now + 300)
      .sign(options.key ?? this.current.privateKey);
  }

  async stop(): Promise<void> {
    this.release();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const known = req.url === '/.well-known/openid-configuration' || req.url === '/jwks';
    if (req.url === '/jwks') this.jwksFetches++;
    if (known && this.hanging) {
      this.held.push(req);
      return;
    }
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: this.url, jwks_uri: `${this.url}/jwks` }));
      return;
    }
    if (req.url === '/jwks') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys.map((key) => key.jwk) }));
      return;
    }
    res.writeHead(404).end();
  }
}
