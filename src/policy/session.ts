// Who a signed-in person is on the connection they asked for: the decision
// context every statement of the session is decided in, or the refusal at
// startup (3D000 unknown connection, 42501 no_access). Shared by the server
// and by `gatehouse check` / `gatehouse explain`, so both refuse alike.
import { topicsOf } from '../config/load.ts';
import type { Connection, Org, Topic, User } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import type { DecisionContext } from './decision.ts';
import { effectiveLevel } from './levels.ts';

export interface SessionPolicy {
  connection: Connection;
  context: DecisionContext;
  /** Which grant gave the level (logs, explain). */
  levelSource: string;
  /** The database name the client asked for when it was a maintenance database (postgres, template1) standing for the connection. */
  requested?: string;
}

/**
 * Database names that clients and tools connect to before they know any other (pgcli -l,
 * DBeaver, Metabase's and Superset's connection tests, libpq's default when PGDATABASE is
 * the user name's `postgres`): PostgreSQL's maintenance databases. One stands for the
 * person's connection when they can use exactly one; otherwise it is unknown (3D000).
 */
export const MAINTENANCE_DATABASES: ReadonlySet<string> = new Set(['postgres', 'template1']);

// One topics map per (org, connection) for the life of the rules: the decision cache keys on it.
const topicMaps = new WeakMap<Org, Map<string, Map<string, Topic>>>();
function topicsFor(org: Org, connection: string): Map<string, Topic> {
  let byConn = topicMaps.get(org);
  if (!byConn) topicMaps.set(org, (byConn = new Map()));
  let topics = byConn.get(connection);
  if (!topics) byConn.set(connection, (topics = topicsOf(org, connection)));
  return topics;
}

/** Throws a FATAL GatehouseError when the person may not use the connection. */
export function sessionPolicy(org: Org, user: User, connectionName: string): SessionPolicy {
  let connection = org.connections.get(connectionName);
  let requested: string | undefined;
  if (!connection && MAINTENANCE_DATABASES.has(connectionName)) {
    const usable = usableConnections(org, user);
    if (usable.length === 1) {
      connection = usable[0];
      requested = connectionName;
    }
  }
  if (!connection) throw unknownConnection(connectionName, org, user);
  const { level, source } = effectiveLevel(user, connection);
  if (level === 'no_access') {
    throw new GatehouseError('42501', `you have no access to connection "${connection.name}" of ${org.name}`, {
      severity: 'FATAL',
      hint: `ask an admin of ${org.name} to grant you query_topics or higher on "${connection.name}"`,
    });
  }
  return {
    connection,
    levelSource: source,
    ...(requested ? { requested } : {}),
    context: {
      org: org.name,
      user: user.email,
      level,
      attributes: user.attributes,
      connection: {
        name: connection.name,
        allowWrites: connection.allow_writes,
        topicsSchema: connection.topics_schema,
        ...(connection.target.kind === 'mysql' || connection.target.kind === 'snowflake' ? { dialect: connection.target.kind } : {}),
      },
      topics: topicsFor(org, connection.name),
    },
  };
}

function usableConnections(org: Org, user: User): Connection[] {
  return [...org.connections.values()].filter((c) => effectiveLevel(user, c).level !== 'no_access');
}

function unknownConnection(name: string, org: Org, user: User): GatehouseError {
  const usable = usableConnections(org, user).map((c) => c.name);
  const maintenance = MAINTENANCE_DATABASES.has(name) && usable.length > 1 ? `; "${name}" stands for your connection only when you can use exactly one` : '';
  return new GatehouseError('3D000', `connection "${name}" does not exist in organization ${org.name}`, {
    severity: 'FATAL',
    hint: usable.length
      ? `connections you can use: ${usable.sort().join(', ')} (the database name is the connection)${maintenance}`
      : 'you have no connections; ask an org admin for a grant',
  });
}
