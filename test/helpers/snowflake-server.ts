// A fake Snowflake for tests: a node:http server speaking the part of Snowflake's REST protocol
// that snowflake-sdk 3.x uses (shared/reference/snowflake-sdk.md records what it sends and
// expects), with SQL executed on the local PostgreSQL, one PostgreSQL connection per Snowflake
// session. No real Snowflake is reachable from here; this is what the connector and the dialect
// are tested against.
//
// Served: login (password, and key-pair JWT: AUTHENTICATOR SNOWFLAKE_JWT with an RS256 token
// whose iss is ACCOUNT.USER.SHA256:<fingerprint of the public key>), query-request with binds
// (`?` and `:n` rewritten to `$n` outside literals, quoted names and comments), the JSON rowset
// inline and in chunks (GET on this same server, no Authorization, as the SDK fetches them),
// long-poll (code 333333 then GET /queries/<id>/result), abort-request (pg_cancel_backend),
// token renewal (390112 then /session/token-request), logout, telemetry. SQL errors are HTTP 200
// `success:false` with a Snowflake code and sqlState (never 5xx: the SDK retries those ~1000 times).
//
// Identifier case. Snowflake folds unquoted names to UPPER case, PostgreSQL to lower. The fake
// does not translate SQL: it runs the text it receives on PostgreSQL. Test data therefore lives
// in PostgreSQL objects created with quoted upper-case names (schema "PUBLIC", table "ORDERS",
// column "ID"), which is what an unquoted CREATE makes on Snowflake. SQL that quotes names the
// way Snowflake stores them ("PUBLIC"."ORDERS"."ID", as the Gatehouse emitter writes them)
// resolves to the same objects on both; unquoted names in raw SQL do not (PostgreSQL would look
// for lower-case ones). Output column names are PostgreSQL's (no upper-casing of unquoted
// aliases: a Snowflake `SELECT 1 AS a` is named A, here a). The session's schema from login is
// the PostgreSQL search_path, folded as Snowflake folds it (unquoted -> upper case).
//
// Snowflake type names that PostgreSQL lacks come from domains the test database may define
// (see SNOWFLAKE_DOMAINS_SQL): timestamp_ntz, timestamp_ltz, timestamp_tz, variant, number,
// geography (a type Gatehouse has no PostgreSQL counterpart for: its text is sent as is).
// A column of such a domain is reported with the Snowflake type of the domain's name.
//
// Faults on demand: dropMidResult(pattern) cuts the next matching statement's first result
// chunk mid-body and ends its session, as a warehouse connection lost mid-result.
//
// describeOnly is answered with the columns of the statement run under LIMIT 0 with NULL binds
// (PostgreSQL infers each parameter's type from where it stands; one it cannot is an error).
//
// Not served (and so not tested): multi-statement, PUT/GET and stage binding,
// asyncExec, requestId de-duplication of retried requests, Arrow results, server-side cursors
// (a result is materialised before its first byte is sent), OAuth/SSO/MFA.
import { createHash, createPublicKey, randomUUID, verify as verifySignature } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';

export interface FakeSnowflakeUser {
  password?: string;
  /** PEM public key for key-pair (SNOWFLAKE_JWT) sign-in. */
  publicKeyPem?: string;
}

export interface FakeSnowflakeOptions {
  /** The PostgreSQL every session runs on (one connection per session). */
  pg: { host: string; port: number; user: string; database: string; password?: string };
  /** LOGIN_NAME (matched case-insensitively, as Snowflake does for unquoted user names) -> how it signs in. */
  users: Record<string, FakeSnowflakeUser>;
  /** How long a query-request waits before answering 333333 (real Snowflake: ~45 s). */
  syncWaitMs?: number;
  /** Rows sent inline in the query response; the rest go in chunks. */
  inlineRows?: number;
  /** Rows per chunk. */
  chunkRows?: number;
  /**
   * What `SHOW GRANTS TO ROLE <name>` answers, per role (upper case): the privileges the
   * role holds, as Snowflake lists them (granted_on TABLE names are DATABASE.SCHEMA.TABLE).
   * The fake does not enforce them: it only reports them (Gatehouse's least-privilege check).
   */
  grants?: Record<string, FakeGrant[]>;
}

export interface FakeGrant {
  privilege: string;
  granted_on: string;
  name: string;
  grant_option?: boolean;
}

export interface RecordedQuery {
  sessionId: number;
  user: string;
  sqlText: string;
  /** The SQL PostgreSQL ran (binds rewritten to $n), or undefined for statements the fake answers itself. */
  pgSql?: string;
  bindings: Array<string | null>;
  /** The QUERY_TAG in force for this statement: the statement's own parameter, else the session's. */
  queryTag: string;
  queryId: string;
}

export interface FakeSnowflake {
  url: string;
  port: number;
  /** Every query-request, in arrival order. */
  queries: RecordedQuery[];
  /** Chunk GETs served, in order (query id and chunk index). */
  chunkFetches: Array<{ queryId: string; index: number }>;
  /** Login attempts (user name, authenticator, accepted?). */
  logins: Array<{ user: string; authenticator: string; ok: boolean }>;
  /** Session tokens renewed through /session/token-request. */
  renewals: number;
  /** "Still running" (333333) answers given: each is one long-poll round of the SDK. */
  pendingAnswers: number;
  /** Live sessions. */
  sessionCount(): number;
  /** Makes every current session token expired: the next request gets 390112 and the SDK renews. */
  expireSessionTokens(): void;
  /**
   * The next statement whose text matches: its first result chunk is cut mid-body (the socket
   * destroyed) and its session ended, so the SDK's retry finds neither. Needs a result larger
   * than inlineRows.
   */
  dropMidResult(pattern: RegExp): void;
  close(): Promise<void>;
}

/** Domains that give PostgreSQL test data Snowflake's type names (run in the test database's "PUBLIC" schema). */
export const SNOWFLAKE_DOMAINS_SQL = `
  CREATE SCHEMA IF NOT EXISTS "PUBLIC";
  DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'PUBLIC' AND t.typname = 'timestamp_ntz') THEN
      CREATE DOMAIN "PUBLIC".timestamp_ntz AS timestamp;
      CREATE DOMAIN "PUBLIC".timestamp_ltz AS timestamptz;
      CREATE DOMAIN "PUBLIC".timestamp_tz AS timestamptz;
      CREATE DOMAIN "PUBLIC".variant AS jsonb;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'PUBLIC' AND t.typname = 'geography') THEN
      CREATE DOMAIN "PUBLIC".geography AS text;
    END IF;
  END $$;`;

interface Session {
  id: number;
  user: string;
  token: string;
  masterToken: string;
  tokenExpired: boolean;
  client: pg.Client;
  pid: number;
  queryTag: string;
  database: string;
  schema: string;
  warehouse: string;
  role: string;
  /** Session parameters set with ALTER SESSION (TIME_OUTPUT_FORMAT...), echoed in every response. */
  params: Map<string, string>;
  /** Domain OID -> domain name, for the Snowflake-named domains. */
  domains: Map<number, string>;
  /** Serialises the session's statements: one PostgreSQL connection runs one at a time. */
  queue: Promise<unknown>;
}

interface QueryResult {
  body: Record<string, unknown>;
  chunks: string[];
}

interface RunningQuery {
  session: Session;
  requestId: string;
  queryId: string;
  done: Promise<QueryResult>;
  result?: QueryResult;
}

const SESSION_PARAMETERS = [
  { name: 'TIMEZONE', value: 'UTC' },
  { name: 'TIMESTAMP_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM' },
  { name: 'TIMESTAMP_NTZ_OUTPUT_FORMAT', value: 'YYYY-MM-DD HH24:MI:SS.FF3' },
  { name: 'TIMESTAMP_LTZ_OUTPUT_FORMAT', value: '' },
  { name: 'TIMESTAMP_TZ_OUTPUT_FORMAT', value: '' },
  { name: 'DATE_OUTPUT_FORMAT', value: 'YYYY-MM-DD' },
  { name: 'TIME_OUTPUT_FORMAT', value: 'HH24:MI:SS' },
  { name: 'BINARY_OUTPUT_FORMAT', value: 'HEX' },
  { name: 'CLIENT_RESULT_CHUNK_SIZE', value: 160 },
  { name: 'CLIENT_SESSION_KEEP_ALIVE', value: false },
  // Above this many bound values the SDK would PUT binds to a stage, which the fake does not serve.
  { name: 'CLIENT_STAGE_ARRAY_BINDING_THRESHOLD', value: 1_000_000_000 },
];

// PostgreSQL SQLSTATE -> Snowflake error code and SQLSTATE (values from the driver's docs and tests;
// shared/reference/snowflake-sdk.md section 4). Anything else: 100000 with PostgreSQL's SQLSTATE.
const ERROR_MAP: Record<string, [string, string]> = {
  '42601': ['001003', '42000'],
  '42P01': ['002003', '42S02'],
  '3F000': ['002003', '02000'],
  '42703': ['000904', '42000'],
  '42883': ['002140', '42601'],
  '42P07': ['002002', '42710'],
  '22012': ['100051', '22012'],
  '22P02': ['100038', '22018'],
  '22003': ['100039', '22003'],
  '23502': ['100072', '22000'],
  '57014': ['000604', '57014'],
  '42501': ['003001', '42501'],
};

export async function startFakeSnowflake(opts: FakeSnowflakeOptions): Promise<FakeSnowflake> {
  const syncWaitMs = opts.syncWaitMs ?? 10_000;
  const inlineRows = opts.inlineRows ?? 1000;
  const chunkRows = opts.chunkRows ?? 4000;
  const sessions = new Map<string, Session>(); // by session token
  const byMaster = new Map<string, Session>();
  const running = new Map<string, RunningQuery>(); // by query id
  const byRequest = new Map<string, RunningQuery>();
  const chunkStore = new Map<string, string[]>();
  let nextSession = 1;
  const queries: RecordedQuery[] = [];
  const chunkFetches: FakeSnowflake['chunkFetches'] = [];
  const logins: FakeSnowflake['logins'] = [];
  let renewals = 0;
  let pendingAnswers = 0;
  let dropPattern: RegExp | undefined;
  /** Query ids whose first chunk is cut (dropMidResult). */
  const dropping = new Set<string>();
  let baseUrl = '';
  // Cancels go through their own connection: the session's is busy with the statement.
  const admin = new pg.Client(opts.pg);
  await admin.connect();

  const users = new Map(Object.entries(opts.users).map(([k, v]) => [k.toUpperCase(), v]));

  async function login(body: Record<string, unknown>, url: URL): Promise<Record<string, unknown>> {
    const data = (body.data ?? {}) as Record<string, unknown>;
    const loginName = String(data.LOGIN_NAME ?? '');
    const authenticator = String(data.AUTHENTICATOR ?? 'SNOWFLAKE').toUpperCase();
    const user = users.get(loginName.toUpperCase());
    let ok = false;
    if (user && authenticator === 'SNOWFLAKE') ok = user.password !== undefined && data.PASSWORD === user.password;
    else if (user && authenticator === 'SNOWFLAKE_JWT' && user.publicKeyPem) {
      ok = verifyJwt(String(data.TOKEN ?? ''), String(data.ACCOUNT_NAME ?? ''), loginName, user.publicKeyPem);
    }
    logins.push({ user: loginName, authenticator, ok });
    if (!ok) return { success: false, code: '390100', message: 'Incorrect username or password was specified.', data: null };
    const client = new pg.Client({ ...opts.pg, types: { getTypeParser: () => (v: string) => v } });
    await client.connect();
    const pid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const schema = foldName(url.searchParams.get('schemaName') || 'PUBLIC');
    await client.query(`SET search_path TO ${pgQuote(schema)}, public`);
    await client.query(`SET TimeZone TO 'UTC'`);
    const domains = new Map<number, string>();
    const d = await client.query(
      `SELECT t.oid, t.typname FROM pg_type t WHERE t.typtype = 'd' AND t.typname IN ('timestamp_ntz', 'timestamp_ltz', 'timestamp_tz', 'variant', 'geography')`,
    );
    for (const r of d.rows) domains.set(Number(r.oid), String(r.typname));
    const session: Session = {
      id: nextSession++,
      user: loginName.toUpperCase(),
      token: `tok-${randomUUID()}`,
      masterToken: `mst-${randomUUID()}`,
      tokenExpired: false,
      client,
      pid,
      queryTag: '',
      database: foldName(url.searchParams.get('databaseName') || 'TEST'),
      schema,
      warehouse: foldName(url.searchParams.get('warehouse') || 'COMPUTE_WH'),
      role: foldName(url.searchParams.get('roleName') || 'PUBLIC'),
      params: new Map(),
      domains,
      queue: Promise.resolve(),
    };
    // A PostgreSQL connection that breaks takes its session down with it (no crash of the fake).
    client.on('error', () => undefined);
    sessions.set(session.token, session);
    byMaster.set(session.masterToken, session);
    return {
      success: true,
      code: null,
      message: null,
      data: {
        token: session.token,
        validityInSeconds: 3600,
        masterToken: session.masterToken,
        masterValidityInSeconds: 14400,
        displayUserName: session.user,
        serverVersion: '9.0.0-fake',
        firstLogin: false,
        remMeToken: null,
        remMeValidityInSeconds: 0,
        healthCheckInterval: 45,
        newClientForUpgrade: null,
        sessionId: session.id,
        parameters: SESSION_PARAMETERS,
        sessionInfo: {
          databaseName: session.database,
          schemaName: session.schema,
          warehouseName: session.warehouse,
          roleName: session.role,
        },
        idToken: null,
        idTokenValidityInSeconds: 0,
        responseData: null,
        mfaToken: null,
        mfaTokenValidityInSeconds: 0,
      },
    };
  }

  function dataFor(session: Session, queryId: string, extra: Record<string, unknown>): Record<string, unknown> {
    const own = [...session.params].map(([name, value]) => ({ name, value }));
    return {
      parameters: [...SESSION_PARAMETERS.filter((p) => !session.params.has(p.name)), ...own],
      queryId,
      finalDatabaseName: session.database,
      finalSchemaName: session.schema,
      finalWarehouseName: session.warehouse,
      finalRoleName: session.role,
      numberOfBinds: 0,
      arrayBindSupported: false,
      version: 1,
      queryResultFormat: 'json',
      ...extra,
    };
  }

  async function runQuery(session: Session, queryId: string, sqlText: string, bindings: Array<string | null>): Promise<QueryResult> {
    // ALTER SESSION SET/UNSET <parameter> is answered by the fake (PostgreSQL has none of Snowflake's
    // parameters): QUERY_TAG is recorded, the output formats are echoed back so the SDK applies them.
    const show = /^\s*show\s+grants\s+to\s+role\s+(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*;?\s*$/i.exec(sqlText);
    if (show) {
      const role = show[1] ?? show[2]!.toUpperCase();
      const cols = ['created_on', 'privilege', 'granted_on', 'name', 'granted_to', 'grantee_name', 'grant_option', 'granted_by'];
      const rows = (opts.grants?.[role] ?? []).map((g) => [
        '2024-01-01 00:00:00.000 +0000',
        g.privilege,
        g.granted_on,
        g.name,
        'ROLE',
        role,
        String(Boolean(g.grant_option)),
        'ACCOUNTADMIN',
      ]);
      return {
        body: {
          success: true,
          data: dataFor(session, queryId, {
            rowtype: cols.map((name) => ({ name, type: 'text', nullable: true, length: 16777216, byteLength: 16777216, precision: null, scale: null })),
            rowset: rows,
            total: rows.length,
            returned: rows.length,
            statementTypeId: 0x1000,
          }),
        },
        chunks: [],
      };
    }
    const set = /^\s*alter\s+session\s+set\s+([a-z_]+)\s*=\s*'((?:[^'\\]|''|\\.)*)'\s*;?\s*$/i.exec(sqlText);
    const unset = /^\s*alter\s+session\s+unset\s+([a-z_]+)\s*;?\s*$/i.exec(sqlText);
    if (set || unset) {
      const name = (set ?? unset)![1].toUpperCase();
      const value = set ? set[2].replace(/''/g, "'").replace(/\\(.)/g, '$1') : '';
      if (name === 'QUERY_TAG') session.queryTag = value;
      else if (set) session.params.set(name, value);
      else session.params.delete(name);
      return {
        body: {
          success: true,
          data: dataFor(session, queryId, {
            rowtype: [{ name: 'status', type: 'text', nullable: true, length: 16777216, byteLength: 16777216, precision: null, scale: null }],
            rowset: [['Statement executed successfully.']],
            total: 1,
            returned: 1,
            statementTypeId: 0x4000,
          }),
        },
        chunks: [],
      };
    }
    try {
      const res = await session.client.query({ text: rewriteBinds(sqlText), values: bindings, rowMode: 'array' });
      return encodeResult(session, queryId, res);
    } catch (e) {
      return { body: errorBody(e as Error & { code?: string }, queryId), chunks: [] };
    }
  }

  /** describeOnly: the statement's columns, from running it under LIMIT 0 with every bind NULL. */
  async function describeQuery(session: Session, queryId: string, sqlText: string): Promise<QueryResult> {
    const text = rewriteBinds(sqlText);
    const count = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
    try {
      const res = await session.client.query({ text: `SELECT * FROM (${text}) AS gh_describe LIMIT 0`, values: Array(count).fill(null), rowMode: 'array' });
      return encodeResult(session, queryId, res);
    } catch (e) {
      return { body: errorBody(e as Error & { code?: string }, queryId), chunks: [] };
    }
  }

  function encodeResult(session: Session, queryId: string, res: pg.QueryResult): QueryResult {
    const command = res.command?.toUpperCase() ?? 'SELECT';
    const dml: Record<string, [number, string]> = {
      INSERT: [0x3100, 'number of rows inserted'],
      UPDATE: [0x3200, 'number of rows updated'],
      DELETE: [0x3300, 'number of rows deleted'],
    };
    if (dml[command]) {
      const [typeId, name] = dml[command];
      return {
        body: {
          success: true,
          data: dataFor(session, queryId, {
            rowtype: [{ name, type: 'fixed', nullable: false, precision: 19, scale: 0, length: null, byteLength: null }],
            rowset: [[String(res.rowCount ?? 0)]],
            total: 1,
            returned: 1,
            statementTypeId: typeId,
          }),
        },
        chunks: [],
      };
    }
    const fields = res.fields ?? [];
    const columns = fields.map((f) => snowflakeColumn(f, session.domains));
    const rows = (res.rows as unknown as Array<Array<string | null>>).map((r) => r.map((v, i) => (v === null ? null : columns[i].encode(v))));
    const inline = rows.slice(0, inlineRows);
    const chunks: string[] = [];
    const chunkMeta: Array<Record<string, unknown>> = [];
    for (let i = inlineRows; i < rows.length; i += chunkRows) {
      const part = rows.slice(i, i + chunkRows);
      // The SDK parses '[' + body + ']': rows without the outer brackets.
      const text = part.map((r) => JSON.stringify(r)).join(',');
      chunkMeta.push({
        url: `${baseUrl}/chunks/${queryId}/${chunks.length}`,
        rowCount: part.length,
        uncompressedSize: text.length,
        compressedSize: text.length,
      });
      chunks.push(text);
    }
    const data: Record<string, unknown> = {
      rowtype: columns.map((c) => c.rowtype),
      rowset: inline,
      total: rows.length,
      returned: rows.length, // all rows of the result, inline and chunked: the SDK stops at returned-1
      statementTypeId: 0x1000,
    };
    if (chunks.length > 0) {
      data.chunks = chunkMeta;
      data.chunkHeaders = { 'x-fake-chunk': queryId };
    }
    return { body: { success: true, data: dataFor(session, queryId, data) }, chunks };
  }

  /** Waits up to syncWaitMs for a query: its body, or the 333333 "still running" answer. */
  async function answerWithin(q: RunningQuery): Promise<Record<string, unknown>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), syncWaitMs);
    });
    const result = await Promise.race([q.done, timeout]);
    clearTimeout(timer);
    if (!result) {
      pendingAnswers++;
      return {
        success: true,
        code: '333333',
        message: 'Query execution in progress. Please wait.',
        data: { queryId: q.queryId, getResultUrl: `/queries/${q.queryId}/result`, queryAbortsAfterSecs: 300, progressDesc: null },
      };
    }
    return result.body;
  }

  function sessionOf(req: http.IncomingMessage): Session | { error: Record<string, unknown> } {
    const m = /Snowflake Token="([^"]*)"/.exec(req.headers.authorization ?? '');
    const s = m ? sessions.get(m[1]) : undefined;
    if (!s) return { error: { success: false, code: '390104', message: 'User must login again to access the service.', data: null } };
    if (s.tokenExpired) return { error: { success: false, code: '390112', message: 'Your session has expired. Please login again.', data: null } };
    return s;
  }

  async function closeSession(s: Session): Promise<void> {
    sessions.delete(s.token);
    byMaster.delete(s.masterToken);
    await s.client.end().catch(() => undefined);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', baseUrl);
    const path = url.pathname;
    const send = (body: unknown, status = 200) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // Chunk GETs carry the chunk headers, not the session token (as from cloud storage).
    const chunk = /^\/chunks\/([^/]+)\/(\d+)$/.exec(path);
    if (req.method === 'GET' && chunk) {
      const list = chunkStore.get(chunk[1]);
      const text = list?.[Number(chunk[2])];
      if (text === undefined || req.headers['x-fake-chunk'] !== chunk[1]) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('no such chunk');
        return;
      }
      chunkFetches.push({ queryId: chunk[1], index: Number(chunk[2]) });
      if (dropping.has(chunk[1])) {
        // Half the body, then the connection goes; the chunks and the session go with it.
        dropping.delete(chunk[1]);
        chunkStore.delete(chunk[1]);
        const q = running.get(chunk[1]);
        if (q) await closeSession(q.session);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(Buffer.byteLength(text)) });
        res.write(text.slice(0, Math.floor(text.length / 2)));
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      }
      // Not application/json: the SDK would JSON.parse the body itself and the chunk would fail.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(text);
      return;
    }
    const body = await readJson(req);
    if (req.method === 'POST' && path === '/session/v1/login-request') return send(await login(body, url));
    if (req.method === 'POST' && path === '/telemetry/send') return send({ success: true });
    if (req.method === 'POST' && path === '/session/token-request') {
      const m = /Snowflake Token="([^"]*)"/.exec(req.headers.authorization ?? '');
      const s = m ? byMaster.get(m[1]) : undefined;
      if (!s || body.requestType !== 'RENEW') return send({ success: false, code: '390114', message: 'Authentication token has expired.', data: null });
      sessions.delete(s.token);
      s.token = `tok-${randomUUID()}`;
      s.tokenExpired = false;
      sessions.set(s.token, s);
      renewals++;
      return send({ success: true, data: { sessionToken: s.token, validityInSecondsST: 3600, masterToken: s.masterToken, validityInSecondsMT: 14400 } });
    }
    const s = sessionOf(req);
    if ('error' in s) return send(s.error);
    if (req.method === 'POST' && path === '/session' && url.searchParams.get('delete') === 'true') {
      await closeSession(s);
      return send({ success: true, data: null });
    }
    if (req.method === 'POST' && path === '/session/heartbeat') return send({ success: true, data: null });
    if (req.method === 'POST' && path === '/queries/v1/query-request') {
      const sqlText = String(body.sqlText ?? '');
      const bindings = bindValues(body.bindings as Record<string, { type: string; value: unknown }> | undefined);
      const params = (body.parameters ?? {}) as Record<string, unknown>;
      const queryId = randomUUID();
      const requestId = url.searchParams.get('requestId') ?? queryId;
      const rec: RecordedQuery = {
        sessionId: s.id,
        user: s.user,
        sqlText,
        bindings,
        queryTag: typeof params.QUERY_TAG === 'string' ? params.QUERY_TAG : s.queryTag,
        queryId,
      };
      if (!/^\s*alter\s+session\s/i.test(sqlText)) rec.pgSql = rewriteBinds(sqlText);
      queries.push(rec);
      if (dropPattern?.test(sqlText)) {
        dropPattern = undefined;
        dropping.add(queryId);
      }
      const q: RunningQuery = { session: s, requestId, queryId, done: undefined as never };
      const prior = s.queue;
      const describeOnly = body.describeOnly === true;
      q.done = prior
        .then(() => (describeOnly ? describeQuery(s, queryId, sqlText) : runQuery(s, queryId, sqlText, bindings)))
        .then((r) => {
          q.result = r;
          if (r.chunks.length > 0) chunkStore.set(queryId, r.chunks);
          return r;
        });
      s.queue = q.done.catch(() => undefined);
      running.set(queryId, q);
      byRequest.set(requestId, q);
      return send(await answerWithin(q));
    }
    const result = /^\/queries\/([^/]+)\/result$/.exec(path);
    if (req.method === 'GET' && result) {
      const q = running.get(result[1]);
      if (!q || q.session !== s)
        return send({ success: false, code: '000709', message: `Statement ${result[1]} not found`, data: { sqlState: '02000', queryId: result[1] } });
      return send(await answerWithin(q));
    }
    // /queries/v1/abort-request names the statement by requestId; /queries/<queryId>/abort-request by its id.
    const abortById = path === '/queries/v1/abort-request' ? null : /^\/queries\/([^/]+)\/abort-request$/.exec(path);
    if (req.method === 'POST' && (abortById || path === '/queries/v1/abort-request')) {
      const q = abortById ? running.get(abortById[1]) : byRequest.get(String(body.requestId ?? ''));
      if (q && q.session === s && !q.result) await admin.query('SELECT pg_cancel_backend($1)', [s.pid]);
      return send({ success: true, data: null });
    }
    send({ success: false, code: '390400', message: `the fake Snowflake does not serve ${req.method} ${path}`, data: null });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      // Never a 5xx: the SDK retries those for minutes. A fault of the fake is a failed operation.
      if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ success: false, code: '390399', message: `fake Snowflake fault: ${e.message}`, data: null }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: baseUrl,
    port,
    queries,
    chunkFetches,
    logins,
    get renewals() {
      return renewals;
    },
    get pendingAnswers() {
      return pendingAnswers;
    },
    sessionCount: () => sessions.size,
    expireSessionTokens() {
      for (const s of sessions.values()) s.tokenExpired = true;
    },
    dropMidResult(pattern: RegExp) {
      dropPattern = pattern;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      for (const s of [...sessions.values()]) await closeSession(s);
      await admin.end().catch(() => undefined);
    },
  };
}

/** Snowflake's folding of an unquoted name (upper case); a "quoted" one keeps its case. */
function foldName(name: string): string {
  const q = /^"(.*)"$/.exec(name);
  return q ? q[1].replace(/""/g, '"') : name.toUpperCase();
}

function pgQuote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  let buf = Buffer.concat(parts);
  if (buf.length === 0) return {};
  // The SDK may or may not gzip a body (and its header may not say so): sniff the magic bytes.
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  return JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
}

function bindValues(b: Record<string, { type: string; value: unknown }> | undefined): Array<string | null> {
  if (!b) return [];
  const out: Array<string | null> = [];
  for (const [k, v] of Object.entries(b)) {
    const i = Number(k) - 1;
    if (Array.isArray(v.value)) throw new Error('array binds are not served by the fake Snowflake');
    out[i] =
      v.value === null || v.value === undefined
        ? null
        : v.type === 'BOOLEAN'
          ? String(v.value).toLowerCase() === 'true' || v.value === '1'
            ? 'true'
            : 'false'
          : String(v.value);
  }
  return out;
}

/**
 * `?` (numbered in order) and `:n` placeholders -> `$n`, outside string literals ('...', $$...$$),
 * quoted names and comments; `::` casts are left alone.
 */
export function rewriteBinds(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; ) {
    const c = sql[i];
    const two = sql.slice(i, i + 2);
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (two === '$$') {
      const end = sql.indexOf('$$', i + 2);
      const j = end < 0 ? sql.length : end + 2;
      out += sql.slice(i, j);
      i = j;
    } else if (two === '--') {
      const end = sql.indexOf('\n', i);
      const j = end < 0 ? sql.length : end;
      out += sql.slice(i, j);
      i = j;
    } else if (two === '/*') {
      const end = sql.indexOf('*/', i + 2);
      const j = end < 0 ? sql.length : end + 2;
      out += sql.slice(i, j);
      i = j;
    } else if (two === '::') {
      out += two;
      i += 2;
    } else if (c === '?') {
      out += `$${++n}`;
      i++;
    } else if (c === ':' && /[0-9]/.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (/[0-9]/.test(sql[j] ?? '')) j++;
      out += `$${sql.slice(i + 1, j)}`;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function errorBody(e: Error & { code?: string; position?: string }, queryId: string): Record<string, unknown> {
  const pgState = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : 'XX000';
  const [code, sqlState] = ERROR_MAP[pgState] ?? ['100000', pgState];
  const message = pgState === '57014' ? 'SQL execution canceled' : e.message;
  return {
    success: false,
    code,
    message,
    data: { sqlState, errorCode: code, queryId, internalError: false, line: -1, pos: Number(e.position ?? -1), type: 'COMPILATION', pgSqlState: pgState },
  };
}

interface SnowflakeColumn {
  rowtype: Record<string, unknown>;
  encode(pgText: string): string;
}

const identity = (v: string) => v;

/** A PostgreSQL result column as Snowflake's rowtype, and how its text becomes Snowflake's JSON rowset value. */
function snowflakeColumn(f: pg.FieldDef, domains: Map<number, string>): SnowflakeColumn {
  const base = { name: f.name, database: '', schema: '', table: '', nullable: true, collation: null };
  const mod = f.dataTypeModifier;
  const domain = domains.get(f.dataTypeID);
  const col = (type: string, extra: Record<string, unknown>, encode: (v: string) => string): SnowflakeColumn => ({
    rowtype: { ...base, type, precision: null, scale: null, length: null, byteLength: null, ...extra },
    encode,
  });
  if (domain === 'timestamp_ntz') return col('timestamp_ntz', { scale: 9, precision: 0 }, epochText);
  if (domain === 'timestamp_ltz') return col('timestamp_ltz', { scale: 9, precision: 0 }, epochText);
  // timestamp_tz: "<epoch seconds> <offset minutes + 1440>"; PostgreSQL keeps no offset, the session is UTC.
  if (domain === 'timestamp_tz') return col('timestamp_tz', { scale: 9, precision: 0 }, (v) => `${epochText(v)} 1440`);
  if (domain === 'variant') return col('variant', { length: 16777216, byteLength: 16777216 }, identity);
  // GEOGRAPHY: Snowflake sends its GeoJSON (GEOGRAPHY_OUTPUT_FORMAT's default) as the value's text.
  if (domain === 'geography') return col('geography', {}, identity);
  switch (f.dataTypeID) {
    case 20:
    case 21:
    case 23:
    case 26:
      return col('fixed', { precision: 38, scale: 0 }, identity);
    case 1700: {
      const p = mod >= 4 ? ((mod - 4) >> 16) & 0xffff : 38;
      const s = mod >= 4 ? (mod - 4) & 0xffff : 0;
      // Unconstrained numeric: Snowflake would have a declared scale; report the text as it is.
      if (mod < 4) return col('text', { length: 16777216, byteLength: 16777216 }, identity);
      return col('fixed', { precision: p, scale: s }, identity);
    }
    case 700:
    case 701:
      return col('real', {}, identity);
    case 16:
      return col('boolean', {}, (v) => (v === 't' ? '1' : '0'));
    case 1082:
      return col('date', {}, (v) => String(Math.round(Date.parse(`${v}T00:00:00Z`) / 86_400_000)));
    case 1083:
      return col('time', { scale: 9, precision: 0 }, timeText);
    case 1114:
      return col('timestamp_ntz', { scale: 9, precision: 0 }, epochText);
    case 1184:
      return col('timestamp_ltz', { scale: 9, precision: 0 }, epochText);
    case 17:
      return col('binary', { length: 8388608, byteLength: 8388608 }, (v) => v.replace(/^\\x/, '').toUpperCase());
    case 114:
    case 3802:
      return col('variant', { length: 16777216, byteLength: 16777216 }, identity);
    case 1043:
    case 1042:
    case 25:
    case 19: {
      const len = mod >= 4 ? mod - 4 : 16777216;
      return col('text', { length: len, byteLength: len * 4 }, identity);
    }
    default:
      // uuid, interval, arrays, timetz...: text, as Snowflake has no such type.
      return col('text', { length: 16777216, byteLength: 16777216 }, identity);
  }
}

/** 'HH:MM:SS[.ffffff]' -> seconds since midnight with 9 fractional digits. */
function timeText(v: string): string {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(v);
  if (!m) return v;
  const secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  return `${secs}.${(m[4] ?? '').padEnd(9, '0')}`;
}

/** A PostgreSQL timestamp text (session TimeZone UTC) -> epoch seconds with 9 fractional digits, exactly. */
function epochText(v: string): string {
  const m = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[+-]\d{2}(?::?\d{2})?)?$/.exec(v);
  if (!m) return v;
  const days = BigInt(Math.round(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000));
  const secs = days * 86400n + BigInt(Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]));
  const nanos = secs * 1_000_000_000n + BigInt((m[7] ?? '').padEnd(9, '0'));
  const neg = nanos < 0n;
  const abs = neg ? -nanos : nanos;
  return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${String(abs % 1_000_000_000n).padStart(9, '0')}`;
}

/** Verifies the SDK's key-pair JWT: RS256 by the registered key, iss/sub naming this account and user, not expired. */
function verifyJwt(token: string, account: string, loginName: string, publicKeyPem: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const [h, p, sig] = parts;
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    if (header.alg !== 'RS256') return false;
    const key = createPublicKey(publicKeyPem);
    if (!verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url'))) return false;
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const fp = `SHA256:${createHash('sha256')
      .update(key.export({ format: 'der', type: 'spki' }))
      .digest('base64')}`;
    const subject = `${account.toUpperCase()}.${loginName.toUpperCase()}`;
    // The SDK writes iat/exp in milliseconds (auth_keypair.js); accept seconds too.
    const exp = Number(payload.exp);
    const expMs = exp > 1e12 ? exp : exp * 1000;
    return payload.iss === `${subject}.${fp}` && payload.sub === subject && expMs > Date.now();
  } catch {
    return false;
  }
}
