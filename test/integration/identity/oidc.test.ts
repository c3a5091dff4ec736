// Sign-in with the org's identity provider (issue 14): two real OpenID Connect providers in
// this process (oidc-provider: acme's, default_membership allow, and globex's, deny), a
// Gatehouse serving TLS with the demo's embedded warehouse, and the real clients: psql and
// the pg driver with the token as the password, pgjdbc the same, and SASL OAUTHBEARER from
// a raw client. Every refusal is checked for its SQLSTATE, what the client is told and the
// reason in the audit; at the end no token (nor the 1 MB password) is in any log line,
// audit record or error text.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type tls from 'node:tls';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGatehouse, serve } from '../../../src/serve.ts';
import { cstring, dataRowValues, errorFields, frame, MSG, queryMessage } from '../../../src/warehouses/pg-framing.ts';
import { DEMO_PASSWORD } from '../../helpers/gatehouse.ts';
import { type TestIdp, startTestIdp } from '../../helpers/oidc-provider.ts';
import { RawClient, startupMessage, tlsSocket } from '../../helpers/raw-client.ts';
import { makeTestPki, type TestPki, tlsRulesDir } from '../../helpers/tls.ts';

const JDBC_JAR = '/usr/share/java/postgresql.jar';
const ACME_AUD = 'urn:gatehouse:acme';
const GLOBEX_AUD = 'urn:gatehouse:globex';
const IVAN = 'ivan@acme.example'; // listed in acme without a password: org.yaml says region APAC
const ZOE = 'zoe@acme.example'; // not listed: acme's default membership
const BOB = 'bob@acme.example'; // listed with a SCRAM verifier (the demo's)

let pki: TestPki;
let acme: TestIdp;
let globex: TestIdp;
let gh: RunningGatehouse;
let port: number;
/** The same rules with server.token_sign_in: oauthbearer (SASL with SCRAM and OAUTHBEARER for every name over TLS). */
let ghSasl: RunningGatehouse;
let auditPath: string;
let saslAuditPath: string;
const logLines: string[] = [];
/** Every token and password a test sent: none may appear in a log line, an audit record or an error. */
const secrets = new Set<string>();
const errorTexts: string[] = [];

function rulesWithProviders(tokenSignIn: 'password' | 'oauthbearer'): string {
  const dir = tlsRulesDir(pki, 'optional');
  // These tests fail many sign-ins for the same people on purpose: the throttle (its own tests
  // in throttle.test.ts) must not answer in the tokens' place.
  const serverYaml = join(dir, 'gatehouse.yaml');
  writeFileSync(
    serverYaml,
    `${readFileSync(serverYaml, 'utf8').trimEnd()}\n  sign_in_throttle:\n    max_failures_per_user: 10000\n    max_failures_per_address: 10000\n  token_sign_in: ${tokenSignIn}\n`,
  );
  const acmeOrg = join(dir, 'acme/org.yaml');
  writeFileSync(
    acmeOrg,
    `${readFileSync(acmeOrg, 'utf8').trimEnd()}
  - email: ${IVAN}
    attributes: { region: APAC }
identity_provider:
  issuer: ${acme.issuer}
  audience: ${ACME_AUD}
  groups_claim: groups
  attribute_claims: { region: region }
  default_membership: allow
  jwks_refresh_cooldown: 1s
`,
  );
  const globexOrg = join(dir, 'globex/org.yaml');
  writeFileSync(
    globexOrg,
    `${readFileSync(globexOrg, 'utf8').trimEnd()}
identity_provider:
  issuer: ${globex.issuer}
  audience: ${GLOBEX_AUD}
  jwks_uri: ${globex.issuer}/jwks
  default_membership: deny
`,
  );
  return dir;
}

beforeAll(async () => {
  pki = await makeTestPki();
  acme = await startTestIdp({
    ivan: { email: IVAN, claims: { groups: ['sales-emea'], region: 'EMEA', email_verified: true } },
    zoe: { email: ZOE, claims: { groups: ['sales-emea', 'not-an-acme-group'], region: ['EMEA', 'AMER'] } },
    // Claims asserting the value that lifts the region filter (erin's ALL in org.yaml).
    zed: { email: 'zed@acme.example', claims: { groups: ['sales-emea'], region: 'ALL' } },
    zack: { email: 'zack@acme.example', claims: { groups: ['sales-emea'], region: ['EMEA', 'ALL'] } },
    bob: { email: BOB, claims: { groups: ['sales-emea'] } },
    unverified: { email: 'uma@acme.example', claims: { groups: ['sales-emea'], email_verified: false } },
    hank: { email: 'hank@globex.example' },
    // U+212A KELVIN SIGN lower-cases to an ASCII 'k': this must not become a known acme name.
    kelvin: { email: 'ivan\u212a@acme.example', claims: { groups: ['sales-emea'] } },
  });
  globex = await startTestIdp({
    ivan: { email: IVAN, claims: {} },
    yuri: { email: 'yuri@globex.example' },
  });
  auditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-oidc-audit-')), 'audit.jsonl');
  const logs = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  saslAuditPath = join(mkdtempSync(join(tmpdir(), 'gatehouse-oidc-audit-')), 'audit.jsonl');
  gh = await serve({ rulesDir: rulesWithProviders('password'), host: '127.0.0.1', port: 0, adminPort: 0, auditPath, logger: pino({ level: 'debug' }, logs) });
  port = gh.port;
  ghSasl = await serve({
    rulesDir: rulesWithProviders('oauthbearer'),
    host: '127.0.0.1',
    port: 0,
    adminPort: 0,
    auditPath: saslAuditPath,
    logger: pino({ level: 'debug' }, logs),
  });
}, 180_000);

afterAll(async () => {
  await gh?.close();
  await ghSasl?.close();
  await acme?.close();
  await globex?.close();
});

async function audit(type: string): Promise<Record<string, unknown>[]> {
  await new Promise((r) => setTimeout(r, 150)); // the file audit writes behind by 20 ms
  return [auditPath, saslAuditPath]
    .filter((f) => existsSync(f))
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.type === type);
}
const lastFailure = async (user: string) => (await audit('auth_failed')).filter((r) => r.user === user).at(-1);

interface Outcome {
  regions?: string;
  code?: string;
  message?: string;
  hint?: string;
}

/** The pg driver with the token as the password; over TLS unless `plaintext`. */
async function viaPg(user: string, password: string, opts: { plaintext?: boolean; app?: string; port?: number } = {}): Promise<Outcome> {
  secrets.add(password);
  const c = new pg.Client({
    host: '127.0.0.1',
    port: opts.port ?? port,
    user,
    password,
    database: 'warehouse',
    ssl: opts.plaintext ? false : { ca: readFileSync(pki.caCert) },
    application_name: opts.app,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    const r = await c.query('SELECT DISTINCT region FROM orders ORDER BY 1');
    return { regions: r.rows.map((x) => x.region).join(',') };
  } catch (e) {
    const err = e as { code?: string; message: string; hint?: string };
    errorTexts.push(`${err.message} ${err.hint ?? ''}`);
    return { code: err.code, message: err.message, hint: err.hint };
  } finally {
    await c.end().catch(() => {});
  }
}

function psql(user: string, token: string, sslmode: string): Promise<{ code: number; stdout: string; stderr: string }> {
  secrets.add(token);
  return new Promise((done) => {
    execFile(
      'psql',
      [
        '-X',
        '-q',
        '-A',
        '-t',
        '-v',
        'ON_ERROR_STOP=1',
        `host=127.0.0.1 port=${port} dbname=warehouse user=${user} sslmode=${sslmode} connect_timeout=10`,
        '-c',
        'SELECT DISTINCT region FROM orders ORDER BY 1',
      ],
      { env: { ...process.env, PGPASSWORD: token, PGSSLMODE: '', PGSSLROOTCERT: '', HOME: tmpdir() }, timeout: 30_000 },
      (err, stdout, stderr) => {
        errorTexts.push(stderr);
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('a token as the password, over TLS', () => {
  it('psql (PGPASSWORD=token, sslmode=require): a listed person without a password signs in; org.yaml region wins over the claim, groups come from the token', async () => {
    const token = await acme.token('ivan', ACME_AUD);
    const r = await psql(IVAN, token, 'require');
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual(['APAC']);
    const start = (await audit('session_start')).filter((x) => x.user === IVAN && !x.refused).at(-1);
    expect(start).toMatchObject({ org: 'acme', level: 'query_topics', sign_in: 'oidc-password', tls: true });
  });

  it("the pg driver: a person acme does not list gets its default membership with the claims' groups and region (undeclared groups dropped)", async () => {
    const token = await acme.token('zoe', ACME_AUD);
    expect(await viaPg(ZOE, token, { app: 'zoe-default' })).toEqual({ regions: 'AMER,EMEA' });
    const start = (await audit('session_start')).find((x) => x.application_name === 'zoe-default');
    expect(start).toMatchObject({ org: 'acme', user: ZOE, level: 'query_topics', sign_in: 'oidc-password' });
  });

  it('a claim cannot lift an access filter: the value that means every row (ALL) is dropped from claimed attributes, only org.yaml grants it', async () => {
    // An outside review read every region as a person whose provider profile said ALL.
    const zed = await viaPg('zed@acme.example', await acme.token('zed', ACME_AUD));
    expect(zed).toMatchObject({ code: '42501' });
    expect(zed.message).toMatch(/needs user attribute "region", which zed@acme\.example does not have/);
    expect(await viaPg('zack@acme.example', await acme.token('zack', ACME_AUD))).toEqual({ regions: 'EMEA' });
  });

  it("the startup user is the token's email case-insensitively; another name is refused without saying what differed", async () => {
    const token = await acme.token('ivan', ACME_AUD);
    expect(await viaPg('IVAN@Acme.Example', token)).toEqual({ regions: 'APAC' });
    const other = await viaPg(ZOE, token);
    expect(other).toMatchObject({ code: '28000', message: `identity provider token rejected for user "${ZOE}"` });
    expect((await lastFailure(ZOE))?.reason).toBe('startup user is not the token email');
  });

  it('pgjdbc (sslmode=require) with the token as the password', async () => {
    if (!existsSync(JDBC_JAR))
      throw new Error(`the PostgreSQL JDBC driver is missing at ${JDBC_JAR}: apt-get install -y libpostgresql-jdbc-java (bash .ci/run does this)`);
    const token = await acme.token('ivan', ACME_AUD);
    secrets.add(token);
    const out = await new Promise<string>((done, fail) =>
      execFile(
        'java',
        ['-cp', JDBC_JAR, resolve(import.meta.dirname, '../java/TlsJdbc.java'), String(port), IVAN, token, 'ssl=true&sslmode=require'],
        { timeout: 120_000, env: { ...process.env, HOME: tmpdir() } },
        (err, stdout, stderr) => (err ? fail(new Error(`java TlsJdbc failed: ${err.message}\n${stderr}`)) : done(stdout)),
      ),
    );
    expect(out).toContain('ok=true');
    expect(out).toMatch(/regions=APAC:\d+/);
  }, 120_000);

  it('an expired token: 28000 "has expired", audited', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await acme.mint({ aud: ACME_AUD, email: IVAN, exp: now - 120, iat: now - 720 });
    expect(await viaPg(IVAN, token)).toMatchObject({ code: '28000', message: 'the identity provider token has expired' });
    expect((await lastFailure(IVAN))?.reason).toBe('token expired');
  });

  it('a token not yet valid (nbf two minutes ahead): refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await acme.mint({ aud: ACME_AUD, email: IVAN, nbf: now + 120, exp: now + 600 });
    expect(await viaPg(IVAN, token)).toMatchObject({ code: '28000', message: `identity provider token rejected for user "${IVAN}"` });
    expect((await lastFailure(IVAN))?.reason).toBe('token not yet valid (nbf)');
  });

  it('a token for another audience (issued by the provider itself): refused', async () => {
    const token = await acme.token('ivan', 'urn:some-other-service');
    expect(await viaPg(IVAN, token)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe("token audience is not this org's");
  });

  it("a token from an issuer no org trusts, and one claiming globex's issuer but signed with acme's key: refused", async () => {
    const now = Math.floor(Date.now() / 1000);
    const unknown = await acme.mint({ iss: 'https://idp.example.net', aud: ACME_AUD, email: IVAN, exp: now + 600 });
    expect(await viaPg(IVAN, unknown)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe('token issuer is not the identity provider of any org');
    const forged = await acme.mint({ iss: globex.issuer, aud: GLOBEX_AUD, email: 'yuri@globex.example', exp: now + 600 });
    expect(await viaPg('yuri@globex.example', forged)).toMatchObject({ code: '28000' });
    // Both providers call their first key key-1: the kid matches, the signature does not.
    expect((await lastFailure('yuri@globex.example'))?.reason).toBe('token signature invalid');
  });

  it('a tampered token (signature changed, or the email changed under the same signature): refused', async () => {
    const token = await acme.token('ivan', ACME_AUD);
    const [h, p, s] = token.split('.');
    const badSig = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect(await viaPg(IVAN, badSig)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe('token signature invalid');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const swapped = `${h}.${Buffer.from(JSON.stringify({ ...payload, email: ZOE })).toString('base64url')}.${s}`;
    expect(await viaPg(ZOE, swapped)).toMatchObject({ code: '28000' });
    expect((await lastFailure(ZOE))?.reason).toBe('token signature invalid');
  });

  it('a token signed with a key the provider does not publish (unknown kid): refused after a refetch', async () => {
    const stray = await acme.strayKey('stray-key');
    const now = Math.floor(Date.now() / 1000);
    const token = await acme.mint({ aud: ACME_AUD, email: IVAN, exp: now + 600 }, { key: stray });
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s refetch cooldown
    const before = acme.jwksFetches;
    expect(await viaPg(IVAN, token)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe("token key id not in the provider's keys");
    expect(acme.jwksFetches).toBe(before + 1);
    // Within the cooldown, another unknown kid does not fetch again.
    expect(await viaPg(IVAN, token)).toMatchObject({ code: '28000' });
    expect(acme.jwksFetches).toBe(before + 1);
  });

  it('HS256 (a shared secret) and alg none are never accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = { iss: acme.issuer, aud: ACME_AUD, email: IVAN, exp: now + 600 };
    const none = `${b64({ alg: 'none', kid: acme.currentKid })}.${b64(claims)}.${Buffer.from('x').toString('base64url')}`;
    expect(await viaPg(IVAN, none)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe('token algorithm not allowed');
    const { createHmac } = await import('node:crypto');
    const head = `${b64({ alg: 'HS256', kid: acme.currentKid })}.${b64(claims)}`;
    const hs = `${head}.${createHmac('sha256', 'secret').update(head).digest('base64url')}`;
    expect(await viaPg(IVAN, hs)).toMatchObject({ code: '28000' });
    expect((await lastFailure(IVAN))?.reason).toBe('token algorithm not allowed');
  });

  it("a token of globex's provider for a person acme lists, and acme's for globex's admin: refused (a provider vouches for its own org only)", async () => {
    const fromGlobex = await globex.token('ivan', GLOBEX_AUD);
    expect(await viaPg(IVAN, fromGlobex)).toMatchObject({ code: '28000', message: `identity provider token rejected for user "${IVAN}"` });
    expect((await lastFailure(IVAN))?.reason).toBe("token of org globex's provider for a user of another org");
  });

  it("a name with a SCRAM verifier is asked for a password like everyone: another org's token for it is refused as a token", async () => {
    const fromAcme = await acme.token('hank', ACME_AUD);
    expect(await viaPg('hank@globex.example', fromAcme)).toMatchObject({
      code: '28000',
      message: 'identity provider token rejected for user "hank@globex.example"',
    });
    expect((await lastFailure('hank@globex.example'))?.reason).toBe("token of org acme's provider for a user of another org");
  });

  it('token_sign_in oauthbearer: a token typed as the password runs SCRAM, so it is only ever a wrong SCRAM password (28P01), for every name', async () => {
    for (const [client, user] of [
      ['hank', 'hank@globex.example'],
      ['zoe', ZOE],
    ]) {
      const token = await acme.token(client, ACME_AUD);
      expect(await viaPg(user, token, { port: ghSasl.port })).toMatchObject({ code: '28P01', message: `password authentication failed for user "${user}"` });
    }
  });

  it('default_membership deny: a verified person globex does not list is refused, naming the org and what to do', async () => {
    const token = await globex.token('yuri', GLOBEX_AUD);
    const r = await viaPg('yuri@globex.example', token);
    expect(r).toMatchObject({ code: '28000', message: 'yuri@globex.example is not a member of org globex; ask an org admin' });
    expect((await lastFailure('yuri@globex.example'))?.reason).toBe('not a member of org globex (default_membership deny)');
  });

  it('an email claim that is not ASCII is refused (lower-casing could land on another name)', async () => {
    const token = await acme.token('kelvin', ACME_AUD);
    const r = await viaPg('ivan\u212a@acme.example', token);
    expect(r).toMatchObject({ code: '28000' });
    expect((await lastFailure('ivan\u212a@acme.example'))?.reason).toBe('token has no ASCII email address in claim email');
  });

  it('email_verified false: refused', async () => {
    const token = await acme.token('unverified', ACME_AUD);
    expect(await viaPg('uma@acme.example', token)).toMatchObject({ code: '28000' });
    expect((await lastFailure('uma@acme.example'))?.reason).toBe('token email is not verified (email_verified is false)');
  });

  it('a password that is not a JWT: 28P01 in the same words for a name without a password, a name with one and an unknown name', async () => {
    const outcomes = [];
    for (const user of [IVAN, BOB, 'nobody@acme.example']) {
      const r = await viaPg(user, 'correct horse battery staple');
      outcomes.push({ ...r, message: r.message?.replace(user, '<user>') });
    }
    expect(outcomes[0]).toMatchObject({ code: '28P01', message: 'password authentication failed for user "<user>"' });
    expect(outcomes[0].hint).toMatch(/token from your organization's identity provider as the password/);
    expect(outcomes[1]).toEqual(outcomes[0]);
    expect(outcomes[2]).toEqual(outcomes[0]);
    expect((await lastFailure(IVAN))?.reason).toBe('password is not a JWT, and the name has no password in org.yaml');
    expect((await lastFailure(BOB))?.reason).toBe('wrong password');
  });

  it('a 40 KB password: too long to be a token, a wrong password (28P01)', async () => {
    const long = `eyJ${'A'.repeat(40 * 1024)}`;
    expect(await viaPg(IVAN, long)).toMatchObject({ code: '28P01', message: `password authentication failed for user "${IVAN}"` });
    expect((await lastFailure(IVAN))?.reason).toBe('password is not a JWT, and the name has no password in org.yaml');
  });

  it('a 1 MB password: a clear refusal, and Gatehouse keeps serving', async () => {
    const huge = `eyJ${'A'.repeat(1024 * 1024)}`;
    const r = await viaPg(IVAN, huge);
    // Refused from its header: no message over 64 KiB is read before sign-in (wire/decode.ts).
    expect(r).toMatchObject({ code: '08P01', message: 'message too large' });
    expect(await viaPg(IVAN, await acme.token('ivan', ACME_AUD))).toEqual({ regions: 'APAC' });
  });

  it('org.yaml passwords still work over TLS: bob with the demo password (checked against his SCRAM verifier), and with SCRAM where token_sign_in is oauthbearer', async () => {
    expect(await viaPg(BOB, DEMO_PASSWORD, { app: 'bob-password' })).toEqual({ regions: 'EMEA' });
    expect((await audit('session_start')).find((x) => x.application_name === 'bob-password')).toMatchObject({ user: BOB, sign_in: 'password', tls: true });
    expect(await viaPg(BOB, DEMO_PASSWORD, { app: 'bob-scram', port: ghSasl.port })).toEqual({ regions: 'EMEA' });
    expect((await audit('session_start')).find((x) => x.application_name === 'bob-scram')).toMatchObject({ user: BOB, sign_in: 'scram', tls: true });
  });

  it('the provider rotates its key: a token with the new kid makes Gatehouse refetch the keys and succeed', async () => {
    // The keys are cached already (earlier cases); after the 1 s cooldown an unknown kid refetches.
    const before = acme.jwksFetches;
    await acme.rotate();
    await new Promise((r) => setTimeout(r, 1100));
    const token = await acme.token('ivan', ACME_AUD);
    expect(token.split('.')[0]).toBe(Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'key-2' })).toString('base64url'));
    expect(await viaPg(IVAN, token)).toEqual({ regions: 'APAC' });
    expect(acme.jwksFetches).toBeGreaterThan(before);
  });
});

describe('tokens over plaintext', () => {
  it('the pg driver without TLS: SCRAM, never a cleartext request, so the token never travels in clear; refused 28P01 with the hint to use sslmode=require', async () => {
    const token = await acme.token('ivan', ACME_AUD);
    const r = await viaPg(IVAN, token, { plaintext: true });
    expect(r).toMatchObject({ code: '28P01', message: `password authentication failed for user "${IVAN}"` });
    expect(r.hint).toMatch(/accepted over TLS only: connect with sslmode=require/);
    expect(await lastFailure(IVAN)).toMatchObject({ reason: 'unknown user', tls: false });
    // A listed name with a password gets the same words.
    const bob = await viaPg(BOB, 'not-his-password', { plaintext: true });
    expect({ ...bob, message: bob.message?.replace(BOB, IVAN) }).toEqual(r);
  });

  it('psql sslmode=disable: the same refusal', async () => {
    const r = await psql(IVAN, await acme.token('ivan', ACME_AUD), 'disable');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/accepted over TLS only/);
    expect(r.stderr).toMatch(/sslmode=require/);
  });

  it('a plaintext client is never sent a cleartext password request: the first request is SASL without OAUTHBEARER', async () => {
    for (const user of [IVAN, ZOE, BOB]) {
      const s = await RawClient.socket(port);
      const frames = reader(s);
      s.write(startupMessage({ user, database: 'warehouse' }));
      const first = await frames.next();
      expect(first.type).toBe(MSG.Authentication);
      expect(first.body.readInt32BE(0)).toBe(10);
      expect(saslMechanisms(first.body)).toEqual(['SCRAM-SHA-256']);
      s.destroy();
    }
  });
});

// ---- SASL OAUTHBEARER from a raw client ----

/** Whole backend messages from a socket, in order. */
function reader(s: tls.TLSSocket | import('node:net').Socket) {
  let buf = Buffer.alloc(0);
  const queue: { type: number; body: Buffer }[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  s.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
      const len = buf.readInt32BE(1);
      queue.push({ type: buf[0], body: Buffer.from(buf.subarray(5, 1 + len)) });
      buf = buf.subarray(1 + len);
    }
    wake?.();
  });
  s.on('close', () => {
    closed = true;
    wake?.();
  });
  return {
    async next(): Promise<{ type: number; body: Buffer }> {
      for (;;) {
        const m = queue.shift();
        if (m) return m;
        if (closed) throw new Error('closed');
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 10_000);
        });
        wake = undefined;
      }
    },
  };
}

function saslMechanisms(body: Buffer): string[] {
  return body.subarray(4).toString('utf8').split('\0').filter(Boolean);
}

function saslInitial(mechanism: string, data: string): Buffer {
  const bytes = Buffer.from(data, 'latin1');
  const len = Buffer.alloc(4);
  len.writeInt32BE(bytes.length);
  return frame(0x70, Buffer.concat([cstring(mechanism), len, bytes]));
}

async function oauthSession(user: string) {
  const s = await tlsSocket(ghSasl.port, { negotiation: 'postgres', ca: readFileSync(pki.caCert) });
  const frames = reader(s);
  s.write(startupMessage({ user, database: 'warehouse', application_name: `oauth-${user}` }));
  const first = await frames.next();
  expect(first.type).toBe(MSG.Authentication);
  expect(first.body.readInt32BE(0)).toBe(10);
  return { s, frames, mechanisms: saslMechanisms(first.body) };
}

describe('SASL OAUTHBEARER (RFC 7628), raw client over TLS', () => {
  it('the same mechanisms for every name: listed with a password, listed without, known only to the provider, unknown', async () => {
    for (const user of [BOB, IVAN, ZOE, 'nobody@nowhere.example']) {
      const { s, mechanisms } = await oauthSession(user);
      expect(mechanisms).toEqual(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'OAUTHBEARER']);
      s.destroy();
    }
  });

  it("a person who exists only at acme's provider (zoe) signs in with OAUTHBEARER: acme's default membership", async () => {
    const token = await acme.token('zoe', ACME_AUD);
    secrets.add(token);
    const { s, frames } = await oauthSession(ZOE);
    s.write(saslInitial('OAUTHBEARER', `n,,\x01auth=Bearer ${token}\x01\x01`));
    const ok = await frames.next();
    expect([ok.type, ok.body.readInt32BE(0)]).toEqual([MSG.Authentication, 0]);
    s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const start = (await audit('session_start')).find((x) => x.application_name === `oauth-${ZOE}`);
    expect(start).toMatchObject({ user: ZOE, org: 'acme', sign_in: 'oauthbearer', level: 'query_topics' });
  });

  it('a valid token signs bob in with no SASLFinal, and the session is governed as bob', async () => {
    const token = await acme.token('bob', ACME_AUD);
    secrets.add(token);
    const { s, frames } = await oauthSession(BOB);
    s.write(saslInitial('OAUTHBEARER', `n,,\x01auth=Bearer ${token}\x01\x01`));
    const ok = await frames.next();
    expect([ok.type, ok.body.readInt32BE(0)]).toEqual([MSG.Authentication, 0]);
    let m = await frames.next();
    while (m.type !== MSG.ReadyForQuery) m = await frames.next();
    s.write(queryMessage('SELECT DISTINCT region FROM orders ORDER BY 1'));
    const rows: string[] = [];
    for (m = await frames.next(); m.type !== MSG.ReadyForQuery; m = await frames.next())
      if (m.type === MSG.DataRow) rows.push(String(dataRowValues(m.body)[0]));
    expect(rows).toEqual(['EMEA']);
    s.destroy();
    const start = (await audit('session_start')).find((x) => x.application_name === `oauth-${BOB}`);
    expect(start).toMatchObject({ user: BOB, org: 'acme', sign_in: 'oauthbearer', level: 'query_topics' });
  });

  it("a bad token: the RFC error (status, openid-configuration of acme's issuer, scope) in a SASLContinue, then \\x01, then FATAL 28000", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await acme.mint({ aud: ACME_AUD, email: BOB, exp: now - 300 });
    secrets.add(expired);
    const { s, frames } = await oauthSession(BOB);
    s.write(saslInitial('OAUTHBEARER', `n,,\x01auth=Bearer ${expired}\x01\x01`));
    const cont = await frames.next();
    expect([cont.type, cont.body.readInt32BE(0)]).toEqual([MSG.Authentication, 11]);
    expect(JSON.parse(cont.body.subarray(4).toString('utf8'))).toEqual({
      status: 'invalid_token',
      'openid-configuration': `${acme.issuer}/.well-known/openid-configuration`,
      scope: 'openid email',
    });
    s.write(frame(0x70, Buffer.from([1])));
    const err = await frames.next();
    expect(err.type).toBe(MSG.ErrorResponse);
    const fields = errorFields(err.body);
    errorTexts.push(JSON.stringify(fields));
    expect(fields).toMatchObject({ S: 'FATAL', C: '28000', M: 'the identity provider token has expired' });
    expect((await lastFailure(BOB))?.reason).toBe('token expired');
    s.destroy();
  });

  it("discovery: an empty auth value gets the error with the issuer's discovery document, which the provider serves", async () => {
    const { s, frames } = await oauthSession(BOB);
    s.write(saslInitial('OAUTHBEARER', 'n,,\x01auth=\x01\x01'));
    const cont = await frames.next();
    expect(cont.body.readInt32BE(0)).toBe(11);
    const doc = JSON.parse(cont.body.subarray(4).toString('utf8')) as Record<string, string>;
    expect(doc.status).toBe('invalid_token');
    const discovered = (await (await fetch(doc['openid-configuration'])).json()) as { issuer: string; jwks_uri: string };
    expect(discovered.issuer).toBe(acme.issuer);
    s.write(frame(0x70, Buffer.from([1])));
    const err = await frames.next();
    expect(errorFields(err.body)).toMatchObject({ C: '28000' });
    expect((await lastFailure(BOB))?.reason).toBe('OAUTHBEARER discovery (no token sent)');
    s.destroy();
  });

  it("acme's token for globex's admin (listed in globex) through OAUTHBEARER: refused, the error exchange names globex's issuer", async () => {
    const token = await acme.token('hank', ACME_AUD);
    secrets.add(token);
    const { s, frames, mechanisms } = await oauthSession('hank@globex.example');
    expect(mechanisms).toContain('OAUTHBEARER');
    s.write(saslInitial('OAUTHBEARER', `n,,\x01auth=Bearer ${token}\x01\x01`));
    const cont = await frames.next();
    expect(JSON.parse(cont.body.subarray(4).toString('utf8'))['openid-configuration']).toBe(`${globex.issuer}/.well-known/openid-configuration`);
    s.write(frame(0x70, Buffer.from([1])));
    const fields = errorFields((await frames.next()).body);
    errorTexts.push(JSON.stringify(fields));
    expect(fields).toMatchObject({ C: '28000', M: 'identity provider token rejected for user "hank@globex.example"' });
    expect((await lastFailure('hank@globex.example'))?.reason).toBe("token of org acme's provider for a user of another org");
    s.destroy();
  });

  it('a malformed initial response (authzid, no kvsep, channel binding): 08P01', async () => {
    for (const bad of ['n,a=bob,\x01auth=Bearer x\x01\x01', 'n,,auth=Bearer x', 'p=tls-unique,,\x01auth=Bearer x\x01\x01']) {
      const { s, frames } = await oauthSession(BOB);
      s.write(saslInitial('OAUTHBEARER', bad));
      const err = await frames.next();
      expect(errorFields(err.body)).toMatchObject({ S: 'FATAL', C: '08P01', M: 'malformed OAUTHBEARER message' });
      s.destroy();
    }
  });
});

describe('no token in any log, audit record or error', () => {
  it('none of the tokens or passwords sent above appears anywhere Gatehouse wrote', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const written = [readFileSync(auditPath, 'utf8'), readFileSync(saslAuditPath, 'utf8'), logLines.join(''), errorTexts.join('\n')];
    expect(secrets.size).toBeGreaterThan(15);
    for (const secret of secrets) {
      // The whole secret, and its signature part alone (a JWT's header is not secret, and is shared by many tokens).
      const signature = secret.split('.')[2] ?? '';
      const probe = signature.length >= 20 ? signature : secret;
      for (const text of written) expect(text.includes(probe.slice(0, 64))).toBe(false);
    }
    expect(readFileSync(auditPath, 'utf8')).toMatch(/"reason":"token expired"/);
  });
});
