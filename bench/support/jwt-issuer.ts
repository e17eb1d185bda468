import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/** Where the bench's OAuth run says the gateway is: the audience of its tokens. */
export const BENCH_PUBLIC_URL = 'https://bench.gateway.test';

export interface JwtIssuer {
  url: string;
  /** An RS256 access token for the route `name`, valid for an hour, with scope `mcp`. */
  token(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A minimal OAuth issuer for the bench's JWT run (SPEC §10 v2): its discovery document and JWKS
 * over HTTP, as any IdP serves them; the edge fetches them once and verifies locally.
 */
export async function startJwtIssuer(): Promise<JwtIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] };
  let url = '';
  const server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer: url, jwks_uri: `${url}/jwks` }
        : req.url === '/jwks'
          ? jwks
          : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token: (name) =>
      new SignJWT({ scope: 'mcp' })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'at+jwt' })
        .setIssuer(url)
        .setSubject('bench-user')
        .setAudience(`${BENCH_PUBLIC_URL}/mcp/${name}`)
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
