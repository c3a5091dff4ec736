// Who a verified token makes the person (issue 14): the email is the identity and the org
// is the one whose provider issued the token; the groups and attributes its claims map to
// are merged with the org's own entry for that email when org.yaml lists it. A person the
// org does not list gets its default membership, or is refused.
import type { Attributes, Org, User } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import { normalizeUserName } from './directory.ts';
import type { Identity, SignInMethod } from './flow.ts';
import type { VerifiedToken } from './oidc.ts';

export type TokenIdentity = { identity: Identity } | { reason: string; error: GatehouseError };

/** What membership is decided from: the org of the token, and the user org.yaml lists under an email (any org). */
export interface Membership {
  org(name: string): Org | undefined;
  user(email: string): User | undefined;
}

/** One answer for every mismatch: the client is not told whether the name, the org or the listing differed. */
export function tokenRejected(user: string): GatehouseError {
  return new GatehouseError('28000', `identity provider token rejected for user "${user}"`, {
    severity: 'FATAL',
    hint: "sign in as the email address your token was issued for, with a token from your organization's identity provider",
  });
}

export function tokenIdentity(token: VerifiedToken, startupUser: string, method: SignInMethod, membership: Membership): TokenIdentity {
  // The startup name must be the token's email: a token is never a way in under someone else's name.
  if (normalizeUserName(startupUser) !== token.email) return { reason: 'startup user is not the token email', error: tokenRejected(startupUser) };
  const org = membership.org(token.org);
  if (!org) return { reason: `org ${token.org} is not configured`, error: tokenRejected(startupUser) };
  const listed = membership.user(token.email);
  if (listed && listed.org !== org.name) {
    // Emails are unique across orgs: another org's provider cannot vouch for this org's user.
    return { reason: `token of org ${org.name}'s provider for a user of another org`, error: tokenRejected(startupUser) };
  }
  if (listed) {
    return {
      identity: {
        org: org.name,
        email: listed.email,
        // org.yaml decides the role: a provider's claims never make an org admin.
        role: listed.role,
        groups: [...new Set([...listed.groups, ...token.groups])],
        // An attribute org.yaml sets for the person is the admin's word and wins over the claim.
        attributes: { ...claimedAttributes(org, token.attributes), ...listed.attributes },
        method,
      },
    };
  }
  if (org.identity_provider?.default_membership !== 'allow') {
    return {
      reason: `not a member of org ${org.name} (default_membership deny)`,
      error: new GatehouseError('28000', `${token.email} is not a member of org ${org.name}; ask an org admin`, {
        severity: 'FATAL',
        hint: `an admin of ${org.name} adds you to users in org.yaml, or sets identity_provider.default_membership: allow`,
      }),
    };
  }
  return {
    identity: { org: org.name, email: token.email, role: 'member', groups: token.groups, attributes: claimedAttributes(org, token.attributes), method },
  };
}

/**
 * The attributes a token's claims may give: without the values that lift an access filter
 * (a topic's values_for_unfiltered, such as region ALL). Seeing every row is the org admin's
 * grant in org.yaml, never a claim's: an outside review read every region as a person whose
 * provider profile said "ALL" (profiles are often editable by the person or a help desk).
 */
export function claimedAttributes(org: Org, claimed: Attributes): Attributes {
  const unfiltered = new Map<string, Set<string>>();
  for (const topic of org.topics.values()) {
    for (const f of topic.access_filters) {
      const values = unfiltered.get(f.attribute) ?? new Set<string>();
      for (const v of f.values_for_unfiltered) values.add(v);
      unfiltered.set(f.attribute, values);
    }
  }
  const out: Attributes = {};
  for (const [name, values] of Object.entries(claimed)) {
    const lifting = unfiltered.get(name);
    const kept = lifting ? values.filter((v) => !lifting.has(v)) : values;
    if (kept.length > 0) out[name] = kept;
  }
  return out;
}
