// PostgreSQL's session settings as Gatehouse keeps them for a mysql connection (pg-settings.ts).
import { describe, expect, it } from 'vitest';
import { EmulatedSettings, SERVER_VERSION, showColumn } from '../../../src/warehouses/pg-settings.ts';

const show = (s: EmulatedSettings, name: string) => s.apply({ op: 'show', name }).show;

describe('emulated PostgreSQL settings', () => {
  it('start from PostgreSQL defaults, the session read-only flag and the startup application_name', () => {
    const s = new EmulatedSettings({ readOnly: true, params: { application_name: 'psql' } });
    expect(show(s, 'application_name')).toEqual({ column: 'application_name', value: 'psql' });
    expect(show(s, 'timezone')).toEqual({ column: 'TimeZone', value: 'UTC' });
    expect(show(s, 'datestyle')).toEqual({ column: 'DateStyle', value: 'ISO, MDY' });
    expect(show(s, 'transaction_isolation')?.value).toBe('repeatable read');
    expect(show(s, 'transaction_read_only')?.value).toBe('on');
    expect(show(s, 'server_version')?.value).toBe(SERVER_VERSION);
    expect(new EmulatedSettings({ readOnly: false }).apply({ op: 'show', name: 'default_transaction_read_only' }).show?.value).toBe('off');
  });

  it('SET, SET LOCAL until the transaction ends, RESET, RESET ALL and DISCARD ALL', () => {
    const s = new EmulatedSettings({ readOnly: true, params: { application_name: 'app' } });
    expect(s.apply({ op: 'set', name: 'extra_float_digits', value: '3', local: false })).toEqual({ tag: 'SET' });
    s.apply({ op: 'set', name: 'application_name', value: 'local', local: true });
    expect(show(s, 'application_name')?.value).toBe('local');
    s.endTransaction();
    expect(show(s, 'application_name')?.value).toBe('app');
    expect(show(s, 'extra_float_digits')?.value).toBe('3');
    expect(s.apply({ op: 'reset', name: 'extra_float_digits' })).toEqual({ tag: 'RESET' });
    expect(show(s, 'extra_float_digits')?.value).toBe('1');
    s.apply({ op: 'set', name: 'application_name', value: 'x', local: false });
    expect(s.apply({ op: 'discard', what: 'all' })).toEqual({ tag: 'DISCARD ALL' });
    expect(show(s, 'application_name')?.value).toBe('app');
    s.apply({ op: 'set', name: 'lock_timeout', value: '5s', local: false });
    expect(s.apply({ op: 'reset_all' })).toEqual({ tag: 'RESET' });
    expect(show(s, 'lock_timeout')?.value).toBe('0');
    expect(showColumn('intervalstyle')).toBe('IntervalStyle');
  });
});
