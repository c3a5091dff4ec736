// Tokens of the orgs' OpenID Connect providers (org.yaml `identity_provider`), verified
// with jose: the signature against the provider's published keys (JWKS, fetched and cached;
// a key id not in the cache refetches, at most once per cooldown, so a provider's key
// rotation is picked up), then issuer, audience, exp and nbf, and an allowlist of
// algorithms. What comes out is plain data (the org whose provider issued it, the email,
// the mapped groups and attributes); who that makes the person is token-identity.ts's call.
// No token, and nothing cut from one, goes into a reason, a log line or an error.
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, type JWTPayload, jwtVerify } from 'jose';
import type { Logger } from 'pino';
import type { Attributes, IdentityProvider, Org } from '../config/model.ts';
import { isProviderUrl } from '../config/schema.ts';

/** Asymmetric signatures only: never `none`, never HS* (whose key is a secret the provider shares with every relying party). */
export const ALLOWED_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'] as const;
/** exp and nbf may be off by this much (seconds): clocks of the provider and Gatehouse differ a little. */
export const CLOCK_TOLERANCE_SECONDS = 30;
/**
 * Longer than any JWT a provider issues for sign-in (a few KB even with many groups): a
 * longer password is refused before anything parses it.
 */
export const MAX_TOKEN_CHARS = 16 * 1024;
/** A provider's discovery document or keys that take longer than this fail the sign-in (the next one retries). */
const FETCH_TIMEOUT_MS = 5_000;

/** What a verified token says, for token-identity.ts. */
export interface VerifiedToken {
  /** The org whose provider issued it. */
  org: string;
  /** The email claim, lower-cased. */
  email: string;
  /** From groups_claim, only groups the org declares (others grant nothing and are dropped). */
  groups: string[];
  /** From attribute_claims. */
  attributes: Attributes;
}

/** Why a token was refused: `reason` is for the audit (no token in it); `kind` picks what the client is told. */
export interface TokenRefusal {
  reason: string;
  kind: 'not_a_token' | 'expired' | 'rejected' | 'unavailable';
}

export type TokenCheck = { ok: true; token: VerifiedToken } | ({ ok: false } & TokenRefusal);

/** Looks like a compact JWS (three base64url parts): a password that does not is never sent to jose. */
export function looksLikeJwt(value: string): boolean {
  return value.length <= MAX_TOKEN_CHARS && /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value);
}

/**
 * A compact JWS whose header and payload decode as JSON objects: such a password is taken for
 * a token. Anything else (a password with two dots in it too) is a password.
 */
export function parsesAsJwt(value: string): boolean {
  if (!looksLikeJwt(value)) return false;
  try {
    decodeProtectedHeader(value);
    decodeJwt(value);
    return true;
  } catch {
    return false;
  }
}

interface ProviderState {
  org: Org;
  provider: IdentityProvider;
  keys?: ReturnType<typeof createRemoteJWKSet>;
  /** Discovery in flight or done; dropped on failure so the next sign-in retries. */
  discovering?: Promise<string>;
}

export interface OidcOptions {
  logger?: Logger;
  /** How long a discovery document or key set fetch may take (ms). */
  fetchTimeoutMs?: number;
}

export class OidcVerifier {
  private readonly byIssuer = new Map<string, ProviderState>();

  constructor(
    orgs: Iterable<Org>,
    private readonly opts: OidcOptions = {},
  ) {
    for (const org of orgs) {
      if (org.identity_provider) this.byIssuer.set(org.identity_provider.issuer, { org, provider: org.identity_provider });
    }
  }

  /** True when some org signs its people in with a provider: the token flows are offered. */
  get enabled(): boolean {
    return this.byIssuer.size > 0;
  }

  /** The provider of an org, if it has one. */
  providerOf(org: string): IdentityProvider | undefined {
    for (const s of this.byIssuer.values()) if (s.org.name === org) return s.provider;
    return undefined;
  }

  /** The one provider when exactly one org has one (OAUTHBEARER discovery for a name no org lists). */
  onlyProvider(): IdentityProvider | undefined {
    return this.byIssuer.size === 1 ? [...this.byIssuer.values()][0].provider : undefined;
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > MAX_TOKEN_CHARS) return { ok: false, kind: 'not_a_token', reason: `password of ${token.length} characters is too long to be a token` };
    if (!looksLikeJwt(token)) return { ok: false, kind: 'not_a_token', reason: 'password is not a JWT' };
    let unverified: JWTPayload;
    try {
      // Only to find the provider by `iss`; nothing is trusted before jwtVerify below.
      unverified = decodeJwt(token);
    } catch {
      return { ok: false, kind: 'not_a_token', reason: 'password is not a JWT' };
    }
    const state = typeof unverified.iss === 'string' ? this.byIssuer.get(unverified.iss) : undefined;
    if (!state) return { ok: false, kind: 'rejected', reason: 'token issuer is not the identity provider of any org' };
    const { provider, org } = state;

    let keys: ReturnType<typeof createRemoteJWKSet>;
    try {
      keys = await this.keysOf(state);
    } catch (e) {
      this.opts.logger?.warn({ org: org.name, issuer: provider.issuer, err: (e as Error).message }, 'identity provider discovery failed');
      return { ok: false, kind: 'unavailable', reason: `identity provider of org ${org.name} unavailable (discovery failed)` };
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: provider.issuer,
        audience: provider.audience,
        algorithms: [...ALLOWED_ALGORITHMS],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      const refusal = refusalOf(e);
      if (refusal.kind === 'unavailable')
        this.opts.logger?.warn({ org: org.name, issuer: provider.issuer, err: (e as Error).message }, 'identity provider keys could not be fetched');
      return { ok: false, ...refusal };
    }

    const email = payload[provider.email_claim];
    // ASCII only: lower-casing other characters can land on an ASCII name (U+212A KELVIN SIGN
    // lower-cases to 'k'), which would sign the token in as someone else of the org.
    if (typeof email !== 'string' || !/^[!-?A-~]+@[!-?A-~]+$/.test(email)) {
      return { ok: false, kind: 'rejected', reason: `token has no ASCII email address in claim ${provider.email_claim}` };
    }
    // A provider that says the address is unverified vouches for an account, not for the mailbox.
    const verified = payload.email_verified;
    if (verified !== undefined && verified !== true && verified !== 'true') {
      return { ok: false, kind: 'rejected', reason: 'token email is not verified (email_verified is false)' };
    }
    return {
      ok: true,
      token: {
        org: org.name,
        email: email.toLowerCase(),
        groups: provider.groups_claim ? strings(payload[provider.groups_claim]).filter((g) => org.groups.includes(g)) : [],
        attributes: Object.fromEntries(
          Object.entries(provider.attribute_claims)
            .map(([claim, attribute]) => [attribute, strings(payload[claim])] as const)
            .filter(([, values]) => values.length > 0),
        ),
      },
    };
  }

  /** The provider's key set: jwks_uri as configured, or as its discovery document says. */
  private async keysOf(state: ProviderState): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (state.keys) return state.keys;
    const uri = state.provider.jwks_uri ?? (await this.discover(state));
    state.keys ??= createRemoteJWKSet(new URL(uri), {
      timeoutDuration: this.opts.fetchTimeoutMs ?? FETCH_TIMEOUT_MS,
      // An unknown kid refetches the keys (rotation), but not more often than this: a stream
      // of tokens with made-up key ids cannot turn Gatehouse into a load on the provider.
      cooldownDuration: state.provider.jwks_refresh_cooldown,
      cacheMaxAge: 10 * 60_000,
    });
    return state.keys;
  }

  private discover(state: ProviderState): Promise<string> {
    state.discovering ??= discoverJwksUri(state.provider.issuer, this.opts.fetchTimeoutMs ?? FETCH_TIMEOUT_MS).catch((e) => {
      state.discovering = undefined;
      throw e;
    });
    return state.discovering;
  }
}

/** `<issuer>/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 section 4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

async function discoverJwksUri(issuer: string, timeoutMs: number): Promise<string> {
  const res = await fetch(discoveryUrl(issuer), { signal: AbortSignal.timeout(timeoutMs), redirect: 'error', headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`discovery document answered HTTP ${res.status}`);
  const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // Section 4.3: the document's issuer must be the one asked for, or its keys are someone else's.
  if (doc.issuer !== issuer) throw new Error('discovery document names another issuer');
  if (typeof doc.jwks_uri !== 'string' || !isProviderUrl(doc.jwks_uri))
    throw new Error('discovery document has no usable jwks_uri (https, or http to loopback only)');
  return doc.jwks_uri;
}

/** A claim as attribute or group values: a string, a number, or a list of them; anything else is nothing. */
function strings(value: unknown): string[] {
  const items = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return items.filter((v) => typeof v === 'string' || typeof v === 'number').map(String);
}

/** jose's error as a fixed reason: never its message verbatim (it can quote claims). */
function refusalOf(e: unknown): TokenRefusal {
  if (e instanceof joseErrors.JWTExpired) return { kind: 'expired', reason: 'token expired' };
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = e.claim;
    if (claim === 'nbf') return { kind: 'rejected', reason: 'token not yet valid (nbf)' };
    if (claim === 'aud') return { kind: 'rejected', reason: "token audience is not this org's" };
    if (claim === 'iss') return { kind: 'rejected', reason: 'token issuer mismatch' };
    if (claim === 'exp') return { kind: 'rejected', reason: 'token has no valid exp' };
    if (claim === 'iat') return { kind: 'rejected', reason: 'token iat invalid' };
    return { kind: 'rejected', reason: `token claim ${claim} invalid` };
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return { kind: 'rejected', reason: 'token algorithm not allowed' };
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return { kind: 'rejected', reason: 'token signature invalid' };
  if (e instanceof joseErrors.JWKSNoMatchingKey) return { kind: 'rejected', reason: "token key id not in the provider's keys" };
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return { kind: 'rejected', reason: "token key id ambiguous in the provider's keys" };
  if (e instanceof joseErrors.JWKSTimeout) return { kind: 'unavailable', reason: 'identity provider keys timed out' };
  if (e instanceof joseErrors.JWKSInvalid) return { kind: 'unavailable', reason: 'identity provider keys are not a valid JWKS' };
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return { kind: 'not_a_token', reason: 'password is not a valid JWT' };
  // Not jose's own: the keys' fetch failed (network, or an HTTP status jose refused).
  if (!(e instanceof joseErrors.JOSEError) || e.code === 'ERR_JOSE_GENERIC')
    return { kind: 'unavailable', reason: 'identity provider keys could not be fetched' };
  return { kind: 'rejected', reason: `token refused (${e instanceof joseErrors.JOSEError ? e.code : 'unexpected error'})` };
}
