// Least privilege for mysql warehouse accounts (DESIGN 3), against real MariaDB users with real grants.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, MysqlConnection, Topic } from '../../../src/config/model.ts';
import { GatehouseError } from '../../../src/errors.ts';
import { MysqlWarehouse } from '../../../src/warehouses/mysql.ts';
import { freshMariadbDatabase, mariadbRun } from '../../helpers/mariadb.ts';

const DB = 'gatehouse_mysql_accounts_test';
const PW = 'gh-ma-pw-7';
process.env.GH_MA_PW = PW;

const USERS = [
  'gh_ma_ok',
  'gh_ma_file',
  'gh_ma_super',
  'gh_ma_grantopt',
  'gh_ma_all',
  'gh_ma_write',
  'gh_ma_global',
  'gh_ma_process',
  'gh_ma_mysqldb',
  'gh_ma_role',
];
const TOPICS_USERS = ['gh_ma_t_ok', 'gh_ma_t_table', 'gh_ma_t_extra', 'gh_ma_t_other', 'gh_ma_t_missing', 'gh_ma_t_insert'];

const ORDERS: Topic = {
  name: 'orders',
  org: 'acme',
  connection: 'mywh',
  base: { schema: 'public', table: 'orders' },
  fields: ['id', 'amount', 'region'],
  access_filters: [{ field: 'region', attribute: 'region', values_for_unfiltered: [] }],
};

function connection(target: Partial<MysqlConnection>, allowWrites = false): Connection {
  return {
    name: 'mywh',
    org: 'acme',
    target: {
      kind: 'mysql',
      host: '127.0.0.1',
      port: 3306,
      database: DB,
      user: 'gh_ma_ok',
      password_env: 'GH_MA_PW',
      allow_superuser: false,
      allow_topics_privileges: false,
      ...target,
    },
    allow_writes: allowWrites,
    permissions: { default: 'no_access', groups: {}, users: {} },
    topics_schema: 'topics',
  };
}

async function start(target: Partial<MysqlConnection>, allowWrites = false, topics: Topic[] = []): Promise<GatehouseError | undefined> {
  const wh = new MysqlWarehouse(connection(target, allowWrites), undefined, topics);
  try {
    await wh.start();
    return undefined;
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  } finally {
    await wh.close();
  }
}

beforeAll(async () => {
  await freshMariadbDatabase(
    DB,
    `CREATE TABLE orders (id INT, amount DECIMAL(10,2), region VARCHAR(10), secret_note TEXT);
     CREATE TABLE people (id INT);`,
    Object.fromEntries([...USERS, ...TOPICS_USERS].map((u) => [u, PW])),
  );
  const db = `\`${DB}\``;
  await mariadbRun(`
    GRANT SELECT ON ${db}.* TO 'gh_ma_ok'@'%';
    GRANT SELECT ON ${db}.* TO 'gh_ma_file'@'%'; GRANT FILE ON *.* TO 'gh_ma_file'@'%';
    GRANT SELECT ON ${db}.* TO 'gh_ma_super'@'%'; GRANT SUPER ON *.* TO 'gh_ma_super'@'%';
    GRANT SELECT ON ${db}.* TO 'gh_ma_grantopt'@'%' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON ${db}.* TO 'gh_ma_all'@'%';
    GRANT SELECT, INSERT, UPDATE, DELETE ON ${db}.* TO 'gh_ma_write'@'%';
    GRANT SELECT ON *.* TO 'gh_ma_global'@'%';
    GRANT SELECT ON ${db}.* TO 'gh_ma_process'@'%'; GRANT PROCESS ON *.* TO 'gh_ma_process'@'%';
    GRANT SELECT ON ${db}.* TO 'gh_ma_mysqldb'@'%'; GRANT SELECT ON mysql.* TO 'gh_ma_mysqldb'@'%';
    DROP ROLE IF EXISTS gh_ma_r; CREATE ROLE gh_ma_r; GRANT SELECT ON ${db}.* TO gh_ma_r; GRANT gh_ma_r TO 'gh_ma_role'@'%'; SET DEFAULT ROLE gh_ma_r FOR 'gh_ma_role'@'%';
    GRANT SELECT (id, amount, region) ON ${db}.orders TO 'gh_ma_t_ok'@'%';
    GRANT SELECT ON ${db}.orders TO 'gh_ma_t_table'@'%';
    GRANT SELECT (id, amount, region, secret_note) ON ${db}.orders TO 'gh_ma_t_extra'@'%';
    GRANT SELECT (id, amount, region) ON ${db}.orders TO 'gh_ma_t_other'@'%'; GRANT SELECT ON ${db}.people TO 'gh_ma_t_other'@'%';
    GRANT SELECT (id, amount) ON ${db}.orders TO 'gh_ma_t_missing'@'%';
    GRANT SELECT (id, amount, region), INSERT (id) ON ${db}.orders TO 'gh_ma_t_insert'@'%';
  `);
});

afterAll(async () => {
  await mariadbRun(`${[...USERS, ...TOPICS_USERS].map((u) => `DROP USER IF EXISTS '${u}'@'%';`).join('\n')} DROP ROLE IF EXISTS gh_ma_r;`);
});

describe('mysql querier account: least privilege at start', () => {
  it('SELECT on the served database is accepted', async () => {
    expect(await start({ user: 'gh_ma_ok' })).toBeUndefined();
  });

  it.each([
    ['gh_ma_file', /holds FILE on \*\.\*/],
    ['gh_ma_super', /holds SUPER on \*\.\*/],
    ['gh_ma_grantopt', /holds GRANT OPTION on gatehouse_mysql_accounts_test\.\*/],
    ['gh_ma_all', /holds ALL PRIVILEGES on gatehouse_mysql_accounts_test\.\*/],
    ['gh_ma_write', /holds INSERT on gatehouse_mysql_accounts_test\.\* \(a write: the connection does not set allow_writes\)/],
    ['gh_ma_global', /holds SELECT on \*\.\* \(every database/],
    ['gh_ma_process', /holds PROCESS on \*\.\*/],
    ['gh_ma_mysqldb', /holds SELECT on mysql\.\* \(a system database\)/],
    ['gh_ma_role', /is granted role gh_ma_r/],
  ])('%s is refused with 42501 naming the connection, the account and the privilege', async (user, why) => {
    const err = await start({ user });
    expect(err?.sqlstate).toBe('42501');
    expect(err?.message).toContain(`"${user}" of connection "mywh"`);
    expect(err?.message).toMatch(why);
    expect(err?.hint).toMatch(/allow_superuser/);
  });

  it('writes are accepted where the connection allows writes; FILE still is not', async () => {
    expect(await start({ user: 'gh_ma_write' }, true)).toBeUndefined();
    expect((await start({ user: 'gh_ma_file' }, true))?.sqlstate).toBe('42501');
  });

  it('allow_superuser accepts an over-privileged account (root)', async () => {
    expect(await start({ user: 'root', password_env: undefined, allow_superuser: true })).toBeUndefined();
    expect((await start({ user: 'root', password_env: undefined }))?.message).toMatch(/ALL PRIVILEGES on \*\.\*/);
  });
});

describe('mysql topics account: the topics fields and nothing else', () => {
  it("SELECT on exactly the topics' fields is accepted", async () => {
    expect(await start({ topics_user: 'gh_ma_t_ok', topics_password_env: 'GH_MA_PW' }, false, [ORDERS])).toBeUndefined();
  });

  it.each([
    ['gh_ma_t_table', /holds SELECT on all of gatehouse_mysql_accounts_test\.orders/],
    ['gh_ma_t_extra', /column\(s\) secret_note, which are not the topics' fields/],
    ['gh_ma_t_other', /can read gatehouse_mysql_accounts_test\.people, which no topic/],
    ['gh_ma_t_missing', /cannot read gatehouse_mysql_accounts_test\.orders field\(s\) region/],
    ['gh_ma_t_insert', /holds INSERT on gatehouse_mysql_accounts_test\.orders/],
  ])('%s is refused with 42501', async (user, why) => {
    const err = await start({ topics_user: user, topics_password_env: 'GH_MA_PW' }, false, [ORDERS]);
    expect(err?.sqlstate).toBe('42501');
    expect(err?.message).toContain(`topics account "${user}" of connection "mywh"`);
    expect(err?.message).toMatch(why);
  });

  it('allow_topics_privileges accepts it (logged)', async () => {
    expect(await start({ topics_user: 'gh_ma_t_table', topics_password_env: 'GH_MA_PW', allow_topics_privileges: true }, false, [ORDERS])).toBeUndefined();
  });
});
