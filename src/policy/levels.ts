// A person's level on a connection (DESIGN section 1): the highest of the
// connection's default, each of their groups' grants and their own grant.
// A union: any grant raises, none lowers. Org admins are connection_admin.
import { type Connection, type Level, type User, levelRank } from '../config/model.ts';

export interface LevelReason {
  level: Level;
  /** Which grant gave the level, for logs and `gatehouse explain`. */
  source: string;
}

export function effectiveLevel(user: User, connection: Connection): LevelReason {
  if (user.role === 'admin') return { level: 'connection_admin', source: 'org admin' };
  let best: LevelReason = { level: connection.permissions.default, source: 'connection default' };
  const consider = (level: Level | undefined, source: string) => {
    if (level && levelRank(level) > levelRank(best.level)) best = { level, source };
  };
  for (const group of user.groups) consider(connection.permissions.groups[group], `group ${group}`);
  consider(connection.permissions.users[user.email], 'user grant');
  return best;
}
