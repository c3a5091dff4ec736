// gatehouse login: find the org's identity provider through Gatehouse's admin endpoint, sign
// the person in (a refresh token saved from an earlier sign-in first; else the browser with
// PKCE, or the device flow), and write the token where libpq finds it, so plain psql (and any
// libpq program) signs in with `user=<email> sslmode=require` and no token in sight.
//
//   gatehouse login https://gatehouse.example.com/acme   the admin endpoint's URL and the org
//   gatehouse login acme [--server URL]                   the org; the server from --server,
//                                                         GATEHOUSE_SERVER, or an earlier login
//   gatehouse login --refresh [TARGET]                    refresh saved sign-ins, never a browser
import { homedir } from 'node:os';
import { isProviderUrl } from '../config/schema.ts';
import { browserSignIn } from './browser-flow.ts';
import { deviceSignIn } from './device-flow.ts';
import { DEFAULT_LOGIN_PATH, LOGIN_PATH, type LoginDocument, loginDocumentSchema } from './document.ts';
import { LoginError } from './errors.ts';
import { getJson, oauthError, postForm } from './http.ts';
import { pgpassPath, writePgpassEntry } from './pgpass.ts';
import { type ProviderEndpoints, providerEndpoints } from './provider.ts';
import { configDir, LoginStore, loginKey } from './store.ts';
import { acceptTokens, type SignedIn } from './tokens.ts';

export interface LoginOptions {
  /** A URL (`https://host[:port][/org]`) or an org name. */
  target?: string;
  server?: string;
  device?: boolean;
  /** Print the URL only (a browser on another machine, or a test). */
  noBrowser?: boolean;
  /** Ignore a saved refresh token: sign in again interactively (another account, say). */
  fresh?: boolean;
  /** The host and port the pgpass line is for (the ones psql will be given); default: the server URL's host and Gatehouse's port. */
  pgHost?: string;
  pgPort?: number;
  timeoutMs?: number;
}

export interface LoginIo {
  env: NodeJS.ProcessEnv;
  home?: string;
  /** Progress and instructions (stderr in the CLI). */
  print: (text: string) => void;
  openBrowser?: (url: string) => void;
}

export interface LoginResult {
  org: string;
  email: string;
  host: string;
  port: number;
  pgpass: string;
  expiresAt: number;
  how: 'browser' | 'device' | 'refresh';
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export async function login(opts: LoginOptions, io: LoginIo): Promise<LoginResult> {
  const home = io.home ?? homedir();
  const store = new LoginStore(configDir(io.env, home));
  const { server, org } = resolveTarget(opts, io.env, store);
  const doc = await fetchLoginDocument(server, org);
  if (doc.postgres.tls === 'off')
    throw new LoginError(
      `Gatehouse at ${server} serves no TLS, and accepts identity provider tokens over TLS only`,
      'ask your Gatehouse admin to configure server.tls',
    );
  if (doc.postgres.token_sign_in !== 'password') {
    // There every client is offered SCRAM and OAUTHBEARER, never asked for a password: a token
    // from the password file would feed a SCRAM proof and fail.
    io.print(
      `note: this Gatehouse signs tokens in with OAUTHBEARER only (server.token_sign_in: oauthbearer), so psql will not sign in with the token written to the password file; PostgreSQL 18's libpq can use OAUTHBEARER itself (oauth_issuer=${doc.issuer} oauth_client_id=${doc.client_id}).\n`,
    );
  }
  const host = opts.pgHost ?? new URL(server).hostname.replace(/^\[|\]$/g, '');
  const port = opts.pgPort ?? doc.postgres.port;
  const key = loginKey(server, doc.org);
  const endpoints = await providerEndpoints(doc.issuer);

  const saved = opts.fresh ? undefined : store.find(key);
  if (saved?.refresh_token && sameProvider(saved.document, doc)) {
    try {
      const signedIn = await refreshTokens(saved.document, saved.refresh_token, endpoints.token_endpoint, endpoints.jwks_uri);
      return finish(store, { server, doc, endpoints, host, port, pgpass: pgpassPath(io.env, home), signedIn, previousRefresh: saved.refresh_token }, 'refresh');
    } catch (e) {
      if (!(e instanceof RefreshRejected)) throw e;
      io.print(`Your saved sign-in to ${doc.org} is no longer accepted (${e.message}); signing in again.\n`);
    }
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signedIn = opts.device
    ? await deviceSignIn(doc, endpoints, { print: io.print, timeoutMs })
    : await browserSignIn(doc, endpoints, { print: io.print, openBrowser: opts.noBrowser ? undefined : io.openBrowser, timeoutMs });
  return finish(store, { server, doc, endpoints, host, port, pgpass: pgpassPath(io.env, home), signedIn }, opts.device ? 'device' : 'browser');
}

/** `gatehouse login --refresh [TARGET]`: every saved sign-in (or the target's), with its refresh token; never a browser. */
export async function refreshSaved(
  opts: Pick<LoginOptions, 'target' | 'server'>,
  io: LoginIo,
): Promise<{ refreshed: LoginResult[]; failed: { org: string; server: string; error: LoginError }[] }> {
  const home = io.home ?? homedir();
  const store = new LoginStore(configDir(io.env, home));
  let entries = store.all();
  if (opts.target) {
    const { server, org } = resolveTarget(opts, io.env, store);
    entries = entries.filter((e) => e.server === server && (org === undefined || e.document.org === org));
  }
  if (entries.length === 0) throw new LoginError(`no saved sign-in${opts.target ? ` for ${opts.target}` : ''} to refresh`, 'run gatehouse login URL/ORG first');
  const refreshed: LoginResult[] = [];
  const failed: { org: string; server: string; error: LoginError }[] = [];
  for (const entry of entries) {
    try {
      if (!entry.refresh_token)
        throw new LoginError(
          'the identity provider gave no refresh token at sign-in',
          'ask your org admin to add offline_access to identity_provider.login.scopes; until then run gatehouse login again',
        );
      const signedIn = await refreshTokens(entry.document, entry.refresh_token, entry.token_endpoint, entry.jwks_uri);
      refreshed.push(
        finish(
          store,
          {
            server: entry.server,
            doc: entry.document,
            endpoints: { token_endpoint: entry.token_endpoint, jwks_uri: entry.jwks_uri },
            host: entry.pg_host,
            port: entry.pg_port,
            pgpass: entry.pgpass,
            signedIn,
            previousRefresh: entry.refresh_token,
          },
          'refresh',
        ),
      );
    } catch (e) {
      if (!(e instanceof LoginError)) throw e;
      failed.push({
        org: entry.document.org,
        server: entry.server,
        error:
          e instanceof RefreshRejected
            ? new LoginError(
                `the identity provider no longer accepts the saved sign-in (${e.message})`,
                `run gatehouse login ${entry.server}/${entry.document.org}`,
              )
            : e,
      });
    }
  }
  return { refreshed, failed };
}

/** The refresh token grant was refused (invalid_grant: revoked, expired, rotated away): an interactive sign-in is the way on. */
class RefreshRejected extends LoginError {}

async function refreshTokens(doc: LoginDocument, refreshToken: string, tokenEndpoint: string, jwksUri: string): Promise<SignedIn> {
  const { status, body } = await postForm("the identity provider's token endpoint", tokenEndpoint, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: doc.client_id,
    resource: doc.resource,
  });
  if (status !== 200) {
    const { error, text } = oauthError(body);
    if (error === 'invalid_grant' || error === 'invalid_token' || error === 'unauthorized_client') throw new RefreshRejected(text);
    throw new LoginError(`the identity provider refused to refresh the sign-in (${text})`, 'try again later, or run gatehouse login again');
  }
  return acceptTokens(body, doc, jwksUri);
}

interface Finished {
  server: string;
  doc: LoginDocument;
  endpoints: Pick<ProviderEndpoints, 'token_endpoint' | 'jwks_uri'>;
  host: string;
  port: number;
  pgpass: string;
  signedIn: SignedIn;
  previousRefresh?: string;
}

function finish(store: LoginStore, f: Finished, how: LoginResult['how']): LoginResult {
  const pgpass = writePgpassEntry(f.pgpass, { host: f.host, port: f.port, user: f.signedIn.email, password: f.signedIn.token });
  const refresh = f.signedIn.refreshToken ?? f.previousRefresh;
  store.save({
    key: loginKey(f.server, f.doc.org),
    server: f.server,
    document: f.doc,
    token_endpoint: f.endpoints.token_endpoint,
    jwks_uri: f.endpoints.jwks_uri,
    pg_host: f.host,
    pg_port: f.port,
    pgpass,
    email: f.signedIn.email,
    expires_at: f.signedIn.expiresAt,
    ...(refresh ? { refresh_token: refresh } : {}),
  });
  return { org: f.doc.org, email: f.signedIn.email, host: f.host, port: f.port, pgpass, expiresAt: f.signedIn.expiresAt, how };
}

/** A saved sign-in is reused only with the same provider and client the org publishes now. */
function sameProvider(a: LoginDocument, b: LoginDocument): boolean {
  return a.issuer === b.issuer && a.client_id === b.client_id && a.audience === b.audience && a.token === b.token;
}

/** The Gatehouse URL (origin only) and the org (undefined: the one org the server publishes). */
export function resolveTarget(opts: Pick<LoginOptions, 'target' | 'server'>, env: NodeJS.ProcessEnv, store: LoginStore): { server: string; org?: string } {
  const target = opts.target;
  if (target && /^https?:\/\//i.test(target)) {
    const url = new URL(target);
    const segments = url.pathname.split('/').filter(Boolean);
    if (segments.length > 1) throw new LoginError(`${target}: expected https://HOST[:PORT][/ORG]`);
    return { server: checkServer(url.origin), org: segments[0] };
  }
  const org = target;
  const server = opts.server ?? env.GATEHOUSE_SERVER ?? (org ? store.all().find((l) => l.document.org === org)?.server : undefined);
  if (!server)
    throw new LoginError(
      `which Gatehouse? ${org ? `no server is known for org ${org}` : 'no server given'}`,
      'gatehouse login https://GATEHOUSE-HOST[:PORT]/ORG (the address your admin gave you), or --server URL, or GATEHOUSE_SERVER',
    );
  return { server: checkServer(new URL(server).origin), org };
}

function checkServer(origin: string): string {
  // The document names the provider the person types their password into: it must come from
  // Gatehouse itself, not from whoever sits on the network path.
  if (!isProviderUrl(origin))
    throw new LoginError(
      `${origin}: gatehouse login asks Gatehouse over https only (http only on this machine)`,
      "use the https address your admin published for Gatehouse's login endpoint",
    );
  return origin;
}

async function fetchLoginDocument(server: string, org: string | undefined): Promise<LoginDocument> {
  const url = `${server}${org ? `${LOGIN_PATH}${encodeURIComponent(org)}` : DEFAULT_LOGIN_PATH}`;
  const { status, body } = await getJson('Gatehouse', url);
  if (status === 404) {
    throw new LoginError(
      org ? `Gatehouse at ${server} has no login for org ${org}` : `Gatehouse at ${server} serves several orgs (or none with a login)`,
      org ? 'check the org name; an org admin publishes it with identity_provider.login in org.yaml' : `name your org: gatehouse login ${server}/ORG`,
    );
  }
  if (status !== 200) throw new LoginError(`Gatehouse at ${server} answered HTTP ${status}`, 'try again later, or tell your Gatehouse admin');
  const parsed = loginDocumentSchema.safeParse(body);
  if (!parsed.success)
    throw new LoginError(`Gatehouse at ${server} answered with a login document this gatehouse cannot read`, 'update gatehouse, or tell your Gatehouse admin');
  return parsed.data;
}
