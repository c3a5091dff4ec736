// The SCRAM sign-in flow in messages (no sockets): what it offers on each channel, a whole
// exchange with and without channel binding, and every way the channel binding can be
// wrong (RFC 5802 section 6, RFC 5929; PostgreSQL's auth-scram.c for the errors).
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuthResponse, AuthStep, SignInChannel } from '../../../src/identity/flow.ts';
import { makeVerifier, mockVerifier, scramClient } from '../../../src/identity/scram.ts';
import { scramFlow } from '../../../src/identity/scram-flow.ts';

const PASSWORD = 'correct horse';
const verifier = makeVerifier(PASSWORD);
const member = { org: 'acme', email: 'bob@acme.example', role: 'member' as const, groups: ['sales-emea'], attributes: { region: ['EMEA'] } };
const endPoint = createHash('sha256').update('the certificate Gatehouse presented').digest();
const plain: SignInChannel = { tls: false, remoteAddress: '127.0.0.1' };
const overTls: SignInChannel = { tls: true, tlsServerEndPoint: endPoint, remoteAddress: '127.0.0.1' };

const initial = (mechanism: string, text: string): AuthResponse => ({ type: 'SASLInitialResponse', mechanism, data: Buffer.from(text) });
const response = (text: string): AuthResponse => ({ type: 'SASLResponse', data: Buffer.from(text) });

function flowFor(channel: SignInChannel, known = true) {
  const request = { user: 'bob@acme.example', database: 'warehouse', channel };
  return known
    ? scramFlow(request, { verifier, identity: member })
    : scramFlow(request, { verifier: mockVerifier('nobody@x', randomBytes(32)), identity: undefined });
}

/** Runs the exchange as a client would: SASLInitialResponse, then the proof; the flow's last step. */
async function exchange(
  channel: SignInChannel,
  opts: { mechanism?: string; password?: string; clientBinding?: Buffer | 'not offered'; known?: boolean } = {},
): Promise<AuthStep> {
  const flow = flowFor(channel, opts.known ?? true);
  const binding = opts.clientBinding === 'not offered' ? opts.clientBinding : opts.clientBinding ? { tlsServerEndPoint: opts.clientBinding } : undefined;
  const client = scramClient(opts.password ?? PASSWORD, binding);
  const first = await flow.onMessage(initial(opts.mechanism ?? 'SCRAM-SHA-256', client.clientFirst));
  if (first.kind !== 'continue' || first.send.type !== 'AuthenticationSASLContinue') return first;
  return flow.onMessage(response(client.respond(first.send.data).clientFinal));
}

describe('scramFlow', () => {
  it('offers SCRAM-SHA-256-PLUS only over TLS with a known end-point hash', () => {
    expect(flowFor(plain).start()).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    expect(flowFor(overTls).start()).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    expect(flowFor({ tls: true, remoteAddress: '127.0.0.1' }).start()).toEqual({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] });
    // A hash handed over on a plaintext channel is ignored.
    expect(flowFor({ tls: false, tlsServerEndPoint: endPoint, remoteAddress: '127.0.0.1' }).start()).toEqual({
      type: 'AuthenticationSASL',
      mechanisms: ['SCRAM-SHA-256'],
    });
  });

  it('signs in with the right password and hands over the Identity, method scram, with SASLFinal', async () => {
    const step = await exchange(plain);
    expect(step).toMatchObject({ kind: 'done', identity: { ...member, method: 'scram' }, final: { type: 'AuthenticationSASLFinal' } });
  });

  it('SCRAM-SHA-256 without binding over TLS (gs2 n: a client that does not do channel binding)', async () => {
    expect((await exchange(overTls)).kind).toBe('done');
  });

  it("a client over TLS whose offer lacked -PLUS says 'y': accepted where binding is not offered, a downgrade where it was", async () => {
    expect(scramClient(PASSWORD, 'not offered').clientFirst).toMatch(/^y,,n=\*,r=/);
    expect((await exchange(plain, { clientBinding: 'not offered' })).kind).toBe('done');
    expect((await exchange({ tls: true, remoteAddress: '127.0.0.1' }, { clientBinding: 'not offered' })).kind).toBe('done');
    expect(await exchange(overTls, { clientBinding: 'not offered' })).toMatchObject({ kind: 'fail' });
  });

  it('SCRAM-SHA-256-PLUS with the certificate hash Gatehouse presented', async () => {
    expect((await exchange(overTls, { mechanism: 'SCRAM-SHA-256-PLUS', clientBinding: endPoint })).kind).toBe('done');
  });

  it('SCRAM-SHA-256-PLUS bound to another certificate (a man in the middle) fails like a wrong password', async () => {
    const other = createHash('sha256').update('the man in the middle').digest();
    const step = await exchange(overTls, { mechanism: 'SCRAM-SHA-256-PLUS', clientBinding: other });
    expect(step).toMatchObject({
      kind: 'fail',
      reason: 'wrong password',
      error: { sqlstate: '28P01', message: 'password authentication failed for user "bob@acme.example"' },
    });
  });

  it('a wrong password, and an unknown user, fail with the same words', async () => {
    const wrong = await exchange(plain, { password: 'nope' });
    const unknown = await exchange(plain, { known: false });
    expect(wrong).toMatchObject({ kind: 'fail', reason: 'wrong password' });
    expect(unknown).toMatchObject({ kind: 'fail', reason: 'unknown user' });
    if (wrong.kind !== 'fail' || unknown.kind !== 'fail') throw new Error('unreachable');
    expect([unknown.error.sqlstate, unknown.error.message]).toEqual([wrong.error.sqlstate, wrong.error.message]);
  });

  it('refuses channel binding that does not fit the mechanism or the channel (08P01)', async () => {
    const nonce = 'r=fixednonce0123456789';
    const cases: [SignInChannel, string, string, RegExp][] = [
      // 'y' = "I can bind, but you did not offer it": this server did, so the offer was stripped.
      [overTls, 'SCRAM-SHA-256', `y,,n=*,${nonce}`, /negotiation error/],
      [overTls, 'SCRAM-SHA-256-PLUS', `n,,n=*,${nonce}`, /does not include channel binding data/],
      [overTls, 'SCRAM-SHA-256', `p=tls-server-end-point,,n=*,${nonce}`, /without channel binding, but the SCRAM message includes channel binding data/],
      [overTls, 'SCRAM-SHA-256-PLUS', `p=tls-unique,,n=*,${nonce}`, /unsupported SCRAM channel-binding type "tls-unique"/],
      [plain, 'SCRAM-SHA-256-PLUS', `p=tls-server-end-point,,n=*,${nonce}`, /invalid SASL authentication mechanism/],
      [plain, 'OAUTHBEARER', 'n,,\x01auth=Bearer x\x01\x01', /invalid SASL authentication mechanism/],
      [plain, 'SCRAM-SHA-256', 'garbage', /malformed SCRAM message/],
    ];
    for (const [channel, mechanism, text, message] of cases) {
      const step = await flowFor(channel).onMessage(initial(mechanism, text));
      expect(step, `${mechanism} ${text}`).toMatchObject({ kind: 'fail', error: { sqlstate: '08P01', severity: 'FATAL' } });
      if (step.kind === 'fail') expect(step.error.message).toMatch(message);
    }
    // 'y' without a -PLUS offer is a client that would bind if it could: served.
    const step = await flowFor(plain).onMessage(initial('SCRAM-SHA-256', `y,,n=*,${nonce}`));
    expect(step.kind).toBe('continue');
  });

  it("a client-final whose c= is not its own gs2 header (c=eSws after 'n') fails", async () => {
    const flow = flowFor(plain);
    const client = scramClient(PASSWORD);
    const first = await flow.onMessage(initial('SCRAM-SHA-256', client.clientFirst));
    if (first.kind !== 'continue' || first.send.type !== 'AuthenticationSASLContinue') throw new Error('no server-first');
    const final = client.respond(first.send.data).clientFinal.replace('c=biws', 'c=eSws');
    expect(await flow.onMessage(response(final))).toMatchObject({ kind: 'fail', error: { sqlstate: '28P01' } });
  });

  it('answers out of order are refused, never a crash', async () => {
    expect(await flowFor(plain).onMessage(response('c=biws,r=x,p=y'))).toMatchObject({ kind: 'fail', error: { sqlstate: '08P01' } });
    expect(await flowFor(plain).onMessage({ type: 'CleartextPassword', password: PASSWORD })).toMatchObject({ kind: 'fail', error: { sqlstate: '08P01' } });
    expect(await flowFor(plain).onMessage({ type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: undefined })).toMatchObject({
      kind: 'fail',
      error: { sqlstate: '08P01' },
    });
  });
});
