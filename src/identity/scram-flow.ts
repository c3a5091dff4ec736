// SCRAM-SHA-256 (and SCRAM-SHA-256-PLUS over TLS) as a sign-in flow. Known and unknown
// users go through the same exchange: an unknown user's mock verifier has the known
// verifiers' shape, and the failure after a wrong proof is the same words, so neither the
// messages nor their timing tell who exists.
import { GatehouseError } from '../errors.ts';
import type { AuthFlow, AuthRequest, AuthResponse, AuthStep, Identity, SignInRequest } from './flow.ts';
import { SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM, type ScramServerFirst, type ScramVerifier, serverFirstMessage, verifyClientFinal } from './scram.ts';

/** What the directory holds for a name: the verifier to run the exchange with, and who signs in when the proof verifies. */
export interface ScramCredentials {
  verifier: ScramVerifier;
  /** Undefined for an unknown user (or one without a verifier): the mock exchange never succeeds. */
  identity: Omit<Identity, 'method'> | undefined;
}

export function scramFlow(request: SignInRequest, credentials: ScramCredentials): AuthFlow {
  const { verifier, identity } = credentials;
  // Offer -PLUS only where the binding data is known (PostgreSQL offers it over TLS only):
  // libpq then binds the exchange to the certificate it saw, so a man in the middle with
  // another certificate cannot relay the proof.
  const endPoint = request.channel.tls ? request.channel.tlsServerEndPoint : undefined;
  const mechanisms = endPoint ? [SCRAM_PLUS_MECHANISM, SCRAM_MECHANISM] : [SCRAM_MECHANISM];
  let first: ScramServerFirst | undefined;
  const malformed = (reason: string, message: string): AuthStep => ({
    kind: 'fail',
    reason,
    error: new GatehouseError('08P01', message, { severity: 'FATAL' }),
  });

  return {
    start: (): AuthRequest => ({ type: 'AuthenticationSASL', mechanisms }),
    onMessage(msg: AuthResponse): AuthStep {
      if (!first) {
        if (msg.type !== 'SASLInitialResponse') return malformed('malformed SASLInitialResponse', 'malformed SASL message: expected SASLInitialResponse');
        const mechanism = msg.mechanism;
        if (mechanism !== SCRAM_MECHANISM && !(mechanism === SCRAM_PLUS_MECHANISM && endPoint)) {
          return malformed('unsupported SASL mechanism', 'client selected an invalid SASL authentication mechanism');
        }
        if (!msg.data) return malformed('malformed SCRAM client-first-message', 'malformed SCRAM message');
        const out = serverFirstMessage(msg.data.toString('utf8'), verifier, { mechanism, tlsServerEndPoint: endPoint });
        if ('error' in out) return malformed('malformed SCRAM client-first-message', out.error);
        first = out;
        return { kind: 'continue', send: { type: 'AuthenticationSASLContinue', data: out.serverFirst } };
      }
      if (msg.type !== 'SASLResponse') return malformed('unexpected message', 'malformed SASL message: expected SASLResponse');
      const serverFinal = verifyClientFinal(msg.data.toString('utf8'), first, verifier);
      if (serverFinal === undefined || !identity) {
        // One message for both: the reply must not tell who exists.
        return {
          kind: 'fail',
          reason: identity ? 'wrong password' : 'unknown user',
          error: new GatehouseError('28P01', `password authentication failed for user "${request.user}"`, { severity: 'FATAL' }),
        };
      }
      return { kind: 'done', identity: { ...identity, method: 'scram' }, final: { type: 'AuthenticationSASLFinal', data: serverFinal } };
    },
  };
}
