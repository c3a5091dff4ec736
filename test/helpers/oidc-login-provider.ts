// A real OpenID Connect provider for `gatehouse login` (the oidc-provider package, in the test
// process): a public native client with PKCE and a loopback redirect, the device flow (its
// interval cut to 1 s so tests do not wait 5), refresh tokens, and the package's own
// development login and consent pages, which scripted-browser.ts fills in as a person would.
// People are found by their login name; any password is accepted (the pages are the
// package's dev interactions). Tokens are signed with an RSA key of its own, published at
// its JWKS endpoint. With `resource`, access tokens for that resource are JWTs carrying the
// person's email (the access-token mode); without, the ID token is what Gatehouse takes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export const CLI_CLIENT = 'gatehouse-cli';
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface LoginPerson {
  email: string;
  claims?: Record<string, unknown>;
}

export interface LoginIdp {
  issuer: string;
  /** Token endpoint requests so far, by grant_type. */
  grants: string[];
  /** The next code exchange reaches the provider with another PKCE verifier (same length), as if it had been swapped on the way. */
  swapNextVerifier(): void;
  close(): Promise<void>;
}

export interface LoginIdpOptions {
  /** ID token (and access token) lifetime, seconds. */
  tokenTtl?: number;
  /** RFC 8707 resource whose access tokens are JWTs with this audience (access-token mode). */
  resource?: string;
}

export async function startLoginIdp(people: Record<string, LoginPerson>, opts: LoginIdpOptions = {}): Promise<LoginIdp> {
  const grants: string[] = [];
  let swapVerifier = false;
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/token') {
      // Peek at the grant type for the tests without consuming the body the provider reads.
      const chunks: Buffer[] = [];
      const push = req.push.bind(req);
      req.push = (chunk: Buffer | null, ...rest: unknown[]) => {
        if (chunk && swapVerifier && chunk.includes('code_verifier=')) {
          swapVerifier = false;
          chunk = Buffer.from(chunk.toString().replace(/code_verifier=([^&]*)/, (_, v: string) => `code_verifier=${'A'.repeat(v.length)}`));
        }
        if (chunk) chunks.push(Buffer.from(chunk));
        else grants.push(new URLSearchParams(Buffer.concat(chunks).toString()).get('grant_type') ?? '');
        return push(chunk, ...(rest as []));
      };
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'login-key-1', alg: 'RS256', use: 'sig' };
  const ttl = opts.tokenTtl ?? 600;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLI_CLIENT,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT],
        response_types: ['code'],
        // Native clients: any port of a loopback redirect matches (RFC 8252 7.3).
        redirect_uris: ['http://127.0.0.1/callback'],
      },
    ],
    jwks: { keys: [jwk] },
    findAccount: (_ctx: unknown, id: string) => {
      const person = people[id];
      if (!person) return undefined;
      return { accountId: id, claims: () => ({ sub: id, email: person.email, email_verified: true, ...person.claims }) };
    },
    // The `groups` scope brings the groups and region claims (Gatehouse maps them to groups and attributes).
    claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups', 'region'] },
    // The email in the ID token itself, as Okta, Entra ID and Google put it.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      ...(opts.resource
        ? {
            resourceIndicators: {
              enabled: true,
              defaultResource: () => opts.resource,
              getResourceServerInfo: (_ctx: unknown, resource: string) => ({
                scope: 'openid email',
                audience: resource,
                accessTokenFormat: 'jwt',
                accessTokenTTL: ttl,
                jwt: { sign: { alg: 'RS256' } },
              }),
              useGrantedResource: () => true,
            },
          }
        : {}),
    },
    extraTokenClaims: (_ctx: unknown, token: { accountId?: string }) => {
      const person = people[token.accountId ?? ''];
      return person ? { email: person.email, ...person.claims } : {};
    },
    ttl: { IdToken: ttl, AccessToken: ttl, AuthorizationCode: 60, DeviceCode: 120, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
  });
  // RFC 8628 3.2: the interval; oidc-provider leaves it out (clients then wait 5 s).
  (provider as unknown as { on(event: string, fn: (ctx: unknown, body: Record<string, unknown>) => void): void }).on(
    'device_authorization.success',
    (_ctx, body) => {
      body.interval = 1;
    },
  );
  handler = provider.callback();
  return {
    issuer,
    grants,
    swapNextVerifier: () => {
      swapVerifier = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
