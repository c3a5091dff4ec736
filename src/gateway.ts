// Gatehouse as one object: rules, identities, warehouses, and the sessions the
// wire layer opens. A session is (org, user, connection, level): fixed at sign-in.
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuditSink } from './audit/audit.ts';
import { topicsOf } from './config/load.ts';
import type { Connection, Org, Rules } from './config/model.ts';
import { GatehouseError } from './errors.ts';
import { type CatalogHost, TopicCatalog } from './catalog/catalog.ts';
import { Directory } from './identity/directory.ts';
import type { AuthFlow, Identity, SignInRequest } from './identity/flow.ts';
import { OidcVerifier } from './identity/oidc.ts';
import { SignInFlows } from './identity/sign-in.ts';
import { type LimitName, SessionCounter, statementLimits } from './limits/limits.ts';
import { withStatementDeadline } from './limits/statement-deadline.ts';
import { sessionPolicy } from './policy/session.ts';
import { decideStartupOptions } from './policy/startup-options.ts';
import type { PlannedStatement } from './policy/decision.ts';
import { extendedAbandoned, extendedFlush, extendedMessage, extendedProtocolError, extendedSync } from './statements/extended.ts';
import { type StatementSession, auditRecord, auditRefusal, newStatementState } from './statements/session.ts';
import { runQuery } from './statements/simple.ts';
import { messages } from './warehouses/pg-framing.ts';
import { discardingSink } from './wire/sink.ts';
import { accountFor } from './warehouses/accounts.ts';
import { EmbeddedServer } from './warehouses/embedded-server.ts';
import type { PoolStats } from './warehouses/pool.ts';
import { sessionStateRefusal } from './warehouses/transaction-pool.ts';
import { createWarehouse, EmbeddedWarehouse } from './warehouses/index.ts';
import { MysqlWarehouse } from './warehouses/mysql.ts';
import { type Warehouse, type WarehouseSession, acceptedClientEncoding, forwardedParams } from './warehouses/types.ts';
import type { ConnectionHandler, ServerSession, StartupInfo } from './wire/handler.ts';
import type { KeyResolution } from './secrets/resolve.ts';
import { SERVER_VERSION } from './warehouses/pg-settings.ts';
import { mockAuthSecret } from './identity/mock-auth-secret.ts';

export { SERVER_VERSION };

export class Gateway implements ConnectionHandler {
  private readonly directory: Directory;
  /** Which sign-in flow a name gets (SCRAM, a token as password, OAUTHBEARER): identity/sign-in.ts. */
  private readonly signInFlows: SignInFlows;
  private readonly warehouses = new Map<string, Warehouse>();
  /** Warehouses whose start() failed with 08001: retried when a session needs one. */
  private readonly unverified = new Set<string>();
  private readonly retrying = new Map<string, Promise<void>>();
  /**
   * Connections refused at start because their stored credentials do not decrypt (a wrong
   * master key, an unknown key id, an altered ciphertext): the rest keep serving, and a
   * session on one of these gets its error (08001 naming the connection).
   */
  private readonly refused = new Map<string, GatehouseError>();
  /** Topic catalogs (src/catalog), by connection: created for the first Query Topics session, started on its first catalog query. */
  private readonly catalogs = new Map<string, TopicCatalog>();
  /** Signed-in sessions in all, per org and per user (src/limits). */
  readonly sessions: SessionCounter;

  constructor(
    private rules: Rules,
    private readonly logger: Logger,
    private readonly audit: AuditSink,
    /** Where embedded servers keep their data (.gatehouse for the CLI; a temp dir per Gatehouse in tests). */
    private readonly stateDir: string,
    /** The master keys of stored credentials (src/secrets/resolve.ts); absent: none configured. */
    private readonly keys?: KeyResolution,
  ) {
    this.directory = new Directory(rules, mockAuthSecret(stateDir));
    this.signInFlows = new SignInFlows(rules, this.directory, new OidcVerifier(rules.orgs.values(), { logger }));
    this.sessions = new SessionCounter(rules.server, rules.orgs);
  }

  /**
   * Starts every connection's warehouse (and checks its account) and learns topic column types.
   * A remote warehouse that cannot be reached (08001) does not stop Gatehouse: it is logged and
   * left unverified, and the first session that needs it retries start() (so the least-privilege
   * check still runs before anyone uses it). Any other failure (42501: an account with more than
   * read privileges; an embedded seed that fails) is a configuration problem and stops the start.
   */
  async start(): Promise<void> {
    // In parallel: an embedded warehouse takes seconds to boot and seed.
    const starting = [...this.rules.orgs.values()].flatMap((org) =>
      [...org.connections.values()].map(async (conn) => {
        const wh = createWarehouse(conn, org.dir, { stateDir: this.stateDir, topics: topicsOf(org, conn.name), keys: this.keys }, this.logger);
        const credentials = wh.credentialProblem?.();
        if (credentials) {
          // This connection alone: its sessions get the refusal, every other connection serves.
          this.refused.set(key(org.name, conn.name), credentials);
          this.logger.error(
            { org: org.name, connection: conn.name, sqlstate: credentials.sqlstate, err: credentials.message, detail: credentials.detail },
            'connection refused at start: its stored credentials do not decrypt',
          );
          return;
        }
        this.warehouses.set(key(org.name, conn.name), wh);
        try {
          await this.verify(org, conn, wh);
        } catch (e) {
          if (!(e instanceof GatehouseError && e.sqlstate === '08001' && wh.kind !== 'embedded')) throw e;
          this.unverified.add(key(org.name, conn.name));
          this.logger.warn(
            { org: org.name, connection: conn.name, sqlstate: e.sqlstate, err: e.message, detail: e.detail },
            'warehouse unreachable at start; sessions on it are refused with 08001 until it answers',
          );
        }
      }),
    );
    const results = await Promise.allSettled(starting);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw failed.reason;
    }
  }

  private async verify(org: Org, conn: Connection, wh: Warehouse): Promise<void> {
    await wh.start();
    await this.learnColumnTypes(org, conn, wh);
  }

  /** A warehouse left unverified at start: start() again, once for all the sessions waiting on it. */
  private async retryStart(org: Org, conn: Connection, wh: Warehouse): Promise<void> {
    const k = key(org.name, conn.name);
    let attempt = this.retrying.get(k);
    if (!attempt) {
      attempt = this.verify(org, conn, wh).finally(() => this.retrying.delete(k));
      this.retrying.set(k, attempt);
    }
    await attempt;
    if (this.unverified.delete(k)) this.logger.info({ org: org.name, connection: conn.name }, 'warehouse started');
  }

  private async learnColumnTypes(org: Org, conn: Connection, wh: Warehouse): Promise<void> {
    const describe = (wh as Partial<{ describeRelation(s: string, t: string): Promise<Record<string, string>> }>).describeRelation;
    if (!describe) return;
    for (const topic of topicsOf(org, conn.name).values()) {
      try {
        topic.columnTypes = await describe.call(wh, topic.base.schema, topic.base.table);
      } catch (e) {
        this.logger.warn({ org: org.name, topic: topic.name, err: (e as Error).message }, 'could not read topic column types');
      }
    }
  }

  /** Connections refused at start for their stored credentials, for /healthz: names only, never a reason with key ids. */
  refusedConnections(): { org: string; connection: string }[] {
    return [...this.refused.keys()].map((k) => {
      const [org, ...rest] = k.split('/');
      return { org, connection: rest.join('/') };
    });
  }

  /** Upstream pools of every warehouse, for /metrics (issue 17). */
  poolStats(): PoolStats[] {
    return [...this.warehouses.values()].flatMap((w) => (w as Partial<{ poolStats(): PoolStats[] }>).poolStats?.() ?? []);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.warehouses.values(), ...this.catalogs.values()].map((w) => w.close()));
  }

  /** A Query Topics session's catalog session: opened on its first catalog query, closed with the session. */
  private catalogFor(org: Org, conn: Connection, params: Record<string, string>, startupSets: PlannedStatement[]) {
    const k = key(org.name, conn.name);
    let catalog = this.catalogs.get(k);
    if (!catalog) {
      catalog = new TopicCatalog(conn, topicsOf(org, conn.name), this.catalogHost(org, conn), this.logger);
      this.catalogs.set(k, catalog);
    }
    let opened: Promise<WarehouseSession> | undefined;
    const open = () => {
      opened ??= catalog
        .openSession({ params, readOnly: true })
        .then(async (session) => {
          // The startup options' settings hold on the catalog session too (DateStyle, TimeZone...).
          const failure = startupSets.length > 0 ? await applyStartupSettings(session, startupSets, {}) : undefined;
          if (failure) {
            await session.close().catch(() => undefined);
            throw new GatehouseError(failure.sqlstate, failure.message, { detail: failure.detail, hint: failure.hint });
          }
          return session;
        })
        .catch((e) => {
          opened = undefined;
          throw e;
        });
      return opened;
    };
    const close = async () => {
      const s = await opened?.catch(() => undefined);
      await s?.close();
    };
    return { open, close };
  }

  /** An embedded connection's catalog lives on its own server; a postgres connection's on a server started for it on first need. */
  private catalogHost(org: Org, conn: Connection): CatalogHost {
    const wh = this.warehouses.get(key(org.name, conn.name));
    if (wh instanceof EmbeddedWarehouse) return { server: wh.server, owned: false };
    const dir = join(this.stateDir, 'embedded', org.name, `${conn.name}.catalog`);
    return { server: new EmbeddedServer({ dir, name: `the topic catalog of connection "${conn.name}" of ${org.name}`, logger: this.logger }), owned: true };
  }

  /** SCRAM-SHA-256 against the verifiers in org.yaml, or a token of the org's identity provider (identity/sign-in.ts). */
  signIn(request: SignInRequest): AuthFlow {
    return this.signInFlows.flow(request);
  }

  log(event: 'auth_failed' | 'auth_throttled' | 'protocol_error' | 'session_start' | 'session_end' | 'limit_reached', fields: Record<string, unknown>): void {
    if (event === 'protocol_error') this.logger.warn(fields, event);
    else if (event === 'limit_reached') {
      const org = typeof fields.user === 'string' ? this.directory.find(fields.user)?.org : undefined;
      this.limitReached({ org, connection: fields.database, ...fields }, fields.limit as LimitName, fields.value as number);
    } else if (event === 'auth_failed' || event === 'auth_throttled') {
      // The record names the org of a name that is a user (the audit is the operators', and
      // each org's records must be findable as its own); the client was told nothing of it.
      const org = typeof fields.user === 'string' ? this.directory.find(fields.user)?.org : undefined;
      const record = org ? { org, ...fields } : fields;
      if (event === 'auth_throttled') this.logger.warn(record, event);
      else this.logger.info(record, event);
      this.audit.event(event, record);
    }
    // session_start/session_end: recorded by openSession and close, which know org, connection and level.
  }

  /** A limit stopped something (src/limits): logged, audited, counted on /metrics (through the audit sink). */
  private limitReached(fields: Record<string, unknown>, limit: LimitName, value: number): void {
    this.logger.warn({ ...fields, limit, value }, 'limit reached');
    this.audit.event('limit_reached', { ...fields, limit, value });
  }

  private record(event: 'session_start' | 'session_end', fields: Record<string, unknown>): void {
    this.logger.info(fields, event);
    this.audit.event(event, fields);
  }

  async openSession(startup: StartupInfo, user: Identity): Promise<ServerSession> {
    // The identity the sign-in flow established, never the name the client typed.
    const org = this.rules.orgs.get(user.org);
    if (!org) throw new GatehouseError('28000', `the organization of user "${user.email}" is not configured`, { severity: 'FATAL' });
    const base = { org: org.name, user: user.email, connection: startup.database, client: startup.remoteAddress };
    let policy: ReturnType<typeof sessionPolicy>;
    try {
      policy = sessionPolicy(org, user, startup.database);
    } catch (e) {
      if (e instanceof GatehouseError) {
        this.logger.info({ ...base, sqlstate: e.sqlstate, reason: e.message }, 'refused');
        this.audit.event('session_start', { ...base, refused: true, sqlstate: e.sqlstate, reason: e.message });
      }
      throw e;
    }
    const { connection: conn, context, levelSource: source } = policy;
    const fields = { ...base, connection: conn.name, level: context.level, ...(policy.requested ? { requested_database: policy.requested } : {}) };
    const clientEncoding = Object.entries(startup.params).find(([k]) => k.toLowerCase() === 'client_encoding')?.[1];
    if (!acceptedClientEncoding(clientEncoding)) {
      // Gatehouse decodes every message as UTF8 and the warehouse reads what it forwards as
      // UTF8: a client writing another encoding would be read differently by each.
      const e = new GatehouseError('0A000', `Gatehouse speaks UTF8 only; client_encoding ${clientEncoding} is not supported`, {
        severity: 'FATAL',
        hint: 'set client_encoding=UTF8 (PGCLIENTENCODING=UTF8 for libpq clients such as psql)',
      });
      this.logger.info({ ...fields, sqlstate: e.sqlstate, reason: e.message }, 'refused');
      this.audit.event('session_start', { ...fields, refused: true, sqlstate: e.sqlstate, reason: e.message });
      throw e;
    }
    // `options` (PGOPTIONS): each -c name=value decided as the SET it stands for, before any
    // upstream opens; a refusal refuses the startup (FATAL), nothing is dropped silently.
    let startupSets: PlannedStatement[];
    try {
      startupSets = await decideStartupOptions(context, startup.params.options, startup.params);
    } catch (e) {
      if (e instanceof GatehouseError) {
        this.logger.info({ ...fields, sqlstate: e.sqlstate, reason: e.message }, 'refused');
        this.audit.event('session_start', { ...fields, refused: true, sqlstate: e.sqlstate, reason: e.message });
      }
      throw e;
    }
    // Under transaction pooling a startup setting would be SET on an upstream connection that
    // goes back to the pool after it, and reach whoever borrows it next (an outside review set
    // erin's TimeZone and DateStyle from bob's PGOPTIONS). DateStyle, TimeZone and
    // extra_float_digits as startup parameters are kept apart: each value has its own pool.
    if (transactionPooled(conn) && startupSets.length > 0) {
      const e = new GatehouseError(
        '0A000',
        `startup settings (${startupSettingNames(startupSets)}, from options or parameters) are not supported on connection "${conn.name}": it uses transaction pooling, so a session setting would reach other clients`,
        {
          severity: 'FATAL',
          hint: 'send DateStyle, TimeZone or extra_float_digits as startup parameters (they are kept per pool), use SET LOCAL inside a transaction, or use a connection with pooling: session',
        },
      );
      this.logger.info({ ...fields, sqlstate: e.sqlstate, reason: e.message }, 'refused');
      this.audit.event('session_start', { ...fields, refused: true, sqlstate: e.sqlstate, reason: e.message });
      throw e;
    }
    const params = forwardedParams(startup.params);
    const refusal = this.refused.get(key(org.name, conn.name));
    if (refusal) {
      // The reason (which key, altered or not) is for the administrator, in the log; the client learns which connection and what to do.
      const e = new GatehouseError(refusal.sqlstate, refusal.message, {
        severity: 'FATAL',
        hint: 'an administrator finds the reason in the Gatehouse log (docs/security.md, "Stored credentials")',
      });
      this.logger.info({ ...fields, sqlstate: e.sqlstate, reason: e.message }, 'refused');
      this.audit.event('session_start', { ...fields, refused: true, sqlstate: e.sqlstate, reason: e.message });
      throw e;
    }
    const warehouse = this.warehouses.get(key(org.name, conn.name));
    if (!warehouse) throw new GatehouseError('08001', `connection "${conn.name}" is not started`, { severity: 'FATAL' });
    // A slot of the user, the org and the server, taken before the upstream session opens.
    const slot = this.sessions.admit(org.name, user.email);
    if ('error' in slot) {
      this.limitReached(fields, slot.limit, slot.value);
      this.audit.event('session_start', { ...fields, refused: true, sqlstate: slot.error.sqlstate, reason: slot.error.message });
      throw slot.error;
    }
    const limits = statementLimits(this.rules.server, org, conn);
    const resultLimit = {
      rows: limits.maxResultRows,
      bytes: limits.maxResultBytes,
      exceeded: (which: 'rows' | 'bytes') => {
        this.limitReached(fields, `max_result_${which}`, which === 'rows' ? limits.maxResultRows : limits.maxResultBytes);
        return limits.resultError(which);
      },
    };
    let upstream: WarehouseSession;
    try {
      if (this.unverified.has(key(org.name, conn.name))) await this.retryStart(org, conn, warehouse);
      // query_topics sessions run as the connection's topics account (least privilege per level).
      upstream = await warehouse.openSession({ params, readOnly: !conn.allow_writes, account: accountFor(context.level), resultLimit, user: context.user });
    } catch (e) {
      slot.release();
      if (e instanceof GatehouseError) throw new GatehouseError(e.sqlstate, e.message, { severity: 'FATAL', detail: e.detail, hint: e.hint });
      throw e;
    }
    // A mysql connection's dialect writes collations by the server's flavor, learned at start.
    if (warehouse instanceof MysqlWarehouse && warehouse.flavor) context.connection.flavor = warehouse.flavor;
    const reported: Record<string, string> = {};
    if (startupSets.length > 0) {
      const failure = await applyStartupSettings(upstream, startupSets, reported);
      if (failure) {
        slot.release();
        await upstream.close().catch(() => undefined);
        this.logger.info({ ...fields, sqlstate: failure.sqlstate, reason: failure.message }, 'refused');
        this.audit.event('session_start', { ...fields, refused: true, sqlstate: failure.sqlstate, reason: failure.message });
        throw failure;
      }
    }
    this.record('session_start', {
      ...fields,
      level_source: source,
      application_name: startup.params.application_name,
      sign_in: user.method,
      tls: startup.tls,
    });
    // A mysql or snowflake warehouse has no pg_catalog: every level's catalog queries (psql \d, pgjdbc's metadata) go to the topic catalog.
    const catalog =
      context.level === 'query_topics' || (context.connection.dialect ?? 'postgres') !== 'postgres'
        ? this.catalogFor(org, conn, params, startupSets)
        : undefined;

    const session: StatementSession = {
      decision: context,
      warehouse: upstream,
      catalog: catalog?.open,
      audit: this.audit,
      policyVersion: this.rules.version,
      maxStatementBytes: this.rules.server.max_statement_bytes,
      clientAddress: startup.remoteAddress,
      applicationName: startup.params.application_name,
      onRefusal: (rule, error) => this.logger.info({ ...fields, rule, sqlstate: error.sqlstate, reason: error.message }, 'refused'),
      state: newStatementState(),
      // Issue 17: under transaction pooling, session state (SET, LISTEN, WITH HOLD...) is refused.
      sessionStateRefusal: transactionPooled(conn) ? (sql) => sessionStateRefusal(conn.name, sql) : undefined,
    };
    // The startup options' SETs ran on the warehouse: audited like the statements they stand for.
    for (const st of startupSets) {
      if (st.action === 'forward')
        session.audit.statement(auditRecord(session, st.sql, { outcome: 'run', statements: [st], rule: 'startup_option', topics: [] }));
    }
    let closed = false;
    const served: ServerSession = {
      parameterStatus: { ...parameterStatus(startup, params, user, upstream.serverVersion), ...reported },
      query: (sql, sink) => runQuery(session, sql, sink),
      extended: (msg, sink) => extendedMessage(session, msg, sink),
      flush: (sink) => extendedFlush(session, sink),
      sync: (sink) => extendedSync(session, sink),
      protocolError: async (what, rule, error, sink, inExchange) => {
        if (inExchange) return extendedProtocolError(session, what, rule, error, sink);
        auditRefusal(session, what, rule, error);
        sink.error(error);
      },
      relayNotifications: (sink) => upstream.onNotification?.((framed) => sink.relay(framed)),
      cancel: () => {
        this.logger.info(fields, 'cancel request');
        void Promise.resolve(upstream.cancel?.()).catch((e) => this.logger.warn({ ...fields, err: (e as Error).message }, 'cancel failed'));
      },
      close: async () => {
        if (closed) return;
        closed = true;
        slot.release();
        extendedAbandoned(session);
        await catalog?.close();
        await upstream.close();
        this.record('session_end', fields);
      },
    };
    return withStatementDeadline(served, limits.statementTimeout, () => {
      this.limitReached(fields, 'statement_timeout', limits.statementTimeout);
      void Promise.resolve(upstream.cancel?.(limits.timeoutError())).catch((e) => this.logger.warn({ ...fields, err: (e as Error).message }, 'cancel failed'));
    });
  }
}

const key = (org: string, conn: string) => `${org}/${conn}`;

/** Settings PostgreSQL reports with ParameterStatus that a startup SET may change (the rest are pinned), by lower-case name. */
const REPORTED_SETTINGS = new Map([
  ['application_name', 'application_name'],
  ['datestyle', 'DateStyle'],
  ['intervalstyle', 'IntervalStyle'],
  ['timezone', 'TimeZone'],
]);

/** The setting a startup SET (as Gatehouse wrote it: `SET name TO ...`) changes, lower case. */
const setName = (sql: string) => /^SET ([a-z_][a-z0-9_$]*) TO /.exec(sql)?.[1];

/** The settings' names, for a message: `TimeZone, work_mem`. */
function startupSettingNames(sets: PlannedStatement[]): string {
  return [...new Set(sets.flatMap((st) => (st.action === 'forward' ? [setName(st.sql) ?? st.sql] : [])))].join(', ');
}

/** A postgres or embedded connection with pooling: transaction (a mysql or snowflake one is session-pooled whatever its file says: row-warehouse.ts). */
function transactionPooled(conn: Connection): boolean {
  return conn.pool?.mode === 'transaction' && (conn.target.kind === 'postgres' || conn.target.kind === 'embedded');
}

/**
 * Runs the startup options' SETs on a new upstream session. Returns the FATAL that refuses the
 * startup when the warehouse rejects one (an unknown setting, a bad value), else undefined; the
 * values the warehouse reports back (ParameterStatus) land in `reported`.
 */
async function applyStartupSettings(
  upstream: WarehouseSession,
  sets: PlannedStatement[],
  reported: Record<string, string>,
): Promise<GatehouseError | undefined> {
  let failure: GatehouseError | undefined;
  const forwarded = sets.flatMap((st) => (st.action === 'forward' ? [st] : []));
  // The warehouse keeps its ParameterStatus to itself: ask for the reported settings' values
  // as it normalised them (DateStyle 'iso,dmy' is reported 'ISO, DMY'), in the order asked.
  const shown = [...new Set(forwarded.map((st) => setName(st.sql)).filter((n): n is string => n !== undefined && REPORTED_SETTINGS.has(n)))];
  const values: string[] = [];
  const fail = (message: string, detail?: string) => {
    failure ??= new GatehouseError('22023', `startup options refused by the warehouse: ${message}`, {
      severity: 'FATAL',
      ...(detail ? { detail } : {}),
      hint: 'fix or remove the setting in options (PGOPTIONS)',
    });
  };
  const sink = discardingSink({
    relay(framed) {
      for (const m of messages(framed)) {
        if (m.type === 0x44 /* D: DataRow of a SHOW */) {
          const len = m.body.length >= 6 ? m.body.readInt32BE(2) : -1;
          if (len >= 0) values.push(m.body.subarray(6, 6 + len).toString('utf8'));
        }
      }
      return true;
    },
    dataRow(row) {
      if (typeof row[0] === 'string') values.push(row[0]);
      return true;
    },
    error(err) {
      fail(err.message);
      return true;
    },
  });
  try {
    const { error } = await upstream.run(
      [...forwarded, ...shown.map((n) => ({ sql: `SHOW ${n}`, kind: 'show' as const, returnsRows: true, emulated: { op: 'show' as const, name: n } }))],
      sink,
    );
    if (error) fail(error.message, `SQLSTATE ${error.sqlstate}`);
  } catch (e) {
    fail((e as Error).message);
  }
  if (!failure && values.length === shown.length) {
    for (const [i, n] of shown.entries()) reported[REPORTED_SETTINGS.get(n) ?? n] = values[i];
  }
  return failure;
}

function parameterStatus(startup: StartupInfo, params: Record<string, string>, user: Identity, serverVersion?: string): Record<string, string> {
  return {
    // The warehouse's own, so clients pick catalog queries that fit it.
    server_version: serverVersion ?? SERVER_VERSION,
    server_encoding: 'UTF8',
    client_encoding: 'UTF8',
    DateStyle: 'ISO, MDY',
    IntervalStyle: 'postgres',
    integer_datetimes: 'on',
    standard_conforming_strings: 'on',
    TimeZone: params.TimeZone ?? 'UTC',
    application_name: startup.params.application_name ?? '',
    is_superuser: 'off',
    session_authorization: user.email,
  };
}
