// Gatehouse's statement timeout: a deadline kept here, outside the warehouse session, so a
// client cannot lift it (a querier may SET statement_timeout upstream; that changes only the
// warehouse's own). It runs from a Query, or from the first message of an extended exchange,
// until the ReadyForQuery that ends it (PostgreSQL's statement_timeout also spans an extended
// exchange up to Sync). At the deadline `expire` cancels the statement on the warehouse, which
// ends it with 57014 (relayed as Gatehouse's "canceling statement due to statement timeout").
import type { ServerSession } from '../wire/handler.ts';

export function withStatementDeadline(session: ServerSession, ms: number, expire: () => void): ServerSession {
  if (ms <= 0) return session;
  let timer: NodeJS.Timeout | undefined;
  /** Armed (or fired) since the first message after the last ReadyForQuery. */
  let running = false;
  /** An extended exchange is open: a Query before its Sync does not end the deadline. */
  let exchange = false;
  const start = () => {
    if (running) return;
    running = true;
    timer = setTimeout(expire, ms);
    timer.unref();
  };
  const end = () => {
    clearTimeout(timer);
    timer = undefined;
    running = false;
  };
  return {
    ...session,
    query: async (sql, sink) => {
      start();
      try {
        return await session.query(sql, sink);
      } finally {
        if (!exchange) end();
      }
    },
    extended: (msg, sink) => {
      exchange = true;
      start();
      return session.extended(msg, sink);
    },
    flush: (sink) => {
      exchange = true;
      start();
      return session.flush(sink);
    },
    sync: async (sink) => {
      start();
      try {
        return await session.sync(sink);
      } finally {
        exchange = false;
        end();
      }
    },
    close: () => {
      end();
      return session.close();
    },
  };
}
