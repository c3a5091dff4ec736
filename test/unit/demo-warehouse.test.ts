// The --warehouse URL, the names the demo gives databases and accounts, and the PostgreSQL to
// MySQL column mapping of the demo's copy (src/demo/): plain data in, plain data out.
import { describe, expect, it } from 'vitest';
import { mapColumn, planTable, tablesFromRows } from '../../src/demo/mysql-copy.ts';
import { demoDatabases, generatedRulesName, parseWarehouseUrl } from '../../src/demo/warehouse-url.ts';

describe('parseWarehouseUrl', () => {
  it('reads postgres:// and mysql:// URLs with default ports, and redacts the password', () => {
    expect(parseWarehouseUrl('mysql://root@127.0.0.1:3306/gatehouse_demo')).toEqual({
      kind: 'mysql',
      host: '127.0.0.1',
      port: 3306,
      user: 'root',
      password: undefined,
      database: 'gatehouse_demo',
      redacted: 'mysql://root@127.0.0.1:3306/gatehouse_demo',
    });
    const pg = parseWarehouseUrl('postgresql://ad%40min:p%3Ass%2Fw@db.example/demo');
    expect(pg).toMatchObject({ kind: 'postgres', host: 'db.example', port: 5432, user: 'ad@min', password: 'p:ss/w', database: 'demo' });
    expect(pg.redacted).toBe('postgres://ad%40min:***@db.example:5432/demo');
    expect(parseWarehouseUrl('postgres://u@[::1]:6000/d')).toMatchObject({ host: '::1', port: 6000, redacted: 'postgres://u@[::1]:6000/d' });
  });

  it.each([
    ['oracle://u:topsecret@h/d', 'must be a postgres:// or mysql:// URL'],
    ['not a url topsecret', 'is not a URL'],
    ['mysql://h/d', 'names no admin account'],
    ['mysql://u:topsecret@h', 'names no database'],
    ['mysql://u:topsecret@h/Demo', 'must be lower-case letters'],
    ['mysql://u:topsecret@h/a-b', 'must be lower-case letters'],
    ['postgres://u:topsecret@h/postgres', "is the server's own"],
    ['mysql://u:topsecret@h/mysql', "is the server's own"],
    ['mysql://u:topsecret@h/d?ssl=1', 'takes no query parameters'],
  ])('refuses %s, never repeating the password', (url, message) => {
    expect(() => parseWarehouseUrl(url)).toThrow(message);
    try {
      parseWarehouseUrl(url);
    } catch (e) {
      expect((e as Error).message).not.toContain('topsecret');
    }
  });

  it('names the generated rules after server, admin and database, never the password', () => {
    const a = generatedRulesName(parseWarehouseUrl('mysql://root:one@h/d'));
    expect(a).toMatch(/^rules-[0-9a-f]{12}$/);
    expect(generatedRulesName(parseWarehouseUrl('mysql://root:two@h/d'))).toBe(a);
    expect(generatedRulesName(parseWarehouseUrl('mysql://root@h/e'))).not.toBe(a);
  });
});

describe('demoDatabases', () => {
  const conns = [
    { org: 'acme', connection: 'warehouse' },
    { org: 'globex', connection: 'warehouse' },
  ];
  it("puts the first org in the URL's database and every other in <database>_<org>, each with its own accounts", () => {
    expect(demoDatabases(parseWarehouseUrl('mysql://root@h/gatehouse_demo'), conns)).toEqual([
      { org: 'acme', connection: 'warehouse', database: 'gatehouse_demo', querierAccount: 'gatehouse_demo_querier', topicsAccount: 'gatehouse_demo_topics' },
      {
        org: 'globex',
        connection: 'warehouse',
        database: 'gatehouse_demo_globex',
        querierAccount: 'gatehouse_demo_globex_querier',
        topicsAccount: 'gatehouse_demo_globex_topics',
      },
    ]);
  });
  it('adds the connection name when an org has several embedded connections', () => {
    const dbs = demoDatabases(parseWarehouseUrl('postgres://u@h/d'), [...conns, { org: 'globex', connection: 'archive' }]);
    expect(dbs.map((d) => d.database)).toEqual(['d', 'd_globex_warehouse', 'd_globex_archive']);
  });
  it("refuses a database whose accounts would pass MySQL's 32-character user names", () => {
    expect(() => demoDatabases(parseWarehouseUrl('mysql://root@h/a_rather_long_demo_name'), conns)).toThrow(/at most 32 characters/);
    expect(demoDatabases(parseWarehouseUrl('postgres://u@h/a_rather_long_demo_name'), conns)).toHaveLength(2);
  });
});

describe('the MySQL copy of a seeded table', () => {
  it.each([
    ['integer', false, 'INT'],
    ['bigint', false, 'BIGINT'],
    ['numeric(12,2)', false, 'DECIMAL(12,2)'],
    ['text', false, 'TEXT'],
    ['text', true, 'VARCHAR(255)'],
    ['character varying(40)', false, 'VARCHAR(40)'],
    ['boolean', false, 'BOOLEAN'],
    ['timestamp with time zone', false, 'DATETIME(6)'],
    ['timestamp(3) without time zone', false, 'DATETIME(6)'],
    ['date', false, 'DATE'],
  ])('%s (key: %s) becomes %s', (type, inKey, mysqlType) => {
    expect(mapColumn({ name: 'c', type, notNull: true }, inKey)).toMatchObject({ mysqlType });
  });

  it('reads timestamptz as its UTC time and booleans as 0/1', () => {
    expect(mapColumn({ name: 'at', type: 'timestamp with time zone', notNull: false }, false)).toMatchObject({
      select: `to_char("at" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`,
    });
    expect(mapColumn({ name: 'ok', type: 'boolean', notNull: false }, false)).toMatchObject({ select: '"ok"::int::text' });
  });

  it('refuses types it does not map, naming the column', () => {
    expect(mapColumn({ name: 'n', type: 'numeric', notNull: false }, false)).toMatchObject({ problem: expect.stringContaining('numeric(p,s)') });
    expect(mapColumn({ name: 'n', type: 'numeric(70,2)', notNull: false }, false)).toMatchObject({ problem: expect.stringContaining('wider') });
    const plan = planTable({
      schema: 'public',
      name: 't',
      columns: [
        { name: 'b', type: 'bytea', notNull: false },
        { name: 'i', type: 'integer', notNull: true },
      ],
      primaryKey: ['i'],
    });
    expect(plan).toEqual({ problems: ['column t.b: type bytea is not among the types the demo copies to MySQL'] });
    expect(planTable({ schema: 'sales', name: 't', columns: [{ name: 'i', type: 'integer', notNull: true }], primaryKey: [] })).toEqual({
      problems: ['table sales.t is outside schema public (a MySQL database has one namespace)'],
    });
  });

  it('writes CREATE TABLE with NOT NULL and the primary key, and reads rows in key order', () => {
    const { tables, problems } = tablesFromRows([
      { schema: 'public', table: 'orders', kind: 'r', column: 'id', type: 'integer', not_null: 't', key_position: '1' },
      { schema: 'public', table: 'orders', kind: 'r', column: 'region', type: 'text', not_null: 'f', key_position: null },
      { schema: 'public', table: 'v', kind: 'v', column: 'x', type: 'integer', not_null: 'f', key_position: null },
    ]);
    expect(problems).toEqual(['public.v is a view: the demo copies tables only']);
    const plan = planTable(tables[0]);
    if ('problems' in plan) throw new Error(plan.problems.join());
    expect(plan.createSql).toBe('CREATE TABLE `orders` (\n  `id` INT NOT NULL,\n  `region` TEXT,\n  PRIMARY KEY (`id`)\n)');
    expect(plan.selectSql).toBe('SELECT "id"::text, "region"::text FROM "public"."orders" ORDER BY "id"');
  });
});
