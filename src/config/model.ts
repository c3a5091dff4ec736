// The rules model: what rules/ holds once loaded and validated (see schema.ts for the YAML shapes).
import type { SealedSecret } from '../secrets/envelope.ts';

export const LEVELS = ['no_access', 'query_topics', 'querier', 'connection_admin'] as const;
export type Level = (typeof LEVELS)[number];

export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

/** Attribute values are always lists once loaded: `region: EMEA` becomes ['EMEA']. */
export type Attributes = Record<string, string[]>;

export interface User {
  email: string;
  org: string;
  role: 'admin' | 'member';
  groups: string[];
  attributes: Attributes;
  /** RFC 5803 SCRAM-SHA-256 verifier: SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64> */
  scram?: string;
}

export interface Permissions {
  default: Level;
  groups: Record<string, Level>;
  users: Record<string, Level>;
}

export interface EmbeddedConnection {
  kind: 'embedded';
  /** SQL files (relative to the org dir) that create and fill the embedded warehouse. */
  seed: string[];
}
export interface PostgresConnection {
  kind: 'postgres';
  host: string;
  port: number;
  database: string;
  user: string;
  /** The account's password, encrypted and bound to this org, connection and field: opened only by the connector, per sign-in. */
  password?: SealedSecret;
  /** Or the name of the environment variable holding it (read per sign-in). */
  password_env?: string;
  /** A superuser warehouse account is refused at load unless this is set. */
  allow_superuser: boolean;
  /**
   * The account query_topics sessions connect with (`user` serves queriers and connection
   * admins): checked at start to SELECT exactly the topics' fields and nothing else.
   * Required once the connection has topics or grants query_topics.
   */
  topics_user?: string;
  topics_password?: SealedSecret;
  topics_password_env?: string;
  /** statement_timeout and idle_in_transaction_session_timeout of query_topics sessions ('30s'; default in postgres.ts). */
  topics_statement_timeout?: string;
  topics_idle_in_transaction_session_timeout?: string;
  /** Default: verify-full off loopback, disable on it (src/warehouses/pg-tls.ts). */
  tls?: WarehouseTls;
}
/** TLS to a warehouse. `ca_file`: the CA (PEM) that signed the server's certificate; absent: Node's bundled CAs. */
export interface WarehouseTls {
  mode?: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  ca_file?: string;
}
/** A MySQL or MariaDB warehouse (src/warehouses/mysql.ts). */
export interface MysqlConnection {
  kind: 'mysql';
  host: string;
  port: number;
  database: string;
  user: string;
  /** Encrypted and bound like a postgres connection's (opened only by the connector, per sign-in), or from password_env. */
  password?: SealedSecret;
  password_env?: string;
  /** An account with more than read privileges (FILE, SUPER, GRANT OPTION, writes without allow_writes) is refused at load unless this is set. */
  allow_superuser: boolean;
  /** The account of query_topics sessions: SELECT on the topics' fields (column grants) and nothing else. */
  topics_user?: string;
  topics_password?: SealedSecret;
  topics_password_env?: string;
  /** A topics account with more than the topics' fields is refused at load unless this is set. */
  allow_topics_privileges: boolean;
  /** Default: verify-full off loopback, disable on it. `ca_file`: the CA that signed the server's certificate. */
  tls?: WarehouseTls;
}
/**
 * A Snowflake account (src/warehouses/snowflake-warehouse.ts, through snowflake-sdk). Each
 * account signs in with a password or a key pair, encrypted and bound like a postgres
 * connection's password (opened only by the connector, per sign-in), or from the environment.
 */
export interface SnowflakeConnection {
  kind: 'snowflake';
  account: string;
  user: string;
  /** The role each session takes: required, since least privilege is checked on it (SHOW GRANTS TO ROLE). */
  role: string;
  warehouse: string;
  database: string;
  schema: string;
  password?: SealedSecret;
  password_env?: string;
  private_key?: SealedSecret;
  private_key_env?: string;
  private_key_passphrase?: SealedSecret;
  private_key_passphrase_env?: string;
  /** A querier role that administers the account (ACCOUNTADMIN...) is refused at load unless this is set. */
  allow_superuser: boolean;
  topics_user?: string;
  /** Required with topics_user. */
  topics_role?: string;
  /** A topics role with more than SELECT on the topics' tables is refused at load unless this is set. */
  allow_topics_privileges: boolean;
  topics_password?: SealedSecret;
  topics_password_env?: string;
  topics_private_key?: SealedSecret;
  topics_private_key_env?: string;
  topics_private_key_passphrase?: SealedSecret;
  topics_private_key_passphrase_env?: string;
  /** Tests only: where the SDK's requests go instead of https://<account>.snowflakecomputing.com (http:// on loopback only). */
  access_url?: string;
}
export type ConnectionTarget = EmbeddedConnection | PostgresConnection | MysqlConnection | SnowflakeConnection;

/**
 * How a connection's upstream connections are shared (src/warehouses/pool.ts). session: a
 * client session holds one upstream for its life, reset with DISCARD ALL and parked for the
 * next session; transaction: a session borrows one per transaction; none: one per session,
 * closed at its end (before issue 17).
 */
export interface PoolSettings {
  mode: 'session' | 'transaction' | 'none';
  /** transaction: the most upstream connections per warehouse account; session: the most kept idle per account. */
  size: number;
  /** An idle upstream is closed after this long (ms). */
  idleTimeoutMs: number;
  /** transaction: how long a statement waits for a free upstream before 53300 (ms). */
  waitTimeoutMs: number;
}

export interface Connection {
  name: string;
  org: string;
  target: ConnectionTarget;
  allow_writes: boolean;
  /** Gatehouse's deadline for each statement on this connection, in ms (0: none); absent: the org's or the server's. */
  statement_timeout?: number;
  permissions: Permissions;
  /** Schema under which queriers and connection admins read topics, governed. */
  topics_schema: string;
  /** Upstream pooling; absent: the defaults (DEFAULT_POOL in warehouses/pool.ts, session pooling). */
  pool?: PoolSettings;
}

export interface AccessFilter {
  field: string;
  attribute: string;
  values_for_unfiltered: string[];
}

export interface Topic {
  name: string;
  org: string;
  connection: string;
  base: { schema: string; table: string };
  fields: string[];
  access_filters: AccessFilter[];
  /** Column name -> type name, learned from the warehouse at start; policy pushes
   *  conditions into the security barrier only where the type's operators are leakproof. */
  columnTypes?: Record<string, string>;
}

export interface PolicyTest {
  file: string;
  name: string;
  user: string;
  connection: string;
  sql: string;
  expect: 'allowed' | 'refused' | 'rewritten';
  sqlstate?: string;
  /** Substrings the refusal message or the rewritten SQL must contain. */
  contains?: string[];
}

/** An org's own limits (org.yaml `limits`): each replaces the server-wide value for the org. */
export interface OrgLimits {
  max_sessions?: number;
  max_sessions_per_user?: number;
  /** ms; 0: none. */
  statement_timeout?: number;
  /** 0: none. */
  max_result_rows?: number;
  max_result_bytes?: number;
}

/** org.yaml `identity_provider`: the org's OpenID Connect provider (src/identity/oidc.ts). */
export interface IdentityProvider {
  /** Exactly the `iss` its tokens carry; unique across orgs (a token's issuer names its org). */
  issuer: string;
  audience: string;
  /** Absent: `jwks_uri` of `<issuer>/.well-known/openid-configuration`. */
  jwks_uri?: string;
  email_claim: string;
  groups_claim?: string;
  /** claim -> attribute name. */
  attribute_claims: Record<string, string>;
  /** A verified person not in `users`: a member with no grants of their own (allow), or refused (deny). */
  default_membership: 'allow' | 'deny';
  /** ms: a token with a key id not in the cached keys refetches them at most this often (rotation). */
  jwks_refresh_cooldown: number;
  /** The public client `gatehouse login` signs people in with (src/login/); absent: not published. */
  login?: LoginClient;
}

/** org.yaml `identity_provider.login`: the provider's public client for `gatehouse login`. */
export interface LoginClient {
  client_id: string;
  scopes: string[];
  /** RFC 8707 resource indicator, sent on every request when set. */
  resource?: string;
  /** Allowlisted extra authorization request parameters (prompt, access_type, hd, domain_hint, acr_values, max_age, ui_locales). */
  authorization_params: Partial<Record<string, string>>;
}

export interface Org {
  name: string;
  dir: string;
  limits: OrgLimits;
  identity_provider?: IdentityProvider;
  users: Map<string, User>;
  groups: string[];
  connections: Map<string, Connection>;
  topics: Map<string, Topic>;
  tests: PolicyTest[];
}

export interface ServerConfig {
  host: string;
  port: number;
  admin_port: number;
  /** Statements longer than this (bytes) are refused with 54000 before parsing. */
  max_statement_bytes: number;
  /** Any protocol message longer than this is a protocol violation (08P01). */
  max_message_bytes: number;
  /** Signed-in sessions at once: in all, per org (org.yaml limits.max_sessions replaces it) and per user (53300). */
  max_sessions: number;
  max_sessions_per_org: number;
  max_sessions_per_user: number;
  /** Durations in ms; 0 turns a timeout off. From connect to ReadyForQuery (FATAL 57014 when over). */
  authentication_timeout: number;
  /** A signed-in session waiting for a command outside a transaction (FATAL 57P05). */
  idle_session_timeout: number;
  /** A session waiting for a command inside a transaction (FATAL 25P03). */
  idle_in_transaction_session_timeout: number;
  /** Gatehouse's deadline for each statement (57014); a connection's or org's own replaces it. */
  statement_timeout: number;
  /** Rows and bytes of one result (54000, the session stays usable); 0: none. An org's own replaces them. */
  max_result_rows: number;
  max_result_bytes: number;
  /** On SIGTERM/SIGINT: how long running statements may finish before every session is ended (57P01). */
  shutdown_timeout: number;
  /**
   * Over TLS, once some org has an identity_provider: `password` asks every name for a password
   * (an IdP token, or an org.yaml password checked against its verifier; every client can send
   * one); `oauthbearer` offers every name SASL with SCRAM and OAUTHBEARER (libpq 18's OAuth).
   */
  token_sign_in: 'password' | 'oauthbearer';
  /** Failed sign-ins throttled per user and per address; connections still signing in capped per address. */
  sign_in_throttle: SignInThrottleConfig;
  /** TLS for clients; absent: SSLRequest is answered 'N'. Paths are absolute once loaded (relative ones resolved against the rules directory). */
  tls?: ServerTls;
}

/** server.sign_in_throttle (docs/rules.md "Sign-in throttling"): counts, and durations in ms; a count of 0 turns that check off. */
export interface SignInThrottleConfig {
  /** Failed sign-ins of one user name (known or not) within failure_window before it is locked out (28P01). */
  max_failures_per_user: number;
  /** The same for one client address (an IPv6 address by its /64). */
  max_failures_per_address: number;
  /** Failures are forgotten after this long without a new failure (or the end of a lockout). */
  failure_window: number;
  /** The first lockout; it doubles with each further failure, up to max_lockout. */
  lockout: number;
  max_lockout: number;
  /** Connections of one address not signed in yet (53300 past it). */
  max_pending_per_address: number;
  /**
   * Sign-ins of one user name under way at once while it has no failure on record: above a BI
   * server's or a pool's start-up burst, and the most guesses a parallel burst gets before its
   * first failure is counted (after one, the failures left are the budget).
   */
  max_signing_in_per_user: number;
  /** Users and addresses remembered, each: the least recently seen are forgotten first. */
  max_tracked: number;
}

export interface ServerTls {
  cert_file: string;
  key_file: string;
  /** Issuer (intermediate) certificates sent with the certificate. */
  ca_file?: string;
  /** required: plaintext sessions are refused with 28000. */
  mode: 'optional' | 'required';
}

export interface SecretsConfig {
  /** gatehouse.yaml `secrets.key_file` as written (src/secrets/resolve.ts reads it). */
  key_file?: string;
}

export interface Rules {
  /** Content hash of the rules tree: keys decision caches and audit records. */
  version: string;
  dir: string;
  server: ServerConfig;
  secrets: SecretsConfig;
  orgs: Map<string, Org>;
  /** email (lowercase) -> user, across orgs: the org comes from the identity. */
  users: Map<string, User>;
}
