// Sign-in as a pluggable step (pg-gateway's AuthFlow): the connection's state machine
// drives a flow with the client's authentication messages and sends what the flow asks
// for; the flow alone knows the method (SCRAM-SHA-256 today; a token as cleartext password
// over TLS and SASL OAUTHBEARER next). A flow ends with the person's Identity, which the
// session is opened with: nothing is looked up again by the name the client typed.
import type { GatehouseError } from '../errors.ts';
import type { Attributes } from '../config/model.ts';
import type { BackendMessage, CleartextPassword, SASLInitialResponse, SASLResponse } from '../wire/messages.ts';

/**
 * How a person proved who they are (audited with the session): SCRAM against org.yaml's
 * verifier, a password in clear over TLS checked against that verifier (`password`: when
 * every name is asked for a password or token, token-flow.ts), or a token of the org's
 * identity provider as the cleartext password (over TLS) or through SASL OAUTHBEARER
 * (src/identity/token-flow.ts, oauthbearer-flow.ts).
 */
export type SignInMethod = 'scram' | 'password' | 'oidc-password' | 'oauthbearer';

/** Who signed in: their org's membership, as the org's rules (or, later, its identity provider) say. */
export interface Identity {
  org: string;
  email: string;
  role: 'admin' | 'member';
  groups: string[];
  attributes: Attributes;
  method: SignInMethod;
}

/** What the connection knows about the channel the client signs in over. */
export interface SignInChannel {
  /** True when the session runs over TLS: a flow that takes a secret in clear (a token as password) must refuse otherwise. */
  tls: boolean;
  /**
   * tls-server-end-point channel binding data (RFC 5929 section 4.1): the hash of the
   * certificate Gatehouse presented. Absent without TLS, or when the certificate's signature
   * hash cannot be determined: then SCRAM-SHA-256-PLUS is not offered.
   */
  tlsServerEndPoint?: Buffer;
  remoteAddress: string;
}

/** A sign-in attempt: the StartupMessage's user and database, and the channel. */
export interface SignInRequest {
  user: string;
  database: string;
  channel: SignInChannel;
}

/** What a flow sends the client: one of the Authentication requests (55.7), as data. */
export type AuthRequest = Extract<BackendMessage, { type: 'AuthenticationCleartextPassword' | 'AuthenticationSASL' | 'AuthenticationSASLContinue' }>;

/**
 * The client's answer. A 'p' message means PasswordMessage, SASLInitialResponse or
 * SASLResponse depending on the request it answers: the connection decodes it as the last
 * request asked, so a flow only ever sees typed messages.
 */
export type AuthResponse = CleartextPassword | SASLInitialResponse | SASLResponse;

export type AuthStep =
  /** Send this request and wait for the client's next answer. */
  | { kind: 'continue'; send: AuthRequest }
  /** Signed in. `final` is SASL's last word to the client (SASLFinal), sent before the session opens. */
  | { kind: 'done'; identity: Identity; final?: Extract<BackendMessage, { type: 'AuthenticationSASLFinal' }> }
  /** Refused: `error` goes to the client as FATAL; `reason` to the log and audit only (never a secret). */
  | { kind: 'fail'; error: GatehouseError; reason: string };

export interface AuthFlow {
  /** The first request (AuthenticationSASL with the mechanisms, or a password request). */
  start(): AuthRequest;
  /** One answer of the client's; may await (a token's keys). */
  onMessage(msg: AuthResponse): AuthStep | Promise<AuthStep>;
}
