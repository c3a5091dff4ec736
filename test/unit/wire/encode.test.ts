import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import { GatehouseError, asClientError } from '../../../src/errors.ts';
import * as enc from '../../../src/wire/encode.ts';

/** Parses backend bytes with node-postgres's own client parser: an independent decoder. */
function parseBackend(bytes: Buffer): any[] {
  const out: any[] = [];
  new Parser().parse(bytes, (m) => out.push(m));
  return out;
}

describe('backend message bytes', () => {
  it('ReadyForQuery', () => {
    expect(enc.readyForQuery('I')).toEqual(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]));
    expect(enc.encode({ type: 'ReadyForQuery', status: 'E' })).toEqual(Buffer.from('Z\0\0\0\x05E', 'latin1'));
  });

  it('AuthenticationOk, CommandComplete, EmptyQueryResponse, BackendKeyData', () => {
    expect(enc.authenticationOk()).toEqual(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]));
    expect(enc.commandComplete('SELECT 1')).toEqual(Buffer.from('C\0\0\0\x0dSELECT 1\0', 'latin1'));
    expect(enc.emptyQueryResponse()).toEqual(Buffer.from([0x49, 0, 0, 0, 4]));
    expect(enc.backendKeyData(1, -1)).toEqual(Buffer.from([0x4b, 0, 0, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]));
  });

  it('AuthenticationSASL lists the mechanisms, each NUL-terminated, then a NUL', () => {
    expect(enc.authenticationSASL(['SCRAM-SHA-256'])).toEqual(Buffer.from('R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0', 'latin1'));
  });

  it('DataRow with text, empty and NULL values in UTF-8', () => {
    expect(enc.dataRow(['é', '', null])).toEqual(Buffer.from([0x44, 0, 0, 0, 20, 0, 3, 0, 0, 0, 2, 0xc3, 0xa9, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
  });

  it('ErrorResponse carries S, V, C, M, D, H, P', () => {
    const e = new GatehouseError('42601', 'syntax error at or near "selec"', {
      detail: 'd',
      hint: 'h',
      position: 7,
    });
    expect(enc.errorResponse(e)).toEqual(Buffer.from('E\0\0\0\x44SERROR\0VERROR\0C42601\0Msyntax error at or near "selec"\0Dd\0Hh\0P7\0\0', 'latin1'));
  });

  it('an internal error goes out without its text', () => {
    const [m] = parseBackend(enc.errorResponse(asClientError(new Error('password=hunter2 at 10.0.0.5'))));
    expect(m.code).toBe('XX000');
    expect(m.message).not.toMatch(/hunter2|10\.0\.0\.5/);
  });
});

describe('node-postgres reads what we write', () => {
  it('a whole result', () => {
    const bytes = Buffer.concat([
      enc.rowDescription([
        { name: 'id', tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
        { name: 'név', tableOid: 16384, columnAttr: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
      ]),
      enc.dataRow(['1', 'ünïcødé']),
      enc.dataRow(['2', null]),
      enc.commandComplete('SELECT 2'),
      enc.noticeResponse('careful', 'because'),
      enc.errorResponse(new GatehouseError('28P01', 'password authentication failed for user "x"', { severity: 'FATAL' })),
      enc.parameterStatus('server_version', '16.0'),
      enc.authenticationSASLContinue('r=abc,s=c2FsdA==,i=4096'),
      enc.authenticationSASLFinal('v=sig'),
      enc.copyOutResponse(2),
      enc.copyData(Buffer.from('1\tx\n')),
      enc.copyDone(),
      enc.parseComplete(),
      enc.bindComplete(),
      enc.noData(),
      enc.readyForQuery('T'),
    ]);
    const msgs = parseBackend(bytes);
    expect(msgs.map((m) => m.name)).toEqual([
      'rowDescription',
      'dataRow',
      'dataRow',
      'commandComplete',
      'notice',
      'error',
      'parameterStatus',
      'authenticationSASLContinue',
      'authenticationSASLFinal',
      'copyOutResponse',
      'copyData',
      'copyDone',
      'parseComplete',
      'bindComplete',
      'noData',
      'readyForQuery',
    ]);
    expect(msgs[0].fields.map((f: any) => [f.name, f.dataTypeID, f.tableID, f.columnID])).toEqual([
      ['id', 23, 0, 0],
      ['név', 25, 16384, 2],
    ]);
    expect(msgs[1].fields).toEqual(['1', 'ünïcødé']);
    expect(msgs[2].fields).toEqual(['2', null]);
    expect(msgs[3].text).toBe('SELECT 2');
    expect([msgs[4].severity, msgs[4].message, msgs[4].detail]).toEqual(['NOTICE', 'careful', 'because']);
    expect([msgs[5].severity, msgs[5].code]).toEqual(['FATAL', '28P01']);
    expect([msgs[6].parameterName, msgs[6].parameterValue]).toEqual(['server_version', '16.0']);
    expect(msgs[7].data).toBe('r=abc,s=c2FsdA==,i=4096');
    expect(msgs[8].data).toBe('v=sig');
    expect(msgs[9].columnTypes).toEqual([0, 0]);
    expect(msgs[15].status).toBe('T');
  });

  it('NegotiateProtocolVersion names the unknown options', () => {
    const b = enc.negotiateProtocolVersion(0, ['_pq_.x']);
    expect(b).toEqual(Buffer.from('v\0\0\0\x13\0\x03\0\0\0\0\0\x01_pq_.x\0', 'latin1'));
  });

  it('SSL refusal is a single unframed N', () => {
    expect(enc.sslRefused()).toEqual(Buffer.from('N'));
  });
});
