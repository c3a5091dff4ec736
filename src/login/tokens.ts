// What a token endpoint answered, turned into what Gatehouse will take: the ID token (its
// audience is the client) or the access token (its audience is the org's `audience`), as the
// login document says. The token is verified here with the provider's keys, exactly as
// Gatehouse will (issuer, audience, expiry, the email claim), so a misconfigured provider
// fails at `gatehouse login` with its reason instead of later in psql as a bare 28000.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ALLOWED_ALGORITHMS, CLOCK_TOLERANCE_SECONDS, looksLikeJwt } from '../identity/oidc.ts';
import type { LoginDocument } from './document.ts';
import { LoginError } from './errors.ts';
import { oauthError } from './http.ts';

export interface SignedIn {
  /** The token Gatehouse takes as the password. */
  token: string;
  email: string;
  /** Seconds since the epoch: the token's exp. */
  expiresAt: number;
  /** A rotated or new refresh token, when the provider sent one. */
  refreshToken?: string;
}

const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

export async function acceptTokens(body: Record<string, unknown>, doc: LoginDocument, jwksUri: string, opts: { nonce?: string } = {}): Promise<SignedIn> {
  if (typeof body.error === 'string')
    throw new LoginError(
      `the identity provider refused to issue a token (${oauthError(body).text})`,
      'run gatehouse login again; if it persists, tell your org admin',
    );
  const token = body[doc.token];
  if (typeof token !== 'string') {
    throw new LoginError(
      `the identity provider's answer has no ${doc.token === 'id_token' ? 'ID token' : 'access token'}`,
      doc.token === 'id_token' ? "the org's login scopes must include openid" : undefined,
    );
  }
  if (!looksLikeJwt(token)) {
    throw new LoginError(
      `the identity provider issued an ${doc.token === 'id_token' ? 'ID' : 'access'} token that is not a JWT, which Gatehouse cannot verify`,
      'tell your org admin: use a provider API (authorization server) that issues JWT access tokens, or set identity_provider.audience to the login client id so the ID token is used',
    );
  }
  const keys = keySets.get(jwksUri) ?? createRemoteJWKSet(new URL(jwksUri));
  keySets.set(jwksUri, keys);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      issuer: doc.issuer,
      audience: doc.audience,
      algorithms: [...ALLOWED_ALGORITHMS],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp'],
    }));
  } catch (e) {
    throw new LoginError(
      `the token the identity provider issued would not sign in to Gatehouse: ${reasonOf(e)}`,
      'tell your org admin (identity_provider in org.yaml must match the provider: issuer, audience)',
    );
  }
  // OpenID Connect Core 3.1.3.7: the ID token of this authorization request, not a replayed one.
  if (opts.nonce !== undefined && doc.token === 'id_token' && payload.nonce !== opts.nonce)
    throw new LoginError('the ID token is not the answer to this sign-in (nonce mismatch)', 'run gatehouse login again');
  const email = payload[doc.email_claim];
  if (typeof email !== 'string' || !email.includes('@'))
    throw new LoginError(
      `the token has no email in its ${doc.email_claim} claim`,
      'tell your org admin: the login scopes must include email (or the provider must put the email in that claim)',
    );
  const refresh = typeof body.refresh_token === 'string' ? body.refresh_token : undefined;
  return { token, email: email.toLowerCase(), expiresAt: payload.exp as number, ...(refresh ? { refreshToken: refresh } : {}) };
}

/** jose's error as a fixed phrase (never its message: it can quote claims). */
function reasonOf(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return "it has already expired (is this machine's clock right?)";
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `its ${e.claim} claim is not what the org expects`;
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'its signing algorithm is not allowed';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed || e instanceof joseErrors.JWKSNoMatchingKey)
    return "its signature does not verify with the provider's keys";
  if (e instanceof joseErrors.JOSEError) return `it was refused (${e.code})`;
  return "the provider's keys could not be fetched";
}
