// The provider's own discovery document (OpenID Connect Discovery 1.0): where to send the
// browser, where to exchange the code, where the device flow starts, where the keys are.
import { isProviderUrl } from '../config/schema.ts';
import { discoveryUrl } from '../identity/oidc.ts';
import { LoginError } from './errors.ts';
import { getJson } from './http.ts';

export interface ProviderEndpoints {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  /** RFC 8628; absent when the provider has no device flow. */
  device_authorization_endpoint?: string;
  jwks_uri: string;
}

export async function providerEndpoints(issuer: string): Promise<ProviderEndpoints> {
  const { status, body } = await getJson(`the identity provider ${issuer}`, discoveryUrl(issuer));
  if (status !== 200)
    throw new LoginError(
      `the identity provider ${issuer} answered HTTP ${status} for its discovery document`,
      'the provider may be down; try again later, or tell your org admin',
    );
  // Section 4.3: a document naming another issuer describes someone else's endpoints.
  if (body.issuer !== issuer)
    throw new LoginError(
      `the identity provider's discovery document names another issuer (${String(body.issuer)}), not ${issuer}`,
      "tell your org admin: identity_provider.issuer must be exactly the provider's issuer",
    );
  const url = (name: string): string | undefined => {
    const v = body[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !isProviderUrl(v))
      throw new LoginError(`the identity provider's discovery document has an unusable ${name} (https, or http on this machine only)`);
    return v;
  };
  const required = (name: string): string => {
    const v = url(name);
    if (v === undefined) throw new LoginError(`the identity provider's discovery document has no ${name}`);
    return v;
  };
  const methods = body.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes('S256'))
    throw new LoginError('the identity provider does not support PKCE with S256, which gatehouse login requires');
  return {
    issuer,
    authorization_endpoint: required('authorization_endpoint'),
    token_endpoint: required('token_endpoint'),
    device_authorization_endpoint: url('device_authorization_endpoint'),
    jwks_uri: required('jwks_uri'),
  };
}
