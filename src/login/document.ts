// What Gatehouse publishes for `gatehouse login` (GET /login/v1/orgs/<org> on the admin
// endpoint, unauthenticated): the org's provider and the public client to sign in with, and
// how to reach Gatehouse's PostgreSQL port. Nothing here is a secret: a provider's issuer and
// a public client's id are in every sign-in URL a browser shows. The admin endpoint writes it
// (src/admin/server.ts), the command line reads it (src/login/discover.ts): one schema.
import { z } from 'zod';
import type { Rules } from '../config/model.ts';

export const LOGIN_PATH = '/login/v1/orgs/';
/** Answered when exactly one org publishes a login: `gatehouse login https://host` without an org. */
export const DEFAULT_LOGIN_PATH = '/login/v1/default';

export const loginDocumentSchema = z.object({
  org: z.string().min(1),
  issuer: z.string().url(),
  client_id: z.string().min(1),
  scopes: z.array(z.string().min(1)).min(1),
  resource: z.string().optional(),
  authorization_params: z.record(z.string(), z.string()),
  /**
   * Which token signs in to Gatehouse: the ID token when the org's audience is the client id
   * (Google, Okta or Entra ID tokens for the app itself), else the access token for `audience`.
   */
  token: z.enum(['id_token', 'access_token']),
  audience: z.string().min(1),
  email_claim: z.string().min(1),
  postgres: z.object({
    port: z.number().int().min(1).max(65535),
    tls: z.enum(['required', 'optional', 'off']),
    token_sign_in: z.enum(['password', 'oauthbearer']),
  }),
});
export type LoginDocument = z.infer<typeof loginDocumentSchema>;

export interface WireFacts {
  port: number;
  tls: 'required' | 'optional' | 'off';
}

/** The document of an org that configured identity_provider.login; undefined for any other name (one answer: 404). */
export function loginDocument(rules: Rules, org: string, wire: WireFacts): LoginDocument | undefined {
  const provider = rules.orgs.get(org)?.identity_provider;
  const login = provider?.login;
  if (!provider || !login) return undefined;
  return {
    org,
    issuer: provider.issuer,
    client_id: login.client_id,
    scopes: login.scopes,
    ...(login.resource ? { resource: login.resource } : {}),
    authorization_params: Object.fromEntries(Object.entries(login.authorization_params).filter((e): e is [string, string] => e[1] !== undefined)),
    token: provider.audience === login.client_id ? 'id_token' : 'access_token',
    audience: provider.audience,
    email_claim: provider.email_claim,
    postgres: { port: wire.port, tls: wire.tls, token_sign_in: rules.server.token_sign_in },
  };
}

/** The orgs that publish a login (for /login/v1/default: answered only when there is exactly one). */
export function publishingOrgs(rules: Rules): string[] {
  return [...rules.orgs.values()].filter((o) => o.identity_provider?.login).map((o) => o.name);
}
