// Who may sign in: local users of every org, found by email. The org comes
// from the identity, never from what the client names.
import { randomBytes } from 'node:crypto';
import type { Rules, User } from '../config/model.ts';
import { type ScramVerifier, mockVerifier, parseVerifier } from './scram.ts';

export interface Identity {
  user: User;
}

export class Directory {
  // Per-process secret: a mock verifier's salt is stable for a name while the server runs.
  private readonly mockSecret = randomBytes(32);
  constructor(private rules: Rules) {}

  update(rules: Rules): void {
    this.rules = rules;
  }

  find(name: string): User | undefined {
    return this.rules.users.get(name.trim().toLowerCase());
  }

  /** Unknown users, and users without a verifier, get a mock that no password matches. */
  verifierFor(name: string): { verifier: ScramVerifier; known: boolean } {
    const user = this.find(name);
    const verifier = user?.scram ? parseVerifier(user.scram) : undefined;
    if (verifier) return { verifier, known: true };
    return { verifier: mockVerifier(name, this.mockSecret), known: false };
  }
}
