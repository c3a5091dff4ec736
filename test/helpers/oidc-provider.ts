// A real OpenID Connect provider in the test process (the oidc-provider package): its own
// RSA signing key, its discovery document and JWKS on a free loopback port, and JWT access
// tokens issued through the client credentials grant (one client per person; the person's
// email, groups and attributes ride as extra token claims, the audience is the resource
// indicator asked for). Tokens oidc-provider will not issue (expired, not yet valid, signed
// with a key it does not publish) are minted with jose, signed with the provider's own key.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider from 'oidc-provider';

export interface Person {
  email: string;
  /** Extra claims: groups, region, email_verified... */
  claims?: Record<string, unknown>;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export interface TestIdp {
  issuer: string;
  /** Requests for the JWKS so far (rotation tests count refetches). */
  jwksFetches: number;
  /** A JWT access token for `client` (a key of `people`) with audience `resource`, from the token endpoint. */
  token(client: string, resource: string): Promise<string>;
  /** A JWT signed with the provider's current key (or `key`), with exactly these claims on top of iss/iat. */
  mint(claims: JWTPayload, opts?: { key?: SigningKey; kid?: string; alg?: string }): Promise<string>;
  /** A key pair the provider does not publish. */
  strayKey(kid: string): Promise<SigningKey>;
  /** Replaces the signing key by a new one (new kid): the old key is no longer published. */
  rotate(): Promise<void>;
  readonly currentKid: string;
  close(): Promise<void>;
}

async function newKey(kid: string): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}

export async function startTestIdp(people: Record<string, Person>): Promise<TestIdp> {
  let current: http.RequestListener = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  let jwksFetches = 0;
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/jwks')) jwksFetches++;
    current(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let key = await newKey('key-1');
  let generation = 1;

  const build = () => {
    const provider = new Provider(issuer, {
      clients: Object.keys(people).map((id) => ({
        client_id: id,
        client_secret: `${id}-secret`,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      })),
      jwks: { keys: [key.jwk] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:unused',
          // Any resource is a JWT audience here: the tests ask for the right and the wrong one.
          getResourceServerInfo: (_ctx: unknown, resource: string) => ({
            scope: 'openid',
            audience: resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          }),
          useGrantedResource: () => true,
        },
      },
      ttl: { ClientCredentials: 600 },
      extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => {
        const person = people[token.clientId ?? ''];
        return person ? { email: person.email, ...person.claims } : {};
      },
    });
    current = provider.callback();
  };
  build();

  return {
    issuer,
    get jwksFetches() {
      return jwksFetches;
    },
    get currentKid() {
      return key.kid;
    },
    async token(client, resource) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client}:${client}-secret`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource }).toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string };
      if (!body.access_token) throw new Error(`the test provider issued no token for ${client}: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    async mint(claims, opts = {}) {
      const k = opts.key ?? key;
      return new SignJWT({ iss: issuer, ...claims })
        .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? k.kid, typ: 'JWT' })
        .setIssuedAt()
        .sign(k.privateKey);
    },
    strayKey: (kid) => newKey(kid),
    async rotate() {
      key = await newKey(`key-${++generation}`);
      build();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
