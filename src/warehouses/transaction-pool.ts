// Transaction pooling (issue 17, `pooling: transaction` in a connection file): a client
// session holds no upstream between transactions. It borrows one from the pool (pool.ts) for
// its first statement after ReadyForQuery 'I' and gives it back at the next ReadyForQuery
// 'I', so 150 clients can share 20 warehouse connections.
//
// What a client keeps across transactions is its prepared statements: Gatehouse keeps them
// (name, text as policy decided it, parameter types) and prepares each on whichever upstream
// runs it, under an upstream name of its own (gh_<hash of text and types>), so two clients'
// "S_1" never collide and clients preparing the same text share it. A Bind or Describe of a
// statement the borrowed upstream lacks is preceded by a Parse Gatehouse adds (its
// ParseComplete swallowed: UpstreamConnection.injected); a client's Parse of a text already
// prepared there is preceded by a Close of it, so PostgreSQL answers the client's Parse
// itself, in order. Everything else is relayed byte for byte, as in session pooling.
//
// Session state that would outlive the transaction and reach the next client (SET without
// LOCAL, LISTEN, WITH HOLD cursors, SQL PREPARE, temporary tables) is refused by policy before
// it runs (sessionStateRefusal, used by statements/session.ts), with 0A000 naming transaction
// pooling: PgBouncer breaks such sessions silently. Advisory locks are refused at every level.
import { createHmac, randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import { parseSqlSync } from '../sql/parse.ts';
import { isDiscardAll } from '../sql/session-statement.ts';
import type { ExtendedStep } from '../wire/messages.ts';
import type { ResultSink } from '../wire/sink.ts';
import type { UpstreamPool } from './pool.ts';
import { PostgresSession, type UpstreamConnection } from './pg-connection.ts';
import type { ResultLimit, RunOutcome, TxStatus, WarehouseSession, WarehouseStatement } from './types.ts';

/** A client's prepared statement: what it asked to prepare, and the name it has upstream. */
interface ClientStatement {
  text: string;
  paramTypes: number[];
  upstream: string;
}

interface Lease {
  conn: UpstreamConnection;
  session: PostgresSession;
  /** Upstream names parsed in the running exchange: unknown whether they exist if it fails. */
  parsed: string[];
  /** A CancelRequest sent for this lease's statement: resolves once the warehouse has taken it. */
  cancelling?: Promise<void>;
}

/**
 * Keys the upstream names: a client cannot work out the name another client's statement has
 * upstream (an outside review computed one from the rewritten text and ran it), whatever else
 * goes wrong. Per process: the names live only as long as its upstream connections.
 */
const NAME_KEY = randomBytes(32);

/** The upstream name of a statement: the same text and parameter types share one, whoever prepared it. */
export function upstreamStatementName(text: string, paramTypes: readonly number[]): string {
  return `gh_${createHmac('sha256', NAME_KEY)
    .update(`${paramTypes.join(',')}\0${text}`)
    .digest('hex')
    .slice(0, 24)}`;
}

/**
 * What a Bind or Describe of a name this client never prepared (or lost to DISCARD ALL) names
 * upstream: a name no statement has (upstream names are gh_ and hex), so PostgreSQL answers
 * 26000. A client's own name never goes up, as it could be another client's upstream name.
 */
const NOT_PREPARED = 'gatehouse: not prepared by this client';

export class TransactionSession implements WarehouseSession {
  private lease?: Lease;
  private readonly statements = new Map<string, ClientStatement>();
  /** The client's unnamed statement (Parse ''), re-prepared on an upstream that does not hold it. */
  private unnamed?: ClientStatement;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly key: string,
    private readonly open: () => Promise<UpstreamConnection>,
    /** The org's result limits, counted on every run of this session whichever upstream runs it. */
    private readonly limit?: ResultLimit,
  ) {}

  get serverVersion(): string | undefined {
    return this.pool.serverVersion;
  }

  /** Between transactions the client is at rest ('I') and holds nothing. */
  get txStatus(): TxStatus {
    return this.lease?.conn.txStatus ?? 'I';
  }

  get inExtended(): boolean {
    return this.lease?.session.inExtended ?? false;
  }

  async run(statements: WarehouseStatement[], sink: ResultSink): Promise<RunOutcome> {
    const lease = await this.borrow();
    try {
      // A simple Query drops the upstream's unnamed statement (PostgreSQL's exec_simple_query).
      lease.conn.unnamedOwner = undefined;
      // The client forgets its statements at a DISCARD ALL whether it then runs or fails, as
      // policy's tables do (statements/session.ts routeNames): both must agree on every name.
      if (statements.some((s) => s.kind === 'discard' && isDiscardAll(s.sql))) this.forgetStatements(lease.conn);
      return await lease.session.run(statements, sink);
    } finally {
      this.settle();
    }
  }

  async sendExtended(steps: ExtendedStep[], sink: ResultSink, flush: boolean): Promise<void> {
    const lease = await this.borrow();
    try {
      await lease.session.sendExtended(this.rewrite(lease, steps), sink, flush);
    } catch (e) {
      this.settle();
      throw e;
    }
  }

  syncExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    return this.end(steps, sink, (l, rewritten) => l.session.syncExtended(rewritten, sink));
  }

  abortExtended(steps: ExtendedStep[], sink: ResultSink): Promise<RunOutcome> {
    return this.end(steps, sink, (l, rewritten) => l.session.abortExtended(rewritten, sink));
  }

  /** LISTEN is refused under transaction pooling: no notification has anywhere to come from. */
  onNotification(): void {}

  /**
   * A client's CancelRequest goes to the upstream running its statement, if any; a client that
   * cancels between statements cancels nothing. The upstream goes back to the pool only once
   * the warehouse has taken the cancel (its cancel connection closed: the signal is sent), so
   * a cancel that crosses the statement's end finds the backend idle, where PostgreSQL ignores
   * it, and never reaches the next borrower's statement (as it does through PgBouncer: an
   * outside review cancelled 194 of another client's 277 statements that way).
   */
  cancel(): Promise<void> {
    const lease = this.lease;
    if (!lease) return Promise.resolve();
    const sent = lease.session.cancel();
    lease.cancelling = sent;
    return sent;
  }

  /** The client left: an upstream lent to an unfinished transaction is closed (its transaction rolled back), else returned. */
  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease) this.giveBack(lease, lease.conn.usable && lease.conn.txStatus === 'I' && !lease.session.inExtended);
  }

  /** Back to the pool (or closed), once a cancel sent for the lease has landed. */
  private giveBack(lease: Lease, reusable: boolean): void {
    if (!lease.cancelling) {
      this.pool.release(lease.conn, this.key, reusable);
      return;
    }
    void lease.cancelling.then(() => this.pool.release(lease.conn, this.key, reusable && lease.conn.usable));
  }

  private async end(steps: ExtendedStep[], _sink: ResultSink, finish: (l: Lease, rewritten: ExtendedStep[]) => Promise<RunOutcome>): Promise<RunOutcome> {
    const lease = await this.borrow();
    try {
      const outcome = await finish(lease, this.rewrite(lease, steps));
      if (outcome.error) {
        // Some message failed and PostgreSQL skipped the rest: what this exchange parsed may not exist.
        for (const name of lease.parsed) lease.conn.prepared.delete(name);
        lease.conn.unnamedOwner = undefined;
        for (const name of lease.parsed) lease.conn.prepared.add(`?${name}`);
      }
      lease.parsed = [];
      return outcome;
    } finally {
      this.settle();
    }
  }

  /**
   * At a DISCARD ALL (parsed or run): the client's statements are forgotten, as policy's tables
   * forget them. Whether the upstream's are gone is not known until it runs (a Parse of it may
   * never be executed): each may exist, so a Parse of it is preceded by a Close (the client's
   * next Parse of the same text got 42P05 when they were taken for gone).
   */
  private forgetStatements(conn: UpstreamConnection): void {
    for (const name of [...conn.prepared]) {
      if (name.startsWith('?')) continue;
      conn.prepared.delete(name);
      conn.prepared.add(`?${name}`);
    }
    conn.unnamedOwner = undefined;
    this.statements.clear();
    this.unnamed = undefined;
  }

  private async borrow(): Promise<Lease> {
    if (this.lease) return this.lease;
    const { conn } = await this.pool.acquire(this.key, this.open);
    conn.injected ??= { parse: [], close: [] };
    this.lease = { conn, session: new PostgresSession(conn, undefined, this.limit), parsed: [] };
    return this.lease;
  }

  /** After a ReadyForQuery: the upstream goes back once the transaction is over (or is closed if it died). */
  private settle(): void {
    const lease = this.lease;
    if (!lease || lease.session.inExtended) return;
    const usable = lease.conn.usable;
    if (usable && lease.conn.txStatus !== 'I') return;
    this.lease = undefined;
    this.giveBack(lease, usable);
  }

  /** The client's messages with statement names as they are upstream, and the Parses (and Closes) that must come first. */
  private rewrite(lease: Lease, steps: ExtendedStep[]): ExtendedStep[] {
    const { conn } = lease;
    const out: ExtendedStep[] = [];
    const push = (m: ExtendedStep, added = false) => {
      if (m.type === 'Parse') conn.injected!.parse.push(added);
      if (m.type === 'Close') conn.injected!.close.push(added);
      out.push(m);
    };
    // Before a Parse of `name`: a Close when it exists there (or may: '?name', after a failed exchange).
    const clear = (name: string) => {
      if (conn.prepared.has(name) || conn.prepared.has(`?${name}`)) push({ type: 'Close', kind: 'S', name }, true);
      conn.prepared.delete(`?${name}`);
    };
    // A Bind or Describe of a client statement: prepared on this upstream first if it is not there.
    const ensure = (name: string): string => {
      if (name === '') {
        const st = this.unnamed;
        if (st && conn.unnamedOwner !== st) {
          push({ type: 'Parse', name: '', query: st.text, paramTypes: st.paramTypes }, true);
          conn.unnamedOwner = st;
        }
        return '';
      }
      const st = this.statements.get(name);
      if (!st) return NOT_PREPARED;
      if (!conn.prepared.has(st.upstream)) {
        clear(st.upstream);
        push({ type: 'Parse', name: st.upstream, query: st.text, paramTypes: st.paramTypes }, true);
        conn.prepared.add(st.upstream);
        lease.parsed.push(st.upstream);
      }
      return st.upstream;
    };
    for (const m of steps) {
      switch (m.type) {
        case 'Parse': {
          if (isDiscardAll(m.query)) this.forgetStatements(conn);
          const st: ClientStatement = {
            text: m.query,
            paramTypes: [...m.paramTypes],
            upstream: m.name === '' ? '' : upstreamStatementName(m.query, m.paramTypes),
          };
          if (m.name === '') {
            this.unnamed = st;
            conn.unnamedOwner = st;
            push(m);
            break;
          }
          const existing = this.statements.get(m.name);
          if (existing && conn.prepared.has(existing.upstream)) {
            // PostgreSQL's 42P05 for a name in use: let the upstream say it (under Gatehouse's name).
            push({ ...m, name: existing.upstream });
            break;
          }
          this.statements.set(m.name, st);
          clear(st.upstream);
          push({ ...m, name: st.upstream });
          conn.prepared.add(st.upstream);
          lease.parsed.push(st.upstream);
          break;
        }
        case 'Bind':
          // ensure() may add a Parse: it must go before the Bind.
          {
            const name = ensure(m.statement);
            push({ ...m, statement: name });
          }
          break;
        case 'Describe':
          if (m.kind === 'S') {
            const name = ensure(m.name);
            push({ ...m, name });
          } else push(m);
          break;
        case 'Close': {
          if (m.kind === 'S' && m.name !== '') {
            const st = this.statements.get(m.name);
            // A name this client never prepared: PostgreSQL's CloseComplete for a name that does not exist.
            if (!st) {
              push({ ...m, name: NOT_PREPARED });
              break;
            }
            this.statements.delete(m.name);
            conn.prepared.delete(st.upstream);
            push({ ...m, name: st.upstream });
          } else push(m);
          break;
        }
        case 'Execute':
          push(m);
          break;
      }
    }
    return out;
  }
}

/** PostgreSQL's CURSOR_OPT_HOLD (parsenodes.h): DECLARE ... WITH HOLD. */
const CURSOR_OPT_HOLD = 0x0020;

/**
 * Why a statement cannot run on a transaction-pooled connection, or undefined: state it
 * leaves in the upstream session would outlive the transaction, reach whichever client
 * borrows that connection next, and be missing from this client's next transaction.
 * `sql` is what Gatehouse forwards (policy already decided it); it parses, as it did.
 */
export function sessionStateRefusal(connection: string, sql: string): GatehouseError | undefined {
  let what: string | undefined;
  for (const { stmt } of parseSqlSync(sql).statements) {
    what ??= sessionState(stmt);
  }
  if (!what) return undefined;
  return new GatehouseError(
    '0A000',
    `${what} is not supported on connection "${connection}": it uses transaction pooling, so session state does not survive the transaction`,
    {
      detail: 'each transaction may run on a different warehouse connection, shared with other clients',
      hint: 'use SET LOCAL inside a transaction, a startup parameter, or a connection with pooling: session',
    },
  );
}

// biome-ignore lint/suspicious/noExplicitAny: a libpg-query AST node, loose on purpose (src/sql/parse.ts AstNode)
function sessionState(stmt: Record<string, any>): string | undefined {
  if (stmt.VariableSetStmt) {
    const s = stmt.VariableSetStmt;
    if (s.is_local || s.kind === 'VAR_RESET' || s.kind === 'VAR_RESET_ALL') return undefined;
    if (s.kind === 'VAR_SET_MULTI' && s.name === 'TRANSACTION') return undefined;
    return s.kind === 'VAR_SET_MULTI' ? `SET ${s.name}` : `SET ${s.name} (without LOCAL)`;
  }
  if (stmt.ListenStmt) return 'LISTEN';
  if (stmt.DeclareCursorStmt && (stmt.DeclareCursorStmt.options ?? 0) & CURSOR_OPT_HOLD) return 'DECLARE ... WITH HOLD';
  if (stmt.PrepareStmt) return 'PREPARE';
  if (stmt.ExecuteStmt) return 'EXECUTE of a prepared statement';
  if (stmt.DeallocateStmt) return 'DEALLOCATE';
  const temp = (rel: { relpersistence?: string } | undefined) => rel?.relpersistence === 't';
  if (stmt.CreateStmt && temp(stmt.CreateStmt.relation) && stmt.CreateStmt.oncommit !== 'ONCOMMIT_DROP') return 'a temporary table';
  if (stmt.CreateTableAsStmt && temp(stmt.CreateTableAsStmt.into?.rel) && stmt.CreateTableAsStmt.into?.onCommit !== 'ONCOMMIT_DROP') return 'a temporary table';
  if (stmt.LoadStmt) return 'LOAD';
  return undefined;
}
