// What Gatehouse sends upstream at startup: the client's allowlisted parameters, never one
// that changes how the warehouse lexes SQL, and the pinned lexing settings last.
import { describe, expect, it } from 'vitest';
import { upstreamStartupParams, type UpstreamTarget } from '../../../src/warehouses/postgres.ts';
import { forwardedParams } from '../../../src/warehouses/types.ts';

const target: UpstreamTarget = { connection: 'warehouse', host: '127.0.0.1', port: 5432, database: 'analytics', user: 'gatehouse_reader' };

describe('upstream startup parameters', () => {
  const hostile: Record<string, string>[] = [
    { standard_conforming_strings: 'off' },
    { Standard_Conforming_Strings: 'off', BACKSLASH_QUOTE: 'on' },
    { client_encoding: 'SJIS' },
    { CLIENT_ENCODING: 'BIG5', escape_string_warning: 'off' },
    { options: '-c standard_conforming_strings=off -c client_encoding=GBK' },
    { application_name: 'x', 'standard_conforming_strings ': 'off' },
  ];
  for (const params of hostile) {
    it(`pins the lexing settings whatever the client sent: ${JSON.stringify(params)}`, () => {
      const sent = upstreamStartupParams(target, { params, readOnly: true });
      const values = (k: string) => sent.filter(([n]) => n.toLowerCase() === k).map(([, v]) => v);
      expect(values('standard_conforming_strings')).toEqual(['on']);
      expect(values('client_encoding')).toEqual(['UTF8']);
      expect(values('backslash_quote')).toEqual(['safe_encoding']);
      expect(values('options')).toEqual(['-c default_transaction_read_only=on']);
      expect(
        sent.filter(
          ([n]) => /conforming|encoding|backslash|escape/i.test(n) && !['standard_conforming_strings', 'client_encoding', 'backslash_quote'].includes(n),
        ),
      ).toEqual([]);
    });
  }

  it('client_encoding is not among the forwarded client parameters', () => {
    expect(forwardedParams({ client_encoding: 'UTF8', TimeZone: 'UTC' })).toEqual({ TimeZone: 'UTC' });
  });

  it("a topics account's settings (timeouts) come after the client's parameters", () => {
    const sent = upstreamStartupParams({ ...target, settings: [['statement_timeout', '30s']] }, { params: { statement_timeout: '0' }, readOnly: true });
    expect(sent.filter(([n]) => n === 'statement_timeout')).toEqual([['statement_timeout', '30s']]);
  });
});
