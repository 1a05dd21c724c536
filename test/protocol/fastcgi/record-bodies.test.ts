import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { FCGI_KEEP_CONN, ProtocolStatus, Role } from '../../../src/protocol/fastcgi/constants.js';
import { decodeNameValuePairs, encodeNameValuePairs } from '../../../src/protocol/fastcgi/name-value.js';
import {
  answerGetValues,
  decodeBeginRequest,
  decodeEndRequest,
  decodeUnknownType,
  encodeGetValuesBody,
  protocolStatusName,
  writeBeginRequestBody,
  writeEndRequestBody,
  writeUnknownTypeBody,
} from '../../../src/protocol/fastcgi/record-bodies.js';
import { encodeGetValues, writeEndRequest, writeUnknownType } from '../../../src/protocol/fastcgi/record-encoder.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** A buffer of 0xee bytes: every byte a writer leaves alone stays 0xee. */
const dirty = (length: number) => Buffer.alloc(length, 0xee);

describe('record bodies (FastCGI §4.1, §4.2, §5.1, §5.5)', () => {
  it('writes BEGIN_REQUEST, END_REQUEST and UNKNOWN_TYPE bodies byte-exact at an offset, touching nothing else', () => {
    const begin = dirty(12);
    writeBeginRequestBody(begin, 2, 0x0102, FCGI_KEEP_CONN);
    expect(hex(begin)).toBe('eeee' + '0102010000000000' + 'eeee');
    const end = dirty(12);
    writeEndRequestBody(end, 2, 0xfffffffe, ProtocolStatus.OVERLOADED);
    expect(hex(end)).toBe('eeee' + 'fffffffe02000000' + 'eeee');
    const unknown = dirty(12);
    writeUnknownTypeBody(unknown, 2, 99);
    expect(hex(unknown)).toBe('eeee' + '6300000000000000' + 'eeee');
  });

  it('writes whole END_REQUEST and UNKNOWN_TYPE records (header and body) at an offset', () => {
    const out = dirty(36);
    writeEndRequest(out, 1, 0x0203, -1, ProtocolStatus.UNKNOWN_ROLE);
    writeUnknownType(out, 17, 42);
    expect(hex(out)).toBe('ee' + '0103020300080000' + 'ffffffff03000000' + '010b000000080000' + '2a00000000000000' + 'eeeeee');
  });

  it('decodes what it writes', () => {
    const begin = Buffer.alloc(8);
    writeBeginRequestBody(begin, 0, Role.FILTER, FCGI_KEEP_CONN);
    expect(decodeBeginRequest(begin)).toEqual({ role: Role.FILTER, keepConn: true });
    writeBeginRequestBody(begin, 0, 0xabcd, 0xfe);
    expect(decodeBeginRequest(begin)).toEqual({ role: 0xabcd, keepConn: false });
    const end = Buffer.alloc(8);
    writeEndRequestBody(end, 0, 0x80000001, ProtocolStatus.CANT_MPX_CONN);
    expect(decodeEndRequest(end)).toEqual({ appStatus: 0x80000001, protocolStatus: ProtocolStatus.CANT_MPX_CONN });
    const unknown = Buffer.alloc(8);
    writeUnknownTypeBody(unknown, 0, 200);
    expect(decodeUnknownType(unknown)).toBe(200);
  });

  it('C7: a fixed body that is not 8 bytes is a ProtocolError', () => {
    for (const length of [0, 7, 9]) {
      expect(() => decodeBeginRequest(new Uint8Array(length))).toThrow(ProtocolError);
      expect(() => decodeEndRequest(new Uint8Array(length))).toThrow(ProtocolError);
      expect(() => decodeUnknownType(new Uint8Array(length))).toThrow(ProtocolError);
    }
    expect(() => decodeBeginRequest(new Uint8Array(7))).toThrow('fastcgi: BEGIN_REQUEST body is not 8 bytes (7)');
  });

  it('names the protocol statuses', () => {
    expect([0, 1, 2, 3, 4].map(protocolStatusName)).toEqual(['request complete', 'cannot multiplex', 'overloaded', 'unknown role', 'unknown']);
  });
});

describe('GET_VALUES (FastCGI §4.1, conformance C10)', () => {
  const known = { FCGI_MAX_CONNS: '10', FCGI_MAX_REQS: '20', FCGI_MPXS_CONNS: '1' };

  it('encodes a query as names with empty values, in a GET_VALUES record', () => {
    expect(hex(encodeGetValuesBody(['FCGI_MAX_REQS']))).toBe('0d00' + Buffer.from('FCGI_MAX_REQS').toString('hex'));
    expect(hex(encodeGetValues(['A']))).toBe('0109000000030000' + '0100' + '41');
  });

  it('answers the known names asked for, in the order asked, unknown ones left out', () => {
    const query = encodeGetValuesBody(['FCGI_MPXS_CONNS', 'NOPE', 'FCGI_MAX_CONNS']);
    const answer = answerGetValues(query, known, 64);
    expect(hex(answer)).toBe(hex(encodeNameValuePairs([['FCGI_MPXS_CONNS', '1'], ['FCGI_MAX_CONNS', '10']])));
  });

  it('never answers a name from the object prototype', () => {
    const answer = answerGetValues(encodeGetValuesBody(['__proto__', 'toString', 'constructor']), known, 64);
    expect(answer.length).toBe(0);
  });

  it('looks at most maxNames names of a query', () => {
    const names = Array.from({ length: 100 }, () => 'FCGI_MAX_REQS');
    expect(decodeNameValuePairs(answerGetValues(encodeGetValuesBody(names), known, 64))).toHaveLength(64);
  });

  it('a malformed query is a ProtocolError', () => {
    expect(() => answerGetValues(Uint8Array.of(0x05, 0x00, 0x41), known, 64)).toThrow(ProtocolError);
  });
});
