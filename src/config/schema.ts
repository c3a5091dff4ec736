// The YAML shapes of rules/ (docs/rules.md documents them). Validated at load:
// an invalid file is refused with its path and the reason.
import { z } from 'zod';
import { LEVELS } from './model.ts';
import { oneSourcePerSecret, passwordFields, privateKeyFields, topicsPasswordFields, topicsPrivateKeyFields } from './secret-fields.ts';

const level = z.enum(LEVELS);
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$-]*$/, 'must be a plain identifier');
const email = z.string().regex(/^[^@\s]+@[^@\s]+$/, 'must be an email address');
/** A PostgreSQL duration setting: milliseconds as a number, or digits and a unit ('30s', '5min'); 0 disables. */
const duration = z.union([
  z
    .number()
    .int()
    .min(0)
    .transform((n) => `${n}ms`),
  z.string().regex(/^\d+(ms|s|min|h|d)$/, "must be a number of milliseconds or digits and a unit: ms, s, min, h, d (e.g. '30s')"),
]);
/** A duration in milliseconds: a number of milliseconds, or digits and a unit ('30s', '5min'); 0 means none (off). */
export const durationMs = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(/^\d+(ms|s|min|h|d)$/, "must be a number of milliseconds or digits and a unit: ms, s, min, h, d (e.g. '30s')")
    .transform((s) => {
      const [, n, unit] = /^(\d+)(ms|s|min|h|d)$/.exec(s)!;
      return Number(n) * { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms'];
    }),
]);
/** A count limit: a positive number, or 0 for none. */
const countLimit = z.number().int().min(0);
const attributeValue = z.union([z.string(), z.number().transform(String)]);

export const serverFileSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(6432),
        admin_port: z.number().int().min(0).max(65535).default(6480),
        max_statement_bytes: z
          .number()
          .int()
          .positive()
          .default(1024 * 1024),
        max_message_bytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024 * 1024),
        // Operating under load (docs/rules.md explains each default).
        max_sessions: z.number().int().positive().default(1000),
        max_sessions_per_org: z.number().int().positive().default(200),
        max_sessions_per_user: z.number().int().positive().default(20),
        authentication_timeout: durationMs.refine((ms) => ms > 0, 'must be more than 0').default(60_000),
        idle_session_timeout: durationMs.default(0),
        idle_in_transaction_session_timeout: durationMs.default(3_600_000),
        statement_timeout: durationMs.default(0),
        max_result_rows: countLimit.default(0),
        max_result_bytes: countLimit.default(0),
        shutdown_timeout: durationMs.default(30_000),
        // How a token reaches Gatehouse over TLS once some org has an identity_provider (src/identity/sign-in.ts):
        // every name is asked for a password (a token or an org.yaml password), or offered SASL (SCRAM and OAUTHBEARER).
        token_sign_in: z.enum(['password', 'oauthbearer']).default('password'),
        // Failed sign-ins, throttled per user and per client address (src/limits/sign-in-throttle.ts, docs/rules.md).
        sign_in_throttle: z
          .object({
            max_failures_per_user: countLimit.default(5),
            max_failures_per_address: countLimit.default(50),
            failure_window: durationMs.refine((ms) => ms > 0, 'must be more than 0').default(900_000),
            lockout: durationMs.refine((ms) => ms > 0, 'must be more than 0').default(10_000),
            max_lockout: durationMs.refine((ms) => ms > 0, 'must be more than 0').default(900_000),
            max_pending_per_address: countLimit.default(256),
            max_signing_in_per_user: z.number().int().min(1).default(256),
            max_tracked: z.number().int().min(1).default(100_000),
          })
          .strict()
          .refine((t) => t.max_lockout >= t.lockout, { message: 'max_lockout must be at least lockout', path: ['max_lockout'] })
          .prefault({}),
        // TLS for clients (docs/rules.md "TLS"); paths are relative to the rules directory.
        tls: z
          .object({
            cert_file: z.string().min(1),
            key_file: z.string().min(1),
            ca_file: z.string().min(1).optional(),
            mode: z.enum(['optional', 'required']).default('optional'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    // Where the master keys of stored credentials are (src/secrets): never inside rules/.
    secrets: z
      .object({
        /** A key file (mode 0600): absolute, or relative to the rules directory (and outside it). */
        key_file: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/**
 * An identity provider URL: https, or plain http to a loopback host only (a provider on the
 * same machine, as in tests); anything else could be answered by someone on the network path.
 */
export const providerUrl = z.string().refine(isProviderUrl, 'must be an https URL (http only to a loopback host: 127.0.0.1, ::1, localhost)');
export function isProviderUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password || url.hash) return false;
  if (url.protocol === 'https:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.protocol === 'http:' && (host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host));
}

/**
 * What `gatehouse login` needs to sign a person in (src/login/): a public client registered at
 * the provider for Gatehouse's command line (a native app: PKCE, a loopback redirect, no
 * secret), published unauthenticated by the admin endpoint's /login/v1/orgs/<org>.
 */
const loginClient = z
  .object({
    client_id: z.string().min(1),
    /** Asked for at sign-in; offline_access is what gets a refresh token from most providers. */
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be an OAuth scope token'))
      .min(1)
      .default(['openid', 'email', 'offline_access']),
    /** RFC 8707 resource indicator sent with every request (providers that issue an access token per resource). */
    resource: z.string().url().optional(),
    /**
     * Extra authorization request parameters some providers need (Google: access_type offline);
     * an allowlist, so nothing here can replace the redirect, the state or the PKCE challenge.
     */
    authorization_params: z
      .partialRecord(z.enum(['prompt', 'access_type', 'hd', 'domain_hint', 'acr_values', 'max_age', 'ui_locales']), z.string().min(1))
      .default({}),
  })
  .strict();

/** The org's OpenID Connect provider: whose tokens sign its people in (src/identity/oidc.ts, docs/rules.md). */
const identityProvider = z
  .object({
    /** Exactly the `iss` of its tokens (and the discovery document's `issuer`). */
    issuer: providerUrl,
    /** The `aud` its tokens must carry for Gatehouse. */
    audience: z.string().min(1),
    /** Where its signing keys are; absent: the discovery document's jwks_uri. */
    jwks_uri: providerUrl.optional(),
    email_claim: z.string().min(1).default('email'),
    groups_claim: z.string().min(1).optional(),
    /** claim -> attribute name. */
    attribute_claims: z.record(z.string().min(1), identifier).default({}),
    /** A verified person not listed in users: a member with no grants of their own (allow), or refused (deny). */
    default_membership: z.enum(['allow', 'deny']),
    /** A token whose key id is not in the cached keys refetches them at most this often. */
    jwks_refresh_cooldown: durationMs.default(30_000),
    /** `gatehouse login` for this org: absent, the admin endpoint publishes nothing for it. */
    login: loginClient.optional(),
  })
  .strict();

export const orgFileSchema = z
  .object({
    name: identifier,
    identity_provider: identityProvider.optional(),
    // The org's own limits: each replaces the server-wide one (gatehouse.yaml) for this org.
    limits: z
      .object({
        max_sessions: z.number().int().positive().optional(),
        max_sessions_per_user: z.number().int().positive().optional(),
        statement_timeout: durationMs.optional(),
        max_result_rows: countLimit.optional(),
        max_result_bytes: countLimit.optional(),
      })
      .strict()
      .default({}),
    groups: z.array(identifier).default([]),
    users: z
      .array(
        z
          .object({
            email,
            role: z.enum(['admin', 'member']).default('member'),
            groups: z.array(identifier).default([]),
            attributes: z.record(z.string(), z.union([attributeValue, z.array(attributeValue)])).default({}),
            scram: z
              .string()
              .regex(/^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, 'must be a SCRAM-SHA-256 verifier (gatehouse verifier makes one)')
              .optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

const permissions = z
  .object({
    default: level.default('no_access'),
    groups: z.record(identifier, level).default({}),
    users: z.record(email, level).default({}),
  })
  .strict();

const common = {
  allow_writes: z.boolean().default(false),
  /** Gatehouse's own deadline for every statement on this connection (replaces the org's and the server's). */
  statement_timeout: durationMs.optional(),
  topics_schema: identifier.default('topics'),
  permissions: permissions.default({ default: 'no_access', groups: {}, users: {} }),
  // Upstream pooling (issue 17, src/warehouses/pool.ts): per (connection, warehouse account).
  pooling: z.enum(['session', 'transaction', 'none']).default('session'),
  pool_size: z.number().int().min(1).default(20),
  pool_idle_timeout: durationMs.default(60_000),
  pool_wait_timeout: durationMs.default(30_000),
};

// TLS to the warehouse: verify-full off loopback and none on it unless set (src/warehouses/warehouse-tls.ts).
const warehouseTls = z
  .object({
    mode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).optional(),
    ca_file: z.string().optional(),
  })
  .strict()
  .optional();

const snowflakeName = z.string().regex(/^("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)$/, 'must be a Snowflake identifier (quoted for exact case)');

export const connectionFileSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('embedded'), seed: z.array(z.string()).default([]), ...common }).strict(),
  z
    .object({
      kind: z.literal('postgres'),
      host: z.string(),
      port: z.number().int().default(5432),
      database: z.string(),
      user: z.string(),
      // Encrypted (password: gh1:...) or from the environment (password_env): secret-fields.ts.
      ...passwordFields,
      allow_superuser: z.boolean().default(false),
      // The account query_topics sessions use upstream: SELECT on the topics' fields and nothing else.
      topics_user: z.string().min(1).optional(),
      ...topicsPasswordFields,
      topics_statement_timeout: duration.optional(),
      topics_idle_in_transaction_session_timeout: duration.optional(),
      tls: warehouseTls,
      ...common,
    })
    .strict()
    .superRefine(oneSourcePerSecret),
  z
    .object({
      kind: z.literal('mysql'),
      host: z.string(),
      port: z.number().int().default(3306),
      database: z.string(),
      user: z.string(),
      ...passwordFields,
      // Accept an account with more than SELECT (FILE, SUPER, GRANT OPTION, writes without allow_writes), logged.
      allow_superuser: z.boolean().default(false),
      topics_user: z.string().min(1).optional(),
      ...topicsPasswordFields,
      // Accept a topics account with more than SELECT on the topics' fields, logged.
      allow_topics_privileges: z.boolean().default(false),
      tls: warehouseTls,
      ...common,
    })
    .strict()
    .superRefine(oneSourcePerSecret),
  z
    .object({
      kind: z.literal('snowflake'),
      /** Account identifier: orgname-accountname or a locator (xy12345.eu-west-1). */
      account: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be a Snowflake account identifier'),
      user: z.string().min(1),
      // Least privilege is checked on this role at start (SHOW GRANTS TO ROLE).
      role: snowflakeName,
      warehouse: snowflakeName,
      database: snowflakeName,
      schema: snowflakeName.default('PUBLIC'),
      // One credential per account: a password or a key-pair private key, each encrypted or from the environment.
      ...passwordFields,
      ...privateKeyFields,
      // Accept a querier role that administers the account (ACCOUNTADMIN, SECURITYADMIN, SYSADMIN, ORGADMIN), logged.
      allow_superuser: z.boolean().default(false),
      topics_user: z.string().min(1).optional(),
      topics_role: snowflakeName.optional(),
      ...topicsPasswordFields,
      ...topicsPrivateKeyFields,
      // Accept a topics role with more than SELECT on the topics' tables, logged.
      allow_topics_privileges: z.boolean().default(false),
      /**
       * Advanced, for tests: the URL every SDK request goes to instead of
       * https://<account>.snowflakecomputing.com. Gatehouse's own suite points it at its fake
       * Snowflake; http:// means no TLS at all, so it is refused off loopback.
       */
      access_url: z
        .string()
        .url()
        .refine((u) => /^https:\/\//.test(u) || /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(u), 'http:// is allowed only on loopback')
        .optional(),
      ...common,
    })
    .strict()
    .superRefine(oneSourcePerSecret)
    .superRefine(oneSnowflakeCredential),
]);

/** Each Snowflake account signs in one way: a password or a private key, never both, never neither. */
function oneSnowflakeCredential(c: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const given = (prefix: string) => ['password', 'password_env', 'private_key', 'private_key_env'].filter((f) => c[`${prefix}${f}`] !== undefined);
  const querier = given('');
  if (querier.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['password'],
      message: 'give exactly one credential for user: password, password_env, private_key or private_key_env',
    });
  }
  const topics = given('topics_');
  if (c.topics_user !== undefined && c.topics_role === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['topics_role'],
      message: 'topics_user needs topics_role: the role its sessions take, checked for least privilege at start',
    });
  }
  if (c.topics_user !== undefined ? topics.length !== 1 : topics.length !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['topics_password'],
      message:
        'with topics_user, give exactly one credential for it (topics_password, topics_password_env, topics_private_key or topics_private_key_env); without it, none',
    });
  }
}

export const topicFileSchema = z
  .object({
    connection: identifier,
    base: z.string().regex(/^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/, 'must be table or schema.table'),
    fields: z.array(identifier).min(1),
    access_filters: z
      .array(
        z
          .object({
            field: identifier,
            attribute: identifier,
            values_for_unfiltered: z.array(z.string()).default([]),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

export const policyTestFileSchema = z.array(
  z
    .object({
      name: z.string(),
      user: email,
      connection: identifier,
      sql: z.string(),
      expect: z.enum(['allowed', 'refused', 'rewritten']),
      sqlstate: z.string().length(5).optional(),
      contains: z.array(z.string()).optional(),
    })
    .strict(),
);
