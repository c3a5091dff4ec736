// The device authorization grant (RFC 8628) for a machine without a browser: the person opens
// the printed address anywhere, enters (or confirms) the code, and this machine polls the
// token endpoint at the interval the provider asks for (5 s when it says nothing, 5 s more
// after each slow_down) until the provider answers with tokens, a refusal, or expiry.
import type { LoginDocument } from './document.ts';
import { LoginError } from './errors.ts';
import { oauthError, postForm } from './http.ts';
import type { ProviderEndpoints } from './provider.ts';
import { acceptTokens, type SignedIn } from './tokens.ts';

export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface DeviceFlowOptions {
  print: (line: string) => void;
  /** Upper bound on the wait, whatever expires_in says. */
  timeoutMs: number;
}

export async function deviceSignIn(doc: LoginDocument, endpoints: ProviderEndpoints, opts: DeviceFlowOptions): Promise<SignedIn> {
  if (!endpoints.device_authorization_endpoint) {
    throw new LoginError(
      'the identity provider has no device flow (no device_authorization_endpoint)',
      'sign in without --device, in a browser on this machine',
    );
  }
  const start = await postForm("the identity provider's device endpoint", endpoints.device_authorization_endpoint, {
    client_id: doc.client_id,
    scope: doc.scopes.join(' '),
    resource: doc.resource,
  });
  if (start.status !== 200)
    throw new LoginError(
      `the identity provider refused to start a device sign-in (${oauthError(start.body).text})`,
      'tell your org admin: the login client must allow the device code grant',
    );
  const { device_code: deviceCode, user_code: userCode, verification_uri: uri, verification_uri_complete: complete } = start.body;
  if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof uri !== 'string')
    throw new LoginError("the identity provider's device answer is missing its codes");
  const expiresIn = typeof start.body.expires_in === 'number' ? start.body.expires_in : 600;
  let interval = (typeof start.body.interval === 'number' && start.body.interval > 0 ? start.body.interval : 5) * 1000;
  opts.print(
    `To sign in to ${doc.org}, open ${typeof complete === 'string' ? complete : uri} in a browser on any device${typeof complete === 'string' ? '' : ` and enter the code ${userCode}`}.\nThe code is ${userCode}; check the page shows the same. Waiting...\n`,
  );
  const deadline = Date.now() + Math.min(expiresIn * 1000, opts.timeoutMs);
  for (;;) {
    if (Date.now() + interval > deadline)
      throw new LoginError('the device code expired before the sign-in was approved', 'run gatehouse login --device again and approve it in time');
    await new Promise((r) => setTimeout(r, interval));
    const { status, body } = await postForm("the identity provider's token endpoint", endpoints.token_endpoint, {
      grant_type: DEVICE_GRANT,
      device_code: deviceCode,
      client_id: doc.client_id,
      resource: doc.resource,
    });
    if (status === 200) return acceptTokens(body, doc, endpoints.jwks_uri);
    const { error, text } = oauthError(body);
    switch (error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        interval += 5000;
        continue;
      case 'access_denied':
        throw new LoginError(`the sign-in was denied at the identity provider (${text})`, 'run gatehouse login --device again and approve access');
      case 'expired_token':
        throw new LoginError('the device code expired before the sign-in was approved', 'run gatehouse login --device again and approve it in time');
      default:
        throw new LoginError(
          `the identity provider refused the device sign-in (${text})`,
          'run gatehouse login --device again; if it persists, tell your org admin',
        );
    }
  }
}
