import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import {
  MAX_UWSGI_VARS_BYTES,
  UwsgiRequestReader,
  decodeUwsgiHeader,
  decodeUwsgiVars,
  encodeUwsgiPacket,
  encodeUwsgiVars,
} from '../../../src/protocol/uwsgi/packet.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ascii = (text: string): string => Buffer.from(text, 'latin1').toString('hex');

function readAll(chunks: Uint8Array[], max?: number) {
  const reader = new UwsgiRequestReader(max);
  for (const [index, chunk] of chunks.entries()) {
    const request = reader.push(chunk);
    if (request) return { request, index };
  }
  return null;
}

function errorOf(run: () => unknown): ProtocolError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('uwsgi vars and packets (E1)', () => {
  // Byte-exact table: u16 LE sizes around each key and value.
  const table: Array<[Array<[string, string]>, string]> = [
    [[['A', '']], '0100' + '41' + '0000'],
    [[['A', 'b']], '0100' + '41' + '0100' + '62'],
    [[['QUERY_STRING', '']], '0c00' + ascii('QUERY_STRING') + '0000'],
    [[['K', 'v'.repeat(256)]], '0100' + '4b' + '0001' + '76'.repeat(256)],
    [[['X', '\u00e9\u00ff']], '0100' + '58' + '0200' + 'e9ff'],
    [[['REQUEST_METHOD', 'GET'], ['PATH_INFO', '/']], '0e00' + ascii('REQUEST_METHOD') + '0300' + ascii('GET') + '0900' + ascii('PATH_INFO') + '0100' + '2f'],
  ];
  for (const [pairs, expected] of table) {
    it(`encodes and decodes ${pairs.map(([name, value]) => `${name}(${value.length})`).join(',')}`, () => {
      expect(hex(encodeUwsgiVars(pairs))).toBe(expected);
      expect(decodeUwsgiVars(Buffer.from(expected, 'hex'))).toEqual(Object.fromEntries(pairs));
    });
  }

  it('a packet is {modifier1, datasize u16 LE, modifier2}, the vars, then the body', () => {
    const packet = encodeUwsgiPacket([['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '2']], 'hi');
    const vars = '0e00' + ascii('REQUEST_METHOD') + '0400' + ascii('POST') + '0e00' + ascii('CONTENT_LENGTH') + '0100' + ascii('2');
    expect(hex(packet)).toBe('00' + '2900' + '00' + vars + ascii('hi'));
    expect(decodeUwsgiHeader(packet)).toEqual({ modifier1: 0, datasize: 41, modifier2: 0 });
    expect(decodeUwsgiHeader(Uint8Array.of(5, 0x34, 0x12, 9))).toEqual({ modifier1: 5, datasize: 0x1234, modifier2: 9 });
  });

  it('E4: a vars block of exactly 65535 bytes round-trips; 65536 cannot be encoded', () => {
    const value = 'v'.repeat(MAX_UWSGI_VARS_BYTES - 4 - 1);
    const packet = encodeUwsgiPacket([['V', value]]);
    expect(hex(packet.subarray(0, 4))).toBe('00ffff00');
    expect(readAll([packet])?.request.variables.V).toBe(value);
    expect(() => encodeUwsgiPacket([['V', `${value}x`]])).toThrow(/exceeds 65535/);
  });

  it('E1: truncated vars throw a ProtocolError 400', () => {
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('01', 'hex'))).message).toMatch(/key size cut/);
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('0500' + '4142', 'hex'))).message).toMatch(/key of 5 bytes runs past/);
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('0100' + '41', 'hex'))).message).toMatch(/key of 1 bytes runs past/);
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('0100' + '41' + '0300' + '6263', 'hex'))).message).toMatch(/value of A runs past/);
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('0100' + '41' + 'ffff', 'hex'))).status).toBe(400);
    expect(errorOf(() => decodeUwsgiVars(Buffer.from('0000' + '0000', 'hex'))).message).toMatch(/empty var name/);
  });
});

describe('uwsgi request reader (E1-E4)', () => {
  const packet = encodeUwsgiPacket([['REQUEST_METHOD', 'POST'], ['CONTENT_LENGTH', '11'], ['PATH_INFO', '/x']], 'hello world');

  it('reads the head in one chunk; the body starts in `rest`', () => {
    const result = readAll([packet]);
    expect(result?.request.variables).toEqual({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '11', PATH_INFO: '/x' });
    expect(result?.request.contentLength).toBe(11);
    expect(Buffer.from(result?.request.rest ?? []).toString()).toBe('hello world');
  });

  it('copes with a split at every byte boundary, and with one byte at a time', () => {
    for (let cut = 1; cut < packet.length; cut++) {
      const chunks = [packet.subarray(0, cut), packet.subarray(cut)];
      const result = readAll(chunks);
      expect(result?.request.variables.PATH_INFO, `cut at ${cut}`).toBe('/x');
      const body = Buffer.concat([result?.request.rest ?? new Uint8Array(0), ...chunks.slice((result?.index ?? 0) + 1)]);
      expect(body.toString(), `cut at ${cut}`).toBe('hello world');
    }
    const head = packet.subarray(0, packet.length - 11);
    const result = readAll([...head].map((byte) => Uint8Array.of(byte)));
    expect(result?.index).toBe(head.length - 1);
  });

  it('E3: CONTENT_LENGTH "" or absent means no body; digits only', () => {
    expect(readAll([encodeUwsgiPacket([['CONTENT_LENGTH', '']])])?.request.contentLength).toBe(0);
    expect(readAll([encodeUwsgiPacket([['REQUEST_METHOD', 'GET']])])?.request.contentLength).toBe(0);
    expect(errorOf(() => readAll([encodeUwsgiPacket([['CONTENT_LENGTH', '-1']])])).message).toMatch(/CONTENT_LENGTH must be decimal digits \(-1\)/);
    expect(errorOf(() => readAll([encodeUwsgiPacket([['CONTENT_LENGTH', '0x10']])])).status).toBe(400);
  });

  it('an empty vars block is a request with no vars', () => {
    expect(readAll([Uint8Array.of(0, 0, 0, 0)])?.request.variables).toEqual({});
  });

  it('E2: modifier1 or modifier2 other than 0 are refused', () => {
    for (const [m1, m2] of [[1, 0], [0, 1], [5, 0], [30, 0], [255, 255]] as const) {
      const error = errorOf(() => readAll([encodeUwsgiPacket([['A', 'b']], '', m1, m2)]));
      expect(error.message).toBe(`uwsgi: only modifier1=0 modifier2=0 requests are served (${m1}/${m2})`);
      expect(error.status).toBe(400);
    }
    // Checked from the header alone, before the vars arrive.
    expect(() => new UwsgiRequestReader().push(Uint8Array.of(1, 0xff, 0xff, 0))).toThrow(/modifier1=0/);
  });

  it('a datasize over maxHeaderBytes is refused from the header alone, before any var is buffered', () => {
    const reader = new UwsgiRequestReader(1024);
    expect(reader.push(Uint8Array.of(0, 0x01))).toBeNull();
    expect(() => reader.push(Uint8Array.of(0x04, 0))).toThrow(/vars block exceeds maxHeaderBytes \(1025\)/);
  });

  it('truncated vars inside a complete block are refused', () => {
    expect(() => readAll([Buffer.from('00030000' + '0100' + '41', 'hex')])).toThrow(/truncated var/);
  });

  it('keeps raw bytes as latin-1 chars; a later duplicate wins', () => {
    const block = Buffer.from('0100' + '58' + '0200' + 'c3a9' + '0100' + '59' + '0100' + '41', 'hex');
    expect(decodeUwsgiVars(block)).toEqual({ X: '\u00c3\u00a9', Y: 'A' });
    expect(decodeUwsgiVars(Buffer.concat([block, Buffer.from('0100' + '59' + '0100' + '42', 'hex')])).Y).toBe('B');
  });

  // nginx passes a request header given twice as two vars (issue 10, part 5): the app sees what HTTP gives it.
  it('joins repeated HTTP_* vars (", ", "; " for HTTP_COOKIE); another repeated var: the later wins', () => {
    const block = encodeUwsgiVars([
      ['HTTP_X_DUP', 'one'],
      ['HTTP_COOKIE', 'a=1'],
      ['SCRIPT_NAME', '/a'],
      ['HTTP_X_DUP', 'two'],
      ['HTTP_COOKIE', 'b=2'],
      ['SCRIPT_NAME', '/b'],
    ]);
    expect(decodeUwsgiVars(block)).toEqual({ HTTP_X_DUP: 'one, two', HTTP_COOKIE: 'a=1; b=2', SCRIPT_NAME: '/b' });
    // The same through the reader, split inside the second repeat.
    const packet = encodeUwsgiPacket(block);
    expect(readAll([packet.subarray(0, 30), packet.subarray(30)])?.request.variables.HTTP_X_DUP).toBe('one, two');
  });

  // Found by fuzzing (test/fuzz/uwsgi.test.ts): a var named "__proto__" vanished.
  it('keeps vars named like Object.prototype members as variables of their own', () => {
    const variables = decodeUwsgiVars(encodeUwsgiVars([['__proto__', 'a'], ['toString', 'b']]));
    expect(Object.keys(variables)).toEqual(['__proto__', 'toString']);
    expect(Object.getOwnPropertyDescriptor(variables, '__proto__')?.value).toBe('a');
    expect(Object.getPrototypeOf(variables)).toBe(Object.prototype);
  });
});
