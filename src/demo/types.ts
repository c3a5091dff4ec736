// What the demo loaders take and give: one database per embedded connection of the rules.
import { randomBytes } from 'node:crypto';
import type { Topic } from '../config/model.ts';
import { GatehouseError, type SqlState } from '../errors.ts';
import type { DemoDatabase, WarehouseUrl } from './warehouse-url.ts';

export interface DemoLoad extends DemoDatabase {
  /** The connection's seed files (absolute paths): PostgreSQL SQL, as the embedded warehouse runs them. */
  seed: string[];
  /** The connection's topics: the topics account may read their fields and nothing else. */
  topics: Topic[];
  allowWrites: boolean;
}

/** The new accounts' passwords for one database: sealed into the generated rules at once, never written in clear. */
export interface DemoPasswords {
  querier: string;
  topics: string;
}

/**
 * How the demo recognises what it made (a database's or role's comment on PostgreSQL, a table
 * on MySQL): a database that exists without it, and is not empty, is never replaced.
 */
export const DEMO_MARKER = 'made by gatehouse serve --demo --warehouse; replaced at every such start';
/** The MySQL marker table (MySQL has no database comments); no account is granted it. */
export const MYSQL_MARKER_TABLE = '_gatehouse_demo';

/** base64url: safe inside a SQL string literal of either engine. */
export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

/** A failure of the set-up, naming the warehouse without its password. */
export function setupError(url: WarehouseUrl, what: string, opts: { detail?: string; hint?: string; sqlstate?: SqlState } = {}): GatehouseError {
  return new GatehouseError(opts.sqlstate ?? '08001', `--warehouse ${url.redacted}: ${what}`, {
    ...(opts.detail === undefined ? {} : { detail: scrub(opts.detail, url) }),
    ...(opts.hint === undefined ? {} : { hint: opts.hint }),
  });
}

/** A message from a driver or server, with the admin password taken out should it ever appear. */
export function scrub(text: string, url: WarehouseUrl): string {
  return url.password ? text.split(url.password).join('***') : text;
}
