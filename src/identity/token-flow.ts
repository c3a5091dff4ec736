// A token of the org's identity provider as the password (AuthenticationCleartextPassword),
// for the clients that cannot do anything else with a token: psql with a pgpass entry that
// `gatehouse login` wrote, JDBC and ODBC BI tools with the token in their password field.
// Offered over TLS only: the request itself is never sent to a plaintext client, and the
// flow refuses one anyway.
import { GatehouseError } from '../errors.ts';
import type { AuthFlow, AuthResponse, AuthStep, SignInMethod, SignInRequest } from './flow.ts';
import { parsesAsJwt, type TokenRefusal } from './oidc.ts';
import { passwordMatches } from './scram.ts';
import type { ScramCredentials } from './scram-flow.ts';
import { type TokenIdentity, tokenRejected } from './token-identity.ts';

/** Verifies a token and decides whom it signs in (sign-in.ts): a flow knows nothing of providers. */
export interface TokenAuthority {
  signIn(token: string, startupUser: string, method: SignInMethod): Promise<TokenIdentity>;
}

export function tlsRequired(user: string): GatehouseError {
  return new GatehouseError('28000', `user "${user}" signs in with an identity provider token, which Gatehouse accepts over TLS only`, {
    severity: 'FATAL',
    hint: "connect with sslmode=require (or verify-full with the server's CA) and the token as the password",
  });
}

/** What the client is told for a refused token (the reason goes to the audit). */
export function refusalError(refusal: TokenRefusal, user: string): GatehouseError {
  switch (refusal.kind) {
    case 'not_a_token':
      return new GatehouseError('28000', `password authentication failed for user "${user}"`, {
        severity: 'FATAL',
        hint: "this user signs in with a token from the organization's identity provider as the password",
      });
    case 'expired':
      return new GatehouseError('28000', 'the identity provider token has expired', {
        severity: 'FATAL',
        hint: 'get a new token from your identity provider and sign in again',
      });
    case 'unavailable':
      return new GatehouseError('28000', 'the token could not be verified: the identity provider did not answer', {
        severity: 'FATAL',
        hint: 'try again; if it persists, an administrator finds the reason in the Gatehouse log',
      });
    case 'rejected':
      return tokenRejected(user);
  }
}

/**
 * Every name over TLS, once some org has a provider and server.token_sign_in is `password`
 * (docs/security.md "Sign-in methods"): one AuthenticationCleartextPassword for everyone, so
 * the request tells nothing about who exists. The answer is a token when it parses as a JWT
 * (verified by the org's provider), else a password checked against org.yaml's SCRAM verifier
 * (a mock one for a name without a verifier: the same PBKDF2 cost, never a match).
 */
export function tokenOrPasswordFlow(request: SignInRequest, authority: TokenAuthority, credentials: ScramCredentials): AuthFlow {
  let answered = false;
  return {
    start: () => ({ type: 'AuthenticationCleartextPassword' }),
    async onMessage(msg: AuthResponse): Promise<AuthStep> {
      if (answered || msg.type !== 'CleartextPassword') {
        return {
          kind: 'fail',
          reason: 'unexpected message',
          error: new GatehouseError('08P01', 'malformed authentication message: expected PasswordMessage', { severity: 'FATAL' }),
        };
      }
      answered = true;
      // Never reached through sign-in.ts (no cleartext request over plaintext): a second lock.
      if (!request.channel.tls) return { kind: 'fail', reason: 'token sign-in over plaintext refused', error: tlsRequired(request.user) };
      if (parsesAsJwt(msg.password)) {
        const out = await authority.signIn(msg.password, request.user, 'oidc-password');
        if ('reason' in out) return { kind: 'fail', reason: out.reason, error: out.error };
        return { kind: 'done', identity: out.identity };
      }
      const matches = passwordMatches(msg.password, credentials.verifier);
      if (matches && credentials.identity) return { kind: 'done', identity: { ...credentials.identity, method: 'password' } };
      return {
        kind: 'fail',
        reason: credentials.identity ? 'wrong password' : 'password is not a JWT, and the name has no password in org.yaml',
        // One answer whether or not the name exists or has a password.
        error: new GatehouseError('28P01', `password authentication failed for user "${request.user}"`, { severity: 'FATAL', hint: PASSWORD_OR_TOKEN_HINT }),
      };
    },
  };
}

/** What every refused non-token password is told (the same words for every name). */
export const PASSWORD_OR_TOKEN_HINT =
  "sign in with your Gatehouse password, or with a token from your organization's identity provider as the password (gatehouse login writes it where psql finds it)";
