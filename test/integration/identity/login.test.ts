// `gatehouse login` end to end (issue 14): two real OpenID Connect providers in this process
// (oidc-provider: acme's, whose ID token Gatehouse takes, and globex's, whose JWT access token
// for a resource it takes), a Gatehouse serving TLS with the demo's embedded warehouses and
// publishing both orgs' login on its admin endpoint, a scripted person at the browser, and the
// real clients afterwards: psql and node-postgres with nothing but the password file the
// login wrote. Then the refresh (re-run, and --refresh), the device flow, and the bad cases:
// a redirect with another state, a code redeemed without its PKCE verifier, denied consent,
// a provider or a Gatehouse that is down.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoginDocument, loginDocument } from '../../../src/login/document.ts';
import { LoginError } from '../../../src/login/errors.ts';
import { type LoginIo, login, refreshSaved } from '../../../src/login/login.ts';
import { type RunningGatehouse, serve } from '../../../src/serve.ts';
import { CLI_CLIENT, type LoginIdp, startLoginIdp } from '../../helpers/oidc-login-provider.ts';
import { scriptedBrowser } from '../../helpers/scripted-browser.ts';
import { makeTestPki, type TestPki, tlsRulesDir } from '../../helpers/tls.ts';
import { deadPort } from '../../helpers/servers.ts';
import { loadRules } from '../../../src/config/load.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const BIN = join(REPO, 'bin/gatehouse.js');
const IVAN = 'ivan@acme.example';
const ZOE = 'zoe@acme.example';
const HANK = 'hank@globex.example';
const GLOBEX_RESOURCE = 'urn:gatehouse:globex';

let pki: TestPki;
let acme: LoginIdp;
let globex: LoginIdp;
let gh: RunningGatehouse;
let rulesDir: string;
let adminUrl: string;

function writeRules(): string {
  const dir = tlsRulesDir(pki, 'optional');
  const serverYaml = join(dir, 'gatehouse.yaml');
  writeFileSync(
    serverYaml,
    `${readFileSync(serverYaml, 'utf8').trimEnd()}\n  sign_in_throttle:\n    max_failures_per_user: 10000\n    max_failures_per_address: 10000\n`,
  );
  const acmeOrg = join(dir, 'acme/org.yaml');
  writeFileSync(
    acmeOrg,
    `${readFileSync(acmeOrg, 'utf8').trimEnd()}
  - email: ${IVAN}
    attributes: { region: APAC }
identity_provider:
  issuer: ${acme.issuer}
  audience: ${CLI_CLIENT}
  groups_claim: groups
  attribute_claims: { region: region }
  default_membership: allow
  login:
    client_id: ${CLI_CLIENT}
    scopes: [openid, email, groups, offline_access]
    authorization_params: { prompt: consent }
`,
  );
  const globexOrg = join(dir, 'globex/org.yaml');
  writeFileSync(
    globexOrg,
    `${readFileSync(globexOrg, 'utf8').trimEnd()}
identity_provider:
  issuer: ${globex.issuer}
  audience: ${GLOBEX_RESOURCE}
  default_membership: deny
  login:
    client_id: ${CLI_CLIENT}
    resource: ${GLOBEX_RESOURCE}
    authorization_params: { prompt: consent }
`,
  );
  return dir;
}

beforeAll(async () => {
  pki = await makeTestPki();
  acme = await startLoginIdp(
    {
      ivan: { email: IVAN, claims: { groups: ['sales-emea'], region: 'EMEA' } },
      zoe: { email: ZOE, claims: { groups: ['sales-emea'], region: ['AMER'] } },
    },
    { tokenTtl: 300 },
  );
  globex = await startLoginIdp({ hank: { email: HANK } }, { resource: GLOBEX_RESOURCE });
  rulesDir = writeRules();
  gh = await serve({ rulesDir, host: '127.0.0.1', port: 0, adminPort: 0, logger: pino({ level: 'warn' }) });
  adminUrl = `http://127.0.0.1:${gh.adminPort}`;
}, 180_000);

afterAll(async () => {
  await gh?.close();
  await acme?.close();
  await globex?.close();
});

/** A person's machine: a home directory with its own ~/.pgpass and config dir. */
function newHome(): { home: string; env: NodeJS.ProcessEnv } {
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-login-home-'));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home };
  return { home, env };
}

function psqlWithPgpass(home: string, user: string, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      'psql',
      [
        '-X',
        '-q',
        '-A',
        '-t',
        '-w',
        '-v',
        'ON_ERROR_STOP=1',
        `host=127.0.0.1 port=${gh.port} dbname=warehouse user=${user} sslmode=require connect_timeout=10`,
        '-c',
        sql,
      ],
      // No PGPASSWORD, nothing but HOME: the token comes from ~/.pgpass, as libpq finds it.
      { env: { PATH: process.env.PATH, HOME: home }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** node-postgres without a password: it reads the password file (the pgpass package) as libpq does. */
async function pgWithPgpass(pgpassFile: string, user: string, sql: string): Promise<string[]> {
  const saved = process.env.PGPASSFILE;
  process.env.PGPASSFILE = pgpassFile;
  const c = new pg.Client({ host: '127.0.0.1', port: gh.port, user, database: 'warehouse', ssl: { ca: readFileSync(pki.caCert) } });
  try {
    await c.connect();
    const r = await c.query(sql);
    return r.rows.map((row) => String(Object.values(row)[0]));
  } finally {
    await c.end().catch(() => {});
    if (saved === undefined) delete process.env.PGPASSFILE;
    else process.env.PGPASSFILE = saved;
  }
}

/** The CLI as a person runs it; resolves with the sign-in URL it printed, and its exit later. */
function runLoginCli(
  args: string[],
  env: NodeJS.ProcessEnv,
): { url: Promise<string>; exit: Promise<{ code: number; stdout: string; stderr: string }>; child: ChildProcess } {
  const child = spawn(process.execPath, [BIN, 'login', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let gotUrl: (u: string) => void = () => {};
  const url = new Promise<string>((r) => {
    gotUrl = r;
  });
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
    const m = /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)$/m.exec(stderr);
    if (m) gotUrl(m[1]);
  });
  const exit = new Promise<{ code: number; stdout: string; stderr: string }>((r) => child.on('close', (code) => r({ code: code ?? 1, stdout, stderr })));
  void exit.then(({ stderr: e }) => gotUrl(`no URL printed: ${e}`));
  return { url, exit, child };
}

const pgpassLine = (file: string, user: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`127.0.0.1:${gh.port}:*:${user}:`));
const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()) as Record<string, unknown>;

describe('the admin endpoint publishes what gatehouse login needs', () => {
  it('GET /login/v1/orgs/acme: the issuer, the public client, which token, and the PostgreSQL port; an unknown org and an org without login get the same 404', async () => {
    const res = await fetch(`${adminUrl}/login/v1/orgs/acme`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      org: 'acme',
      issuer: acme.issuer,
      client_id: CLI_CLIENT,
      scopes: ['openid', 'email', 'groups', 'offline_access'],
      authorization_params: { prompt: 'consent' },
      token: 'id_token',
      audience: CLI_CLIENT,
      email_claim: 'email',
      postgres: { port: gh.port, tls: 'optional', token_sign_in: 'password' },
    });
    const globexDoc = (await (await fetch(`${adminUrl}/login/v1/orgs/globex`)).json()) as LoginDocument;
    expect(globexDoc).toMatchObject({ token: 'access_token', resource: GLOBEX_RESOURCE, audience: GLOBEX_RESOURCE });
    const unknown = await fetch(`${adminUrl}/login/v1/orgs/initech`);
    // The demo rules' orgs without a provider answer the same as a name that is no org.
    const rules = loadRules(rulesDir);
    rules.orgs.get('acme')!.identity_provider!.login = undefined;
    expect(loginDocument(rules, 'acme', { port: 1, tls: 'optional' })).toBeUndefined();
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'no gatehouse login for that org here', hint: expect.stringContaining('identity_provider.login') });
    // Two orgs publish: no default.
    expect((await fetch(`${adminUrl}/login/v1/default`)).status).toBe(404);
  });
});

describe('gatehouse login with the browser (authorization code + PKCE, loopback redirect)', () => {
  const person = newHome();
  const pgpass = join(person.home, '.pgpass');

  it('the CLI opens the browser with the system opener (and prints the URL), the person signs in and consents, and the token lands in ~/.pgpass (0600) beside the lines already there', async () => {
    const other = 'db.example.com:5432:*:someone:their\\:password';
    writeFileSync(pgpass, `# my databases\n${other}\n127.0.0.1:${gh.port}:*:${IVAN}:stale-token\n127.0.0.1:${gh.port}:otherdb:${IVAN}:kept\n`, { mode: 0o600 });
    // The system opener (xdg-open here) is a stand-in that records the URL it was asked to open.
    const bin = join(person.home, 'bin');
    mkdirSync(bin);
    const opened = join(person.home, 'opened-url');
    writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${opened}'\n`, { mode: 0o755 });
    const run = runLoginCli([`${adminUrl}/acme`], { ...person.env, PATH: `${bin}:${process.env.PATH}` });
    const url = await run.url;
    await waitFor(() => (existsSync(opened) && readFileSync(opened, 'utf8') === url ? true : undefined));
    expect(url).toMatch(/code_challenge_method=S256/);
    expect(new URL(url).searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    const browser = await scriptedBrowser(url, { login: 'ivan' });
    expect(browser.status).toBe(200);
    expect(browser.text).toMatch(/Signed in/);
    const out = await run.exit;
    expect(out.stderr).not.toMatch(/error/i);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`Signed in to acme as ${IVAN}; the token is valid until .* in ${pgpass} for 127\\.0\\.0\\.1:${gh.port}`));
    expect(out.stdout).toContain(`psql "host=127.0.0.1 port=${gh.port} dbname=CONNECTION user=${IVAN} sslmode=require"`);

    expect(statSync(pgpass).mode & 0o777).toBe(0o600);
    const lines = readFileSync(pgpass, 'utf8').split('\n');
    expect(lines.slice(0, 2)).toEqual(['# my databases', other]);
    expect(lines[3]).toBe(`127.0.0.1:${gh.port}:otherdb:${IVAN}:kept`);
    const token = pgpassLine(pgpass, IVAN)!.split(':').slice(4).join(':');
    expect(claims(token)).toMatchObject({ iss: acme.issuer, aud: CLI_CLIENT, email: IVAN });
    expect(lines.filter((l) => l.includes(':*:ivan@')).length).toBe(1);
    // The refresh token is kept in a file only the person can read, never printed.
    const saved = join(person.home, '.config/gatehouse/logins.json');
    expect(statSync(saved).mode & 0o777).toBe(0o600);
    expect(statSync(join(person.home, '.config/gatehouse')).mode & 0o777).toBe(0o700);
    const refresh = JSON.parse(readFileSync(saved, 'utf8'))[0].refresh_token as string;
    expect(refresh.length).toBeGreaterThan(10);
    expect(out.stdout + out.stderr).not.toContain(refresh);
    expect(out.stdout + out.stderr).not.toContain(token.split('.')[2]);
  }, 60_000);

  it("plain psql signs in with the pgpass entry (no PGPASSWORD): the token as the password over TLS, governed as ivan (org.yaml's region)", async () => {
    const r = await psqlWithPgpass(person.home, IVAN, 'SELECT DISTINCT region FROM orders ORDER BY 1');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('APAC');
  });

  it('node-postgres with no password reads the same file and signs in', async () => {
    expect(await pgWithPgpass(pgpass, IVAN, 'SELECT DISTINCT region FROM orders ORDER BY 1')).toEqual(['APAC']);
  });

  it('running gatehouse login again refreshes with the saved refresh token: no browser, a new token in the same line', async () => {
    const before = pgpassLine(pgpass, IVAN)!;
    await new Promise((r) => setTimeout(r, 1100)); // a new iat
    const grants = acme.grants.length;
    const run = runLoginCli(['acme', '--server', adminUrl, '--no-browser'], person.env);
    const out = await run.exit;
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/\(refreshed\)/);
    expect(out.stderr).not.toMatch(/\/auth\?/); // no sign-in URL: no browser needed
    expect(acme.grants.slice(grants)).toEqual(['refresh_token']);
    const after = pgpassLine(pgpass, IVAN)!;
    expect(after).not.toBe(before);
    expect(Number(claims(after.split(':')[4]).exp)).toBeGreaterThan(Number(claims(before.split(':')[4]).exp));
    expect((await psqlWithPgpass(person.home, IVAN, 'SELECT DISTINCT region FROM orders ORDER BY 1')).stdout.trim()).toBe('APAC');
  }, 60_000);

  it('gatehouse login --refresh before expiry (what cron runs): a fresh token for every saved sign-in, and psql keeps working', async () => {
    const before = pgpassLine(pgpass, IVAN)!;
    const exp = Number(claims(before.split(':')[4]).exp);
    expect(exp * 1000 - Date.now()).toBeLessThan(300_000); // the provider's 5 minute tokens: still valid, due for a refresh
    await new Promise((r) => setTimeout(r, 1100));
    const run = runLoginCli(['--refresh'], person.env);
    const out = await run.exit;
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`Signed in to acme as ${IVAN} \\(refreshed\\)`));
    const after = pgpassLine(pgpass, IVAN)!;
    expect(Number(claims(after.split(':')[4]).exp)).toBeGreaterThan(exp);
    expect((await psqlWithPgpass(person.home, IVAN, 'SELECT DISTINCT region FROM orders ORDER BY 1')).stdout.trim()).toBe('APAC');
  }, 60_000);

  it('a saved refresh token the provider no longer accepts: --refresh fails naming the command to run, and a re-run signs in with the browser again', async () => {
    const saved = join(person.home, '.config/gatehouse/logins.json');
    const entries = JSON.parse(readFileSync(saved, 'utf8'));
    entries[0].refresh_token = 'revoked-or-expired';
    writeFileSync(saved, JSON.stringify(entries), { mode: 0o600 });
    const out = await runLoginCli(['--refresh'], person.env).exit;
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('the identity provider no longer accepts the saved sign-in (invalid_grant');
    expect(out.stderr).toContain(`hint: run gatehouse login ${adminUrl}/acme`);
    const run = runLoginCli([`${adminUrl}/acme`, '--no-browser'], person.env);
    await scriptedBrowser(await run.url, { login: 'ivan' });
    const again = await run.exit;
    expect(again.stderr).toMatch(/no longer accepted .*signing in again/);
    expect(again.code).toBe(0);
  }, 60_000);

  it('globex takes the access token for its resource (RFC 8707): a person listed in globex signs in through pgpass, org.yaml decides the role', async () => {
    const hank = newHome();
    const io: LoginIo = { env: hank.env, home: hank.home, print: () => {} };
    const printed: string[] = [];
    const done = login({ target: `${adminUrl}/globex`, noBrowser: true, timeoutMs: 30_000 }, { ...io, print: (t) => printed.push(t) });
    await waitFor(() => printed.join('').match(/http:\/\/\S+\/auth\?\S+/)?.[0]).then((u) => scriptedBrowser(u, { login: 'hank' }));
    const r = await done;
    expect(r).toMatchObject({ org: 'globex', email: HANK, host: '127.0.0.1', port: gh.port, how: 'browser' });
    const token = pgpassLine(join(hank.home, '.pgpass'), HANK)!.split(':')[4];
    expect(claims(token)).toMatchObject({ iss: globex.issuer, aud: GLOBEX_RESOURCE, email: HANK });
    const count = await pgWithPgpass(join(hank.home, '.pgpass'), HANK, 'SELECT count(*) FROM orders');
    expect(Number(count[0])).toBeGreaterThan(0);
  }, 60_000);
});

async function waitFor<T>(probe: () => T | undefined, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('gatehouse login --device (RFC 8628)', () => {
  it('prints the verification URL and code; the person approves on another device; the token lands in PGPASSFILE; psql and node-postgres sign in', async () => {
    const zoe = newHome();
    const pgpassFile = join(zoe.home, 'custom', 'pgpass');
    const printed: string[] = [];
    const done = login(
      { target: `${adminUrl}/acme`, device: true, timeoutMs: 60_000 },
      { env: { ...zoe.env, PGPASSFILE: pgpassFile }, home: zoe.home, print: (t) => printed.push(t) },
    );
    const verify = await waitFor(() => printed.join('').match(/open (http:\/\/\S+) in a browser/)?.[1]);
    const code = printed.join('').match(/The code is (\S+);/)?.[1];
    expect(new URL(verify).searchParams.get('user_code')).toBe(code);
    await scriptedBrowser(verify, { login: 'zoe' });
    const r = await done;
    expect(r).toMatchObject({ org: 'acme', email: ZOE, how: 'device', pgpass: pgpassFile });
    expect(statSync(pgpassFile).mode & 0o777).toBe(0o600);
    expect(acme.grants).toContain('urn:ietf:params:oauth:grant-type:device_code');
    // zoe exists only at acme's provider: acme's default membership, her claim's region.
    expect(await pgWithPgpass(pgpassFile, ZOE, 'SELECT DISTINCT region FROM orders ORDER BY 1')).toEqual(['AMER']);
    const r2 = await new Promise<string>((done2) =>
      execFile(
        'psql',
        ['-X', '-A', '-t', '-w', `host=127.0.0.1 port=${gh.port} dbname=warehouse user=${ZOE} sslmode=require`, '-c', 'SELECT DISTINCT region FROM orders'],
        { env: { PATH: process.env.PATH, HOME: zoe.home, PGPASSFILE: pgpassFile } },
        (e, out, err) => done2(e ? err : out),
      ),
    );
    expect(r2.trim()).toBe('AMER');
  }, 90_000);

  it('denied on the other device: a clear error', async () => {
    const h = newHome();
    const printed: string[] = [];
    const done = login({ target: `${adminUrl}/acme`, device: true, timeoutMs: 60_000 }, { env: h.env, home: h.home, print: (t) => printed.push(t) }).catch(
      (e) => e,
    );
    const verify = await waitFor(() => printed.join('').match(/open (http:\/\/\S+) in a browser/)?.[1]);
    await scriptedBrowser(verify, { login: 'zoe', deny: true });
    const e = await done;
    expect(e).toBeInstanceOf(LoginError);
    expect(e.message).toMatch(/^the sign-in was denied at the identity provider \(access_denied/);
    expect(e.hint).toMatch(/gatehouse login --device again/);
  }, 90_000);
});

describe('bad cases give clear errors', () => {
  /** An in-process login with the URL it printed. */
  function start(target: string, h = newHome()) {
    const printed: string[] = [];
    const done = login({ target, noBrowser: true, timeoutMs: 30_000 }, { env: h.env, home: h.home, print: (t) => printed.push(t) }).then(
      (r) => ({ r }),
      (e: LoginError) => ({ e }),
    );
    const url = waitFor(() => printed.join('').match(/http:\/\/\S+\/auth\?\S+/)?.[0]);
    return { done, url, home: h };
  }

  it('a redirect back with another state (a sign-in this login did not start) ends the login', async () => {
    const { done, url } = start(`${adminUrl}/acme`);
    const auth = new URL(await url);
    const callback = new URL(auth.searchParams.get('redirect_uri')!);
    callback.searchParams.set('code', 'attacker-code');
    callback.searchParams.set('state', 'not-this-login');
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/state mismatch/);
    const out = await done;
    expect('e' in out && out.e.message).toBe('the browser came back with a sign-in this login did not start (state mismatch)');
  });

  it('a code intercepted on its way is worth nothing without the PKCE verifier (the provider refuses it); the login itself still completes', async () => {
    const { done, url } = start(`${adminUrl}/acme`);
    const auth = new URL(await url);
    const redirectUri = auth.searchParams.get('redirect_uri')!;
    const intercepted = await scriptedBrowser(auth.href, { login: 'ivan', stopAtLoopback: redirectUri });
    const code = new URL(intercepted.url).searchParams.get('code')!;
    expect(code).toBeTruthy();
    const discovery = (await (await fetch(`${acme.issuer}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
    for (const verifier of ['wrong-verifier-0123456789-0123456789-0123456789', undefined]) {
      const res = await fetch(discovery.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          client_id: CLI_CLIENT,
          ...(verifier ? { code_verifier: verifier } : {}),
        }).toString(),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    }
    // The real redirect reaches gatehouse login, whose verifier the provider accepts.
    await fetch(intercepted.url);
    const out = await done;
    expect('r' in out && out.r.email).toBe(IVAN);
  });

  it("gatehouse login's own exchange reaching the provider with a wrong PKCE verifier: refused by the provider, and the login says the code was refused", async () => {
    const { done, url } = start(`${adminUrl}/acme`);
    acme.swapNextVerifier();
    await scriptedBrowser(await url, { login: 'ivan' });
    const out = await done;
    expect('e' in out && out.e.message).toBe('the identity provider refused the sign-in code (invalid_grant: grant request is invalid)');
    expect('e' in out && out.e.hint).toMatch(/run gatehouse login again/);
  });

  it('a code already redeemed, replayed into another login: the provider refuses it, and gatehouse login says it refused the code', async () => {
    const { done, url } = start(`${adminUrl}/acme`);
    const auth = new URL(await url);
    const intercepted = await scriptedBrowser(auth.href, { login: 'ivan', stopAtLoopback: auth.searchParams.get('redirect_uri')! });
    expect((await fetch(intercepted.url)).status).toBe(200);
    expect('r' in (await done)).toBe(true);
    // A second login gets the spent code with its own (valid) state: its exchange carries its own verifier.
    const replay = start(`${adminUrl}/acme`);
    const replayAuth = new URL(await replay.url);
    const cb = new URL(replayAuth.searchParams.get('redirect_uri')!);
    cb.searchParams.set('code', new URL(intercepted.url).searchParams.get('code')!);
    cb.searchParams.set('state', replayAuth.searchParams.get('state')!);
    await fetch(cb);
    const out = await replay.done;
    expect('e' in out && out.e.message).toMatch(/^the identity provider refused the sign-in code \(invalid_grant/);
  });

  it('denied consent: the provider redirects back with access_denied, and gatehouse login says so', async () => {
    const { done, url } = start(`${adminUrl}/acme`);
    const browser = await scriptedBrowser(await url, { login: 'ivan', deny: true });
    expect(browser.status).toBe(400);
    const out = await done;
    expect('e' in out && out.e.message).toMatch(/^the sign-in was denied at the identity provider \(access_denied/);
    expect('e' in out && out.e.hint).toMatch(/approve access/);
  });

  it('the provider down, Gatehouse down, an unknown org, a Gatehouse over plain http to another host', async () => {
    // A Gatehouse login endpoint naming a provider that does not answer.
    const deadIssuer = `http://127.0.0.1:${await deadPort()}`;
    const doc: LoginDocument = {
      org: 'acme',
      issuer: deadIssuer,
      client_id: CLI_CLIENT,
      scopes: ['openid'],
      authorization_params: {},
      token: 'id_token',
      audience: CLI_CLIENT,
      email_claim: 'email',
      postgres: { port: gh.port, tls: 'optional', token_sign_in: 'password' },
    };
    const fake = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)));
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const h = newHome();
    const io = { env: h.env, home: h.home, print: () => {} };
    try {
      await expect(login({ target: `http://127.0.0.1:${(fake.address() as AddressInfo).port}/acme`, noBrowser: true }, io)).rejects.toThrow(
        `cannot reach the identity provider ${deadIssuer} at ${deadIssuer}: connection refused`,
      );
    } finally {
      fake.close();
    }
    const deadGatehouse = `http://127.0.0.1:${await deadPort()}`;
    await expect(login({ target: `${deadGatehouse}/acme` }, io)).rejects.toThrow(`cannot reach Gatehouse at ${deadGatehouse}: connection refused`);
    await expect(login({ target: `${adminUrl}/initech` }, io)).rejects.toThrow(`Gatehouse at ${adminUrl} has no login for org initech`);
    await expect(login({ target: 'http://gatehouse.example.com/acme' }, io)).rejects.toThrow('gatehouse login asks Gatehouse over https only');
    await expect(login({ target: 'acme' }, io)).rejects.toThrow('which Gatehouse? no server is known for org acme');
    await expect(refreshSaved({}, io)).rejects.toThrow('no saved sign-in to refresh');
  });

  it('the CLI prints the error and its hint and exits 1', async () => {
    const h = newHome();
    const out = await runLoginCli([`${adminUrl}/initech`], h.env).exit;
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`gatehouse login: Gatehouse at ${adminUrl} has no login for org initech\n  hint: check the org name`);
  });
});
