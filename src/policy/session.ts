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
}

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
  const connection = org.connections.get(connectionName);
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
    context: {
      org: org.name,
      user: user.email,
      level,
      attributes: user.attributes,
      connection: { name: connection.name, allowWrites: connection.allow_writes, topicsSchema: connection.topics_schema },
      topics: topicsFor(org, connection.name),
    },
  };
}

function unknownConnection(name: string, org: Org, user: User): GatehouseError {
  const usable = [...org.connections.values()].filter((c) => effectiveLevel(user, c).level !== 'no_access').map((c) => c.name);
  return new GatehouseError('3D000', `connection "${name}" does not exist in organization ${org.name}`, {
    severity: 'FATAL',
    hint: usable.length
      ? `connections you can use: ${usable.sort().join(', ')} (the database name is the connection)`
      : 'you have no connections; ask an org admin for a grant',
  });
}
