// SASL OAUTHBEARER (RFC 7628) as a sign-in flow, as PostgreSQL 18's server runs it and its
// libpq speaks it: the client's initial response `n,,\x01auth=Bearer <token>\x01\x01`. A
// token that fails, or an empty auth value (the client asking where to get a token), is
// answered with the RFC's JSON error (section 3.2.2: status, scope, and the org provider's
// openid-configuration) in a SASLContinue; the client's one-byte \x01 ends the exchange
// with a FATAL (section 3.2.3). Over TLS only, like a token as password.
import { GatehouseError } from '../errors.ts';
import type { AuthFlow, AuthResponse, AuthStep, SignInRequest } from './flow.ts';
import { discoveryUrl } from './oidc.ts';
import { type TokenAuthority, tlsRequired } from './token-flow.ts';

export const OAUTHBEARER_MECHANISM = 'OAUTHBEARER';
const KVSEP = '\x01';
/** What the error response asks the client to request (RFC 7628 3.2.2 `scope`). */
export const OAUTH_SCOPE = 'openid email';

export interface OAuthBearerOptions {
  /** The issuer whose discovery document the error response names; absent: none named. */
  discoveryIssuer?: string;
}

type Parsed = { auth: string } | { malformed: string };

/** The client's initial response (RFC 7628 3.1), as PostgreSQL's auth-oauth.c reads it. */
export function parseInitialResponse(data: string): Parsed {
  // gs2-header: no channel binding is defined for OAUTHBEARER ('p' refused); 'y' tolerated.
  if (data[0] !== 'n' && data[0] !== 'y') return { malformed: 'unexpected channel-binding flag' };
  if (data[1] !== ',') return { malformed: 'comma expected after the channel-binding flag' };
  if (data[2] === 'a') return { malformed: 'authorization identity is not supported' };
  if (data[2] !== ',') return { malformed: 'unexpected attribute in the gs2 header' };
  if (data[3] !== KVSEP) return { malformed: 'key-value separator expected' };
  let pos = 4;
  let auth: string | undefined;
  for (;;) {
    const end = data.indexOf(KVSEP, pos);
    if (end === -1) return { malformed: 'unterminated key/value pair' };
    if (end === pos) {
      if (end + 1 !== data.length) return { malformed: 'data after the final terminator' };
      return auth === undefined ? { malformed: 'no auth value' } : { auth };
    }
    const pair = data.slice(pos, end);
    const eq = pair.indexOf('=');
    if (eq <= 0) return { malformed: 'key without a value' };
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!/^[A-Za-z]+$/.test(key) || !/^[\x21-\x7e \t\r\n]*$/.test(value)) return { malformed: 'invalid key or value' };
    if (key === 'auth') {
      if (auth !== undefined) return { malformed: 'several auth values' };
      auth = value;
    }
    // host, port and unknown keys are ignored (section 3.1).
    pos = end + 1;
  }
}

/** The bearer token of an auth value (RFC 6750 2.1: "Bearer" 1*SP b64token, scheme case-insensitive). */
export function bearerToken(auth: string): string | undefined {
  const m = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(auth);
  return m?.[1];
}

export function oauthBearerFlow(request: SignInRequest, authority: TokenAuthority, opts: OAuthBearerOptions = {}): AuthFlow {
  let state: 'init' | 'awaiting-initial' | 'error' | 'discovery' | 'finished' = 'init';
  let failure: { reason: string; error: GatehouseError } | undefined;
  const malformed = (why: string): AuthStep => {
    state = 'finished';
    return {
      kind: 'fail',
      reason: `malformed OAUTHBEARER message: ${why}`,
      error: new GatehouseError('08P01', 'malformed OAUTHBEARER message', { severity: 'FATAL', detail: why }),
    };
  };
  const errorResponse = (): AuthStep => ({
    kind: 'continue',
    send: {
      type: 'AuthenticationSASLContinue',
      data: JSON.stringify({
        status: 'invalid_token',
        ...(opts.discoveryIssuer ? { 'openid-configuration': discoveryUrl(opts.discoveryIssuer) } : {}),
        scope: OAUTH_SCOPE,
      }),
    },
  });

  const initial = async (data: Buffer): Promise<AuthStep> => {
    if (data.length === 0) return malformed('the message is empty');
    const parsed = parseInitialResponse(data.toString('latin1'));
    if ('malformed' in parsed) return malformed(parsed.malformed);
    if (parsed.auth === '') {
      // Discovery: the client has no token yet and asks which provider to get one from.
      state = 'discovery';
      return errorResponse();
    }
    const token = bearerToken(parsed.auth);
    const out =
      token === undefined
        ? {
            reason: 'OAUTHBEARER auth value is not a Bearer token',
            error: new GatehouseError('28000', `OAuth bearer authentication failed for user "${request.user}"`, { severity: 'FATAL' }),
          }
        : await authority.signIn(token, request.user, 'oauthbearer');
    if ('identity' in out) {
      state = 'finished';
      // Success has no additional data (PostgreSQL sends AuthenticationOk right away).
      return { kind: 'done', identity: out.identity };
    }
    failure = out;
    state = 'error';
    return errorResponse();
  };

  return {
    start: () => ({ type: 'AuthenticationSASL', mechanisms: [OAUTHBEARER_MECHANISM] }),
    async onMessage(msg: AuthResponse): Promise<AuthStep> {
      switch (state) {
        case 'init': {
          if (msg.type !== 'SASLInitialResponse') return malformed('expected SASLInitialResponse');
          if (msg.mechanism !== OAUTHBEARER_MECHANISM) {
            state = 'finished';
            return {
              kind: 'fail',
              reason: 'unsupported SASL mechanism',
              error: new GatehouseError('08P01', 'client selected an invalid SASL authentication mechanism', { severity: 'FATAL' }),
            };
          }
          if (!request.channel.tls) {
            state = 'finished';
            return { kind: 'fail', reason: 'token sign-in over plaintext refused', error: tlsRequired(request.user) };
          }
          if (!msg.data) {
            // No initial response: an empty challenge, answered with what it would have held.
            state = 'awaiting-initial';
            return { kind: 'continue', send: { type: 'AuthenticationSASLContinue', data: '' } };
          }
          return initial(msg.data);
        }
        case 'awaiting-initial':
          if (msg.type !== 'SASLResponse') return malformed('expected SASLResponse');
          return initial(msg.data);
        case 'error':
        case 'discovery': {
          if (msg.type !== 'SASLResponse' || msg.data.length !== 1 || msg.data[0] !== 1) return malformed('client did not send a kvsep response');
          const discovery = state === 'discovery';
          state = 'finished';
          if (discovery) {
            return {
              kind: 'fail',
              reason: 'OAUTHBEARER discovery (no token sent)',
              error: new GatehouseError('28000', `OAuth bearer authentication failed for user "${request.user}"`, {
                severity: 'FATAL',
                hint: 'get a token from the identity provider named in the SASL exchange and sign in with it',
              }),
            };
          }
          return { kind: 'fail', reason: failure!.reason, error: failure!.error };
        }
        case 'finished':
          return malformed('message after the exchange ended');
      }
    },
  };
}

/**
 * SCRAM and OAUTHBEARER offered in one AuthenticationSASL: the client's choice of mechanism
 * in its SASLInitialResponse picks the flow that runs the rest of the exchange.
 */
export function withOAuthBearer(scram: AuthFlow, oauth: AuthFlow): AuthFlow {
  let chosen: AuthFlow | undefined;
  return {
    start() {
      const first = scram.start();
      if (first.type !== 'AuthenticationSASL') return first;
      return { type: 'AuthenticationSASL', mechanisms: [...first.mechanisms, OAUTHBEARER_MECHANISM] };
    },
    onMessage(msg: AuthResponse) {
      chosen ??= msg.type === 'SASLInitialResponse' && msg.mechanism === OAUTHBEARER_MECHANISM ? oauth : scram;
      return chosen.onMessage(msg);
    },
  };
}
