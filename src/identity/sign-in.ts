// Which sign-in flow a StartupMessage gets (docs/security.md, "Sign-in methods"), decided
// from the channel and server.token_sign_in alone, never from the name: whether a name is
// listed, has a password in org.yaml, or exists only at an org's identity provider, the
// first request and the failure words are the same.
//
//               token_sign_in: password (default)           token_sign_in: oauthbearer
//   TLS         cleartext request: a token or a password   SASL: SCRAM-SHA-256(-PLUS), OAUTHBEARER
//   plaintext   SASL: SCRAM-SHA-256 (tokens need TLS: a token sent as a password fails as one)
//
// `password` is what every client can do (psql with the pgpass entry `gatehouse login`
// writes, JDBC and ODBC BI tools); `oauthbearer` keeps SCRAM's channel binding for password
// users and serves PostgreSQL 18's libpq OAuth, but a token typed as a password then runs
// SCRAM and fails. Without any org's identity_provider every name gets SCRAM, as before.
import type { Rules } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { Directory } from './directory.ts';
import type { AuthFlow, AuthStep, SignInMethod, SignInRequest } from './flow.ts';
import { oauthBearerFlow, withOAuthBearer } from './oauthbearer-flow.ts';
import type { OidcVerifier } from './oidc.ts';
import { scramFlow } from './scram-flow.ts';
import { refusalError, type TokenAuthority, tokenOrPasswordFlow } from './token-flow.ts';
import { type TokenIdentity, tokenIdentity } from './token-identity.ts';

/** Told to every plaintext client whose SCRAM sign-in failed while tokens are accepted (over TLS). */
const PLAINTEXT_TOKEN_HINT =
  "a token from your organization's identity provider is accepted over TLS only: connect with sslmode=require (or verify-full with the server's CA)";

export class SignInFlows implements TokenAuthority {
  constructor(
    private readonly rules: Rules,
    private readonly directory: Directory,
    private readonly oidc: OidcVerifier,
  ) {}

  flow(request: SignInRequest): AuthFlow {
    const credentials = this.directory.scramCredentials(request.user);
    const scram = scramFlow(request, credentials);
    if (!this.oidc.enabled) return scram;
    if (!request.channel.tls) return withFailureHint(scram, PLAINTEXT_TOKEN_HINT);
    if (this.rules.server.token_sign_in === 'password') return tokenOrPasswordFlow(request, this, credentials);
    return withOAuthBearer(scram, oauthBearerFlow(request, this, { discoveryIssuer: this.discoveryIssuer(request.user) }));
  }

  /**
   * The provider OAUTHBEARER's error response names: the one there is, else the one whose org
   * lists people of the name's email domain, when exactly one such org has a provider. Never
   * from whether the name itself is listed.
   */
  private discoveryIssuer(user: string): string | undefined {
    const only = this.oidc.onlyProvider();
    if (only) return only.issuer;
    const domain = user.trim().toLowerCase().split('@')[1];
    if (!domain) return undefined;
    const issuers = this.directory.orgsOfDomain(domain).flatMap((org) => {
      const provider = this.oidc.providerOf(org);
      return provider ? [provider.issuer] : [];
    });
    return issuers.length === 1 ? issuers[0] : undefined;
  }

  async signIn(token: string, startupUser: string, method: SignInMethod): Promise<TokenIdentity> {
    const check = await this.oidc.verify(token);
    if (!check.ok) return { reason: check.reason, error: refusalError(check, startupUser) };
    return tokenIdentity(check.token, startupUser, method, {
      org: (name) => this.rules.orgs.get(name),
      user: (email) => this.directory.find(email),
    });
  }
}

/** The same flow, with a hint added to its 28P01 refusal (the same words for every name). */
function withFailureHint(flow: AuthFlow, hint: string): AuthFlow {
  const withHint = (step: AuthStep): AuthStep => {
    if (step.kind !== 'fail' || step.error.sqlstate !== '28P01') return step;
    const e = step.error;
    return { ...step, error: new GatehouseError(e.sqlstate, e.message, { severity: e.severity, detail: e.detail, hint }) };
  };
  return {
    start: () => flow.start(),
    onMessage: (msg) => {
      const step = flow.onMessage(msg);
      return step instanceof Promise ? step.then(withHint) : withHint(step);
    },
  };
}
