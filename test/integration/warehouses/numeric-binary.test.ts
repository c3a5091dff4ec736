// numeric's binary result format as Gatehouse writes it for connector warehouses (row-session.ts),
// byte for byte against PostgreSQL's own numeric_send.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numericBinary } from '../../../src/warehouses/row-session.ts';
import { PG, requirePostgres } from '../../helpers/servers.ts';

let c: pg.Client;
beforeAll(async () => {
  await requirePostgres();
  c = new pg.Client(PG);
  await c.connect();
});
afterAll(async () => {
  await c?.end();
});

const VALUES = [
  '0',
  '0.00',
  '1',
  '-1',
  '333',
  '1667',
  '10000',
  '-10000',
  '9999',
  '12.50',
  '-0.01',
  '0.0001',
  '0.00001',
  '100000000.000100',
  '12345678901234567890123456789012345678',
  '-98765432109876543210.123456789',
  '1000000000000000000000',
  '5.5',
  '0.5000',
  'NaN',
  'Infinity',
  '-Infinity',
];

describe('numeric binary format', () => {
  it.each(VALUES)('%s is what PostgreSQL sends', async (v) => {
    const r = await c.query({ text: 'SELECT numeric_send($1::numeric) AS b', values: [v] });
    expect(numericBinary(v)?.toString('hex')).toBe((r.rows[0].b as Buffer).toString('hex'));
  });
});
