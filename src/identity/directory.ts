// Who may sign in: local users of every org, found by email. The org comes
// from the identity, never from what the client names.
import type { Rules, User } from '../config/model.ts';
import type { Identity } from './flow.ts';
import { type ScramVerifier, mockVerifier, parseVerifier } from './scram.ts';
import type { ScramCredentials } from './scram-flow.ts';

/**
 * The one normalisation of a sign-in name, for finding a user and for an unknown
 * user's mock verifier alike: two spellings that find the same user (or the same
 * nobody) must get the same SCRAM exchange, or the difference tells who exists.
 */
export function normalizeUserName(name: string): string {
  return name.trim().toLowerCase();
}

/** What a mock verifier copies from the real ones: the most common iteration count and salt length. */
function mockShape(rules: Rules): { iterations: number; saltBytes: number } {
  const count = <T>(values: T[]): T | undefined => {
    const n = new Map<T, number>();
    for (const v of values) n.set(v, (n.get(v) ?? 0) + 1);
    return [...n].sort((a, b) => b[1] - a[1])[0]?.[0];
  };
  const verifiers = [...rules.users.values()].flatMap((u) => (u.scram ? [parseVerifier(u.scram)] : [])).filter((v) => v !== undefined);
  return {
    iterations: count(verifiers.map((v) => v.iterations)) ?? 4096,
    saltBytes: count(verifiers.map((v) => v.salt.length)) ?? 16,
  };
}

export class Directory {
  private shape: { iterations: number; saltBytes: number };
  constructor(
    private rules: Rules,
    /** Unknown names' mock salts derive from it: the same across restarts and instances (mock-auth-secret.ts). */
    private readonly mockSecret: Buffer,
  ) {
    this.shape = mockShape(rules);
  }

  update(rules: Rules): void {
    this.rules = rules;
    this.shape = mockShape(rules);
  }

  find(name: string): User | undefined {
    return this.rules.users.get(normalizeUserName(name));
  }

  /** The orgs that list people of this email domain (OAUTHBEARER's provider discovery: by domain, never by name). */
  orgsOfDomain(domain: string): string[] {
    const orgs = new Set<string>();
    for (const user of this.rules.users.values()) if (user.email.endsWith(`@${domain}`)) orgs.add(user.org);
    return [...orgs];
  }

  /** Unknown users, and users without a verifier, get a mock that no password matches. */
  verifierFor(name: string): { verifier: ScramVerifier; known: boolean } {
    const key = normalizeUserName(name);
    const user = this.rules.users.get(key);
    const verifier = user?.scram ? parseVerifier(user.scram) : undefined;
    if (verifier) return { verifier, known: true };
    return { verifier: mockVerifier(key, this.mockSecret, this.shape), known: false };
  }

  /** The SCRAM flow's credentials for a sign-in name: a known user's verifier and membership, or a mock and nobody. */
  scramCredentials(name: string): ScramCredentials {
    const { verifier, known } = this.verifierFor(name);
    const user = known ? this.find(name) : undefined;
    return { verifier, identity: user ? membership(user) : undefined };
  }
}

/** A user of rules/ as the identity a session is opened with (the verifier stays here). */
function membership(user: User): Omit<Identity, 'method'> {
  return { org: user.org, email: user.email, role: user.role, groups: [...user.groups], attributes: user.attributes };
}
