// The authorization code flow with PKCE and a loopback redirect (RFC 8252, OAuth for native
// apps): a listener on 127.0.0.1 at a free port takes the one redirect back, the browser is
// opened with the system's opener (the URL is printed too, for a browser elsewhere), the
// state must match (a redirect this login did not ask for ends it), and the code is
// exchanged with the PKCE verifier, so a code seen by anyone else is worth nothing.
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LoginDocument } from './document.ts';
import { LoginError } from './errors.ts';
import { oauthError, postForm } from './http.ts';
import { newPkce, randomToken } from './pkce.ts';
import type { ProviderEndpoints } from './provider.ts';
import { acceptTokens, type SignedIn } from './tokens.ts';

export const CALLBACK_PATH = '/callback';

export interface BrowserFlowOptions {
  /** Opens the URL in a browser; undefined: print it only (--no-browser). */
  openBrowser?: (url: string) => void;
  print: (line: string) => void;
  /** How long to wait for the browser's redirect back. */
  timeoutMs: number;
}

/** The system's way to open a URL: never a shell, the URL is one argument. */
export function systemOpener(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => {}); // no opener here: the printed URL is the way
    child.unref();
  } catch {
    // The printed URL is the fallback.
  }
}

type Redirect = { code: string } | { error: LoginError };

export async function browserSignIn(doc: LoginDocument, endpoints: ProviderEndpoints, opts: BrowserFlowOptions): Promise<SignedIn> {
  const pkce = newPkce();
  const state = randomToken();
  const nonce = randomToken();
  let settle: (r: Redirect) => void = () => {};
  const redirected = new Promise<Redirect>((resolve) => {
    settle = resolve;
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) {
      res.writeHead(404).end();
      return;
    }
    const outcome = readRedirect(url.searchParams, state);
    const ok = 'code' in outcome;
    res
      .writeHead(ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(
        `<!doctype html><title>Gatehouse</title><p>${ok ? 'Signed in. You can close this tab and return to the terminal.' : `Sign-in failed: ${escapeHtml(outcome.error.message)}`}</p>`,
      );
    settle(outcome);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}${CALLBACK_PATH}`;
  try {
    const authorize = new URL(endpoints.authorization_endpoint);
    const params: Record<string, string | undefined> = {
      ...doc.authorization_params,
      response_type: 'code',
      client_id: doc.client_id,
      redirect_uri: redirectUri,
      scope: doc.scopes.join(' '),
      state,
      nonce,
      code_challenge: pkce.challenge,
      code_challenge_method: 'S256',
      resource: doc.resource,
    };
    for (const [k, v] of Object.entries(params)) if (v !== undefined) authorize.searchParams.set(k, v);
    opts.print(
      `Sign in to ${doc.org} with your identity provider in the browser${opts.openBrowser ? ' (opening it now)' : ''}. If it does not open, visit:\n\n  ${authorize.href}\n`,
    );
    opts.openBrowser?.(authorize.href);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Redirect>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            error: new LoginError(
              `no sign-in came back from the browser within ${Math.round(opts.timeoutMs / 1000)} s`,
              'run gatehouse login again; on a machine without a browser use gatehouse login --device',
            ),
          }),
        opts.timeoutMs,
      );
    });
    const outcome = await Promise.race([redirected, timedOut]);
    clearTimeout(timer);
    if ('error' in outcome) throw outcome.error;
    const { status, body } = await postForm("the identity provider's token endpoint", endpoints.token_endpoint, {
      grant_type: 'authorization_code',
      code: outcome.code,
      redirect_uri: redirectUri,
      client_id: doc.client_id,
      code_verifier: pkce.verifier,
      resource: doc.resource,
    });
    if (status !== 200) {
      const { text } = oauthError(body);
      throw new LoginError(
        `the identity provider refused the sign-in code (${text})`,
        'run gatehouse login again; if it persists, tell your org admin (the login client must be a public client with PKCE)',
      );
    }
    return await acceptTokens(body, doc, endpoints.jwks_uri, { nonce });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The redirect's query (RFC 6749 4.1.2): the state first, then an error or the code. */
export function readRedirect(query: URLSearchParams, state: string): Redirect {
  if (query.get('state') !== state) {
    return {
      error: new LoginError(
        'the browser came back with a sign-in this login did not start (state mismatch)',
        'run gatehouse login again, and finish the sign-in in the browser tab it opens',
      ),
    };
  }
  const error = query.get('error');
  if (error) {
    const description = query.get('error_description');
    const text = description ? `${error}: ${description}` : error;
    return {
      error:
        error === 'access_denied'
          ? new LoginError(
              `the sign-in was denied at the identity provider (${text})`,
              'run gatehouse login again and approve access; if your provider says you may not use this app, ask your org admin',
            )
          : new LoginError(
              `the identity provider refused the sign-in (${text})`,
              'tell your org admin: the login client may be misconfigured at the provider (redirect http://127.0.0.1/callback, any port)',
            ),
    };
  }
  const code = query.get('code');
  if (!code) return { error: new LoginError('the browser came back without a sign-in code') };
  return { code };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
