// The few HTTP calls gatehouse login makes (discovery documents, the token and device
// endpoints), with a timeout and without following redirects: a login endpoint or a provider
// that redirects elsewhere is answered by someone else.
import { LoginError, networkCause } from './errors.ts';

export const HTTP_TIMEOUT_MS = 10_000;

export interface JsonAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function call(what: string, url: string, init: RequestInit): Promise<JsonAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  } catch (e) {
    throw new LoginError(
      `cannot reach ${what} at ${new URL(url).origin}: ${networkCause(e)}`,
      'check the address and your network, then run gatehouse login again',
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LoginError(
      `${what} at ${new URL(url).origin} answered HTTP ${res.status} with something that is not JSON`,
      'check the address: it must be the one your admin published',
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new LoginError(`${what} answered HTTP ${res.status} with unexpected JSON`);
  return { status: res.status, body: body as Record<string, unknown> };
}

export function getJson(what: string, url: string): Promise<JsonAnswer> {
  return call(what, url, { headers: { accept: 'application/json' } });
}

/** An OAuth endpoint's form POST (RFC 6749 section 4.1.3 and friends). */
export function postForm(what: string, url: string, form: Record<string, string | undefined>): Promise<JsonAnswer> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) params.set(k, v);
  return call(what, url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: params.toString(),
  });
}

/** An OAuth error answer (RFC 6749 5.2) as words: `invalid_grant: PKCE verification failed`. */
export function oauthError(body: Record<string, unknown>): { error: string; text: string } {
  const error = typeof body.error === 'string' ? body.error : 'unknown_error';
  const description = typeof body.error_description === 'string' ? body.error_description : undefined;
  return { error, text: description ? `${error}: ${description}` : error };
}
