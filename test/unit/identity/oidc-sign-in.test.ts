// The identity provider sign-in in data (no sockets, no provider): org.yaml's
// identity_provider as loaded, OAUTHBEARER's initial response as PostgreSQL reads it, the
// merge of a verified token with org.yaml, and which flow each name gets on each channel.
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../../src/config/load.ts';
import { isProviderUrl } from '../../../src/config/schema.ts';
import { Directory } from '../../../src/identity/directory.ts';
import type { AuthResponse, SignInChannel } from '../../../src/identity/flow.ts';
import { bearerToken, oauthBearerFlow, parseInitialResponse } from '../../../src/identity/oauthbearer-flow.ts';
import { looksLikeJwt, OidcVerifier, parsesAsJwt } from '../../../src/identity/oidc.ts';
import { SignInFlows } from '../../../src/identity/sign-in.ts';
import { tokenIdentity } from '../../../src/identity/token-identity.ts';
import { tokenOrPasswordFlow } from '../../../src/identity/token-flow.ts';

const DEMO = resolve(import.meta.dirname, '../../../rules');
const PROVIDER = `identity_provider:
  issuer: https://login.acme.example
  audience: gatehouse
  groups_claim: groups
  attribute_claims: { region: region }
  default_membership: allow
`;

function rulesWith(acmeExtra: string, globexExtra = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-oidc-rules-'));
  cpSync(DEMO, dir, { recursive: true });
  for (const [org, extra] of [
    ['acme', acmeExtra],
    ['globex', globexExtra],
  ]) {
    const f = join(dir, org, 'org.yaml');
    writeFileSync(f, `${readFileSync(f, 'utf8').trimEnd()}\n${extra}`);
  }
  return dir;
}
const problemsOf = (dir: string) => {
  try {
    loadRules(dir);
  } catch (e) {
    if (e instanceof RulesError) return e.problems.map((p) => `${p.file} ${p.path}: ${p.reason}`);
    throw e;
  }
  return [];
};

describe('org.yaml identity_provider', () => {
  it('loads with its defaults (email claim, 30 s refetch cooldown)', () => {
    const org = loadRules(rulesWith(PROVIDER)).orgs.get('acme')!;
    expect(org.identity_provider).toEqual({
      issuer: 'https://login.acme.example',
      audience: 'gatehouse',
      email_claim: 'email',
      groups_claim: 'groups',
      attribute_claims: { region: 'region' },
      default_membership: 'allow',
      jwks_refresh_cooldown: 30_000,
    });
  });

  it('provider URLs: https anywhere, http to loopback only, no credentials', () => {
    expect(['https://idp.example.com', 'http://127.0.0.1:8080', 'http://localhost:1/x', 'http://[::1]:9'].map(isProviderUrl)).toEqual([true, true, true, true]);
    expect(['http://idp.example.com', 'http://10.0.0.1', 'ftp://127.0.0.1', 'https://u:p@idp.example.com', 'not a url'].map(isProviderUrl)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(problemsOf(rulesWith(PROVIDER.replace('https://login.acme.example', 'http://login.acme.example')))).toEqual([
      expect.stringContaining('acme/org.yaml identity_provider.issuer: must be an https URL'),
    ]);
  });

  it('default_membership is required (no silent default), and two orgs cannot share an issuer', () => {
    expect(problemsOf(rulesWith(PROVIDER.replace('  default_membership: allow\n', '')))).toEqual([
      expect.stringContaining('identity_provider.default_membership'),
    ]);
    expect(
      problemsOf(
        rulesWith(
          PROVIDER,
          PROVIDER.replace('groups_claim: groups', 'groups_claim: roles').replace('attribute_claims: { region: region }', 'attribute_claims: {}'),
        ),
      ),
    ).toEqual([
      expect.stringContaining('globex/org.yaml identity_provider.issuer: issuer https://login.acme.example is already the identity provider of org acme'),
    ]);
  });
});

describe('OAUTHBEARER initial response (RFC 7628 3.1)', () => {
  it('reads what libpq 18 sends, discovery and the malformed shapes PostgreSQL refuses', () => {
    expect(parseInitialResponse('n,,\x01auth=Bearer abc.def.ghi\x01\x01')).toEqual({ auth: 'Bearer abc.def.ghi' });
    expect(parseInitialResponse('y,,\x01host=db\x01port=5432\x01auth=Bearer x\x01\x01')).toEqual({ auth: 'Bearer x' });
    expect(parseInitialResponse('n,,\x01auth=\x01\x01')).toEqual({ auth: '' });
    for (const bad of [
      'p=x,,\x01auth=Bearer x\x01\x01',
      'n,a=bob,\x01auth=Bearer x\x01\x01',
      'n,,auth=x\x01\x01',
      'n,,\x01auth=x\x01',
      'n,,\x01\x01',
      'n,,\x01auth=x\x01auth=y\x01\x01',
      'n,,\x01auth=x\x01\x01extra',
      'n,,\x01=x\x01\x01',
      'n,,\x01auth=\x02\x01\x01',
    ]) {
      expect(parseInitialResponse(bad)).toHaveProperty('malformed');
    }
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc==')).toBe('abc==');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
  });

  it('plaintext: the mechanism is refused before a token is read', async () => {
    const flow = oauthBearerFlow(
      { user: 'bob@acme.example', database: 'w', channel: { tls: false, remoteAddress: 'x' } },
      { signIn: () => Promise.reject(new Error('must not be called')) },
    );
    const step = await flow.onMessage({ type: 'SASLInitialResponse', mechanism: 'OAUTHBEARER', data: Buffer.from('n,,\x01auth=Bearer a.b.c\x01\x01') });
    expect(step).toMatchObject({ kind: 'fail', reason: 'token sign-in over plaintext refused', error: { sqlstate: '28000' } });
  });

  it('no initial response: an empty challenge, then the same data as a SASLResponse', async () => {
    const seen: string[] = [];
    const flow = oauthBearerFlow(
      { user: 'bob@acme.example', database: 'w', channel: { tls: true, remoteAddress: 'x' } },
      {
        signIn: async (token) => {
          seen.push(token);
          return { identity: { org: 'acme', email: 'bob@acme.example', role: 'member', groups: [], attributes: {}, method: 'oauthbearer' } };
        },
      },
    );
    expect(await flow.onMessage({ type: 'SASLInitialResponse', mechanism: 'OAUTHBEARER', data: undefined })).toEqual({
      kind: 'continue',
      send: { type: 'AuthenticationSASLContinue', data: '' },
    });
    expect(await flow.onMessage({ type: 'SASLResponse', data: Buffer.from('n,,\x01auth=Bearer a.b.c\x01\x01') })).toMatchObject({
      kind: 'done',
      identity: { method: 'oauthbearer' },
    });
    expect(seen).toEqual(['a.b.c']);
  });
});

describe('tokenIdentity', () => {
  const rules = loadRules(
    rulesWith(
      PROVIDER,
      PROVIDER.replace('https://login.acme.example', 'https://login.globex.example')
        .replace('allow', 'deny')
        .replace('attribute_claims: { region: region }', 'attribute_claims: {}'),
    ),
  );
  const directory = new Directory(rules, randomBytes(32));
  const membership = { org: (n: string) => rules.orgs.get(n), user: (e: string) => directory.find(e) };

  it('a listed person: org.yaml role and attributes win, groups are the union', () => {
    const out = tokenIdentity(
      { org: 'acme', email: 'bob@acme.example', groups: ['analysts'], attributes: { region: ['AMER'], team: ['x'] } },
      'Bob@Acme.Example ',
      'oidc-password',
      membership,
    );
    expect(out).toEqual({
      identity: {
        org: 'acme',
        email: 'bob@acme.example',
        role: 'member',
        groups: ['sales-emea', 'analysts'],
        attributes: { region: ['EMEA'], team: ['x'] },
        method: 'oidc-password',
      },
    });
  });

  it("the role is org.yaml's; a token never signs in a user of another org, or under another name", () => {
    const admin = tokenIdentity({ org: 'acme', email: 'alice@acme.example', groups: [], attributes: {} }, 'alice@acme.example', 'oauthbearer', membership);
    expect(admin).toMatchObject({ identity: { role: 'admin' } }); // org.yaml's role, as listed
    const other = tokenIdentity({ org: 'acme', email: 'hank@globex.example', groups: [], attributes: {} }, 'hank@globex.example', 'oauthbearer', membership);
    expect(other).toMatchObject({ reason: "token of org acme's provider for a user of another org", error: { sqlstate: '28000' } });
    const mismatch = tokenIdentity({ org: 'acme', email: 'bob@acme.example', groups: [], attributes: {} }, 'erin@acme.example', 'oauthbearer', membership);
    expect(mismatch).toMatchObject({
      reason: 'startup user is not the token email',
      error: { message: 'identity provider token rejected for user "erin@acme.example"' },
    });
  });

  it('an unlisted person: the default membership (allow), or the refusal naming the org (deny)', () => {
    expect(
      tokenIdentity({ org: 'acme', email: 'new@acme.example', groups: ['analysts'], attributes: {} }, 'new@acme.example', 'oidc-password', membership),
    ).toEqual({
      identity: { org: 'acme', email: 'new@acme.example', role: 'member', groups: ['analysts'], attributes: {}, method: 'oidc-password' },
    });
    expect(
      tokenIdentity({ org: 'globex', email: 'new@globex.example', groups: [], attributes: {} }, 'new@globex.example', 'oidc-password', membership),
    ).toMatchObject({
      error: { sqlstate: '28000', message: 'new@globex.example is not a member of org globex; ask an org admin' },
    });
  });
});

describe('which flow a name gets: the same for every name (listed with a password, listed without, unknown)', () => {
  const NAMES = ['bob@acme.example', 'ivan@acme.example', 'nobody@acme.example', 'nobody@nowhere.example'];
  const flowsOf = (serverExtra = '') => {
    const dir = rulesWith(`${PROVIDER}`);
    // ivan is listed without a password (a person who exists in org.yaml only for attributes).
    const orgFile = join(dir, 'acme', 'org.yaml');
    writeFileSync(
      orgFile,
      readFileSync(orgFile, 'utf8').replace('identity_provider:', '  - email: ivan@acme.example\n    attributes: { region: APAC }\nidentity_provider:'),
    );
    if (serverExtra)
      writeFileSync(join(dir, 'gatehouse.yaml'), `${readFileSync(join(dir, 'gatehouse.yaml'), 'utf8').replace(/^server:\n/m, `server:\n${serverExtra}`)}`);
    const rules = loadRules(dir);
    return { rules, flows: new SignInFlows(rules, new Directory(rules, randomBytes(32)), new OidcVerifier(rules.orgs.values())) };
  };
  const tls: SignInChannel = { tls: true, tlsServerEndPoint: Buffer.alloc(32), remoteAddress: 'x' };
  const plain: SignInChannel = { tls: false, remoteAddress: 'x' };

  it('token_sign_in password (the default), TLS: a cleartext request for every name', () => {
    const { rules, flows } = flowsOf();
    expect(rules.server.token_sign_in).toBe('password');
    for (const user of NAMES) expect(flows.flow({ user, database: 'warehouse', channel: tls }).start()).toEqual({ type: 'AuthenticationCleartextPassword' });
  });

  it('token_sign_in password: an org.yaml password still signs its user in (method password); a wrong one, or any for a name without one, fails in the same words', async () => {
    const { flows } = flowsOf();
    const answer = (user: string, password: string) =>
      flows.flow({ user, database: 'warehouse', channel: tls }).onMessage({ type: 'CleartextPassword', password });
    expect(await answer('bob@acme.example', 'gatehouse-demo')).toMatchObject({
      kind: 'done',
      identity: { email: 'bob@acme.example', org: 'acme', method: 'password' },
    });
    const failures = [];
    for (const user of NAMES) {
      const step = await answer(user, 'wrong.password');
      expect(step.kind).toBe('fail');
      if (step.kind === 'fail') failures.push({ code: step.error.sqlstate, message: step.error.message.replace(user, '<user>'), hint: step.error.hint });
    }
    expect(new Set(failures.map((f) => JSON.stringify(f))).size).toBe(1);
    expect(failures[0]).toMatchObject({ code: '28P01', message: 'password authentication failed for user "<user>"' });
  });

  it('token_sign_in oauthbearer, TLS: SCRAM(-PLUS) and OAUTHBEARER for every name; the discovery issuer is the only provider, whoever asks', async () => {
    const { rules, flows } = flowsOf('  token_sign_in: oauthbearer\n');
    expect(rules.server.token_sign_in).toBe('oauthbearer');
    for (const user of NAMES) {
      const f = flows.flow({ user, database: 'warehouse', channel: tls });
      expect(f.start()).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'OAUTHBEARER'] });
      const step = await f.onMessage({ type: 'SASLInitialResponse', mechanism: 'OAUTHBEARER', data: Buffer.from('n,,\x01auth=\x01\x01') });
      expect(step).toEqual({
        kind: 'continue',
        send: {
          type: 'AuthenticationSASLContinue',
          data: JSON.stringify({
            status: 'invalid_token',
            'openid-configuration': 'https://login.acme.example/.well-known/openid-configuration',
            scope: 'openid email',
          }),
        },
      });
    }
  });

  it('plaintext: SCRAM for every name (never a cleartext request, never OAUTHBEARER); the failure is the same for all, with the hint that tokens need TLS', async () => {
    const { flows } = flowsOf();
    const failures = [];
    for (const user of NAMES) {
      const f = flows.flow({ user, database: 'warehouse', channel: plain });
      expect(f.start()).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
      const cont = await f.onMessage({ type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') });
      expect(cont.kind).toBe('continue');
      const r = cont.kind === 'continue' && cont.send.type === 'AuthenticationSASLContinue' ? /r=([^,]+)/.exec(cont.send.data)![1] : '';
      const step = await f.onMessage({ type: 'SASLResponse', data: Buffer.from(`c=biws,r=${r},p=${Buffer.alloc(32, 7).toString('base64')}`) });
      if (step.kind === 'fail') failures.push({ code: step.error.sqlstate, message: step.error.message.replace(user, '<user>'), hint: step.error.hint });
    }
    expect(failures).toHaveLength(NAMES.length);
    expect(new Set(failures.map((f) => JSON.stringify(f))).size).toBe(1);
    expect(failures[0]).toMatchObject({ code: '28P01', hint: expect.stringContaining('sslmode=require') });
  });

  it('several providers: OAUTHBEARER discovery names the provider of the org listing the email domain, or none', async () => {
    const dir = rulesWith(
      PROVIDER,
      PROVIDER.replace('https://login.acme.example', 'https://login.globex.example').replace('attribute_claims: { region: region }', 'attribute_claims: {}'),
    );
    writeFileSync(
      join(dir, 'gatehouse.yaml'),
      readFileSync(join(dir, 'gatehouse.yaml'), 'utf8').replace(/^server:\n/m, 'server:\n  token_sign_in: oauthbearer\n'),
    );
    const rules = loadRules(dir);
    const flows = new SignInFlows(rules, new Directory(rules, randomBytes(32)), new OidcVerifier(rules.orgs.values()));
    const discovery = async (user: string) => {
      const f = flows.flow({ user, database: 'warehouse', channel: tls });
      f.start();
      const step = await f.onMessage({ type: 'SASLInitialResponse', mechanism: 'OAUTHBEARER', data: Buffer.from('n,,\x01auth=\x01\x01') });
      return step.kind === 'continue' && step.send.type === 'AuthenticationSASLContinue' ? JSON.parse(step.send.data)['openid-configuration'] : 'no continue';
    };
    // A listed name and an unknown one of the same domain get the same answer.
    expect(await discovery('hank@globex.example')).toBe('https://login.globex.example/.well-known/openid-configuration');
    expect(await discovery('nobody@globex.example')).toBe('https://login.globex.example/.well-known/openid-configuration');
    expect(await discovery('bob@acme.example')).toBe('https://login.acme.example/.well-known/openid-configuration');
    expect(await discovery('someone@elsewhere.example')).toBeUndefined();
  });

  it('without any provider: SCRAM for everyone, as before', () => {
    const demo = loadRules(DEMO);
    const plainFlows = new SignInFlows(demo, new Directory(demo, randomBytes(32)), new OidcVerifier(demo.orgs.values()));
    expect(plainFlows.flow({ user: 'nobody@acme.example', database: 'w', channel: tls }).start()).toEqual({
      type: 'AuthenticationSASL',
      mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'],
    });
  });

  it('the password flow itself refuses a plaintext channel and anything but one PasswordMessage', async () => {
    const never = { signIn: () => Promise.reject(new Error('must not be called')) };
    const demo = loadRules(DEMO);
    const creds = new Directory(demo, randomBytes(32)).scramCredentials('x@acme.example');
    const overPlain = tokenOrPasswordFlow({ user: 'x@acme.example', database: 'w', channel: plain }, never, creds);
    expect(await overPlain.onMessage({ type: 'CleartextPassword', password: 'a.b.c' })).toMatchObject({ kind: 'fail', error: { sqlstate: '28000' } });
    const wrong = tokenOrPasswordFlow({ user: 'x@acme.example', database: 'w', channel: tls }, never, creds);
    expect(await wrong.onMessage({ type: 'SASLResponse', data: Buffer.alloc(0) } as AuthResponse)).toMatchObject({
      kind: 'fail',
      error: { sqlstate: '08P01' },
    });
  });

  it('a token-looking password is three base64url parts of at most 16 KiB whose header and payload are JSON', () => {
    expect(looksLikeJwt('eyJ.eyJ.sig')).toBe(true);
    expect(looksLikeJwt('correct horse')).toBe(false);
    expect(looksLikeJwt('a.b')).toBe(false);
    expect(looksLikeJwt(`a.${'b'.repeat(17000)}.c`)).toBe(false);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    expect(parsesAsJwt(`${b64({ alg: 'RS256' })}.${b64({ sub: 'x' })}.c2ln`)).toBe(true);
    expect(parsesAsJwt('my.pass.word')).toBe(false);
  });
});
