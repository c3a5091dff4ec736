// Which sign-in flow a StartupMessage gets (docs/security.md, "Sign-in methods"), decided
// before anything is verified from the channel and from whether the name has a SCRAM
// verifier in org.yaml:
//
//                      name has a verifier                       no verifier (or unknown name)
//   TLS                SASL: SCRAM-SHA-256(-PLUS), OAUTHBEARER    a token as the password (cleartext request)
//   plaintext          SASL: SCRAM-SHA-256                        refused: tokens need TLS (hint sslmode=require)
//
// OAUTHBEARER and the token flows exist only while some org has an identity_provider;
// without one every name gets SCRAM (a mock for unknown names) as before. The choice tells
// a client whether a name has a password in org.yaml, never which org it belongs to.
import type { Rules } from '../config/model.ts';
import type { Directory } from './directory.ts';
import type { AuthFlow, SignInMethod, SignInRequest } from './flow.ts';
import { oauthBearerFlow, withOAuthBearer } from './oauthbearer-flow.ts';
import type { OidcVerifier } from './oidc.ts';
import { scramFlow } from './scram-flow.ts';
import { plaintextTokenRefusal, refusalError, type TokenAuthority, tokenPasswordFlow } from './token-flow.ts';
import { type TokenIdentity, tokenIdentity } from './token-identity.ts';

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
    const hasVerifier = this.directory.verifierFor(request.user).known;
    if (hasVerifier) {
      if (!request.channel.tls) return scram;
      // The org that lists the name tells the client where to get a token; a name no org's
      // provider covers is told the one provider there is, or none.
      const listedOrg = credentials.identity?.org;
      const discoveryIssuer = (listedOrg ? this.oidc.providerOf(listedOrg)?.issuer : undefined) ?? this.oidc.onlyProvider()?.issuer;
      return withOAuthBearer(scram, oauthBearerFlow(request, this, { discoveryIssuer }));
    }
    if (request.channel.tls) return tokenPasswordFlow(request, this);
    const first = scram.start();
    return plaintextTokenRefusal(request, first.type === 'AuthenticationSASL' ? first.mechanisms : ['SCRAM-SHA-256']);
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
