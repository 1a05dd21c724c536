import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { NameValueCollector, decodeNameValuePairs, encodeNameValuePairs } from '../../../src/protocol/fastcgi/name-value.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('name-value pairs (FastCGI §3.4)', () => {
  // Byte-exact table: 1-byte lengths up to 127, 4-byte with bit 31 set from 128.
  const table: Array<[string, string, string]> = [
    ['', '', '0000'],
    ['A', 'b', '01014162'],
    ['A'.repeat(127), '', `7f00${'41'.repeat(127)}`],
    ['A'.repeat(128), '', `8000008000${'41'.repeat(128)}`],
    ['N', 'v'.repeat(128), `01800000804e${'76'.repeat(128)}`],
    ['X', '\u00e9\u00ff', '0102' + '58' + 'e9ff'],
  ];
  for (const [name, value, expected] of table) {
    it(`encodes and decodes ${name.length}/${value.length}-byte pair`, () => {
      expect(hex(encodeNameValuePairs([[name, value]]))).toBe(expected);
      expect(decodeNameValuePairs(Buffer.from(expected, 'hex'))).toEqual([[name, value]]);
    });
  }

  it('accepts a 4-byte encoding of a small length', () => {
    expect(decodeNameValuePairs(Buffer.from('80000001' + '01' + '41' + '42', 'hex'))).toEqual([['A', 'B']]);
  });

  it('decodes a 70,000-byte value and a 260-byte name', () => {
    const name = 'N'.repeat(260);
    const value = 'v'.repeat(70_000);
    expect(decodeNameValuePairs(encodeNameValuePairs([[name, value], ['B', '2']]))).toEqual([[name, value], ['B', '2']]);
  });

  it('keeps raw bytes as latin-1 chars (no UTF-8 decoding)', () => {
    expect(decodeNameValuePairs(Buffer.from('0402' + Buffer.from('PATH').toString('hex') + 'c3a9', 'hex'))).toEqual([['PATH', '\u00c3\u00a9']]);
  });

  it('T4: a hostile 0x7fffffff length throws without allocating', () => {
    const hostile = Buffer.from('ffffffff' + '01' + '41', 'hex');
    expect(() => decodeNameValuePairs(hostile)).toThrow(ProtocolError);
    expect(() => decodeNameValuePairs(hostile)).toThrow(/lengths run past the block/);
  });

  it('truncated blocks throw a ProtocolError', () => {
    expect(() => decodeNameValuePairs(Buffer.from('80', 'hex'))).toThrow(/inside a 4-byte length/);
    expect(() => decodeNameValuePairs(Buffer.from('01', 'hex'))).toThrow(/inside a length/);
    expect(() => decodeNameValuePairs(Buffer.from('0202414142', 'hex'))).toThrow(ProtocolError);
  });

  it('C5: the collector joins a pair and a length prefix split across records', () => {
    const block = encodeNameValuePairs([['REQUEST_METHOD', 'POST'], ['LONG', 'x'.repeat(200)]]);
    const collector = new NameValueCollector(1 << 20);
    // Split inside the 4-byte value length of the second pair, and inside the first name.
    collector.push(block.subarray(0, 5));
    collector.push(block.subarray(5, 24));
    collector.push(block.subarray(24, 26));
    collector.push(block.subarray(26));
    expect(collector.finish()).toEqual({ REQUEST_METHOD: 'POST', LONG: 'x'.repeat(200) });
  });

  it('T4: the collector refuses params beyond its cap', () => {
    const collector = new NameValueCollector(10);
    collector.push(new Uint8Array(10));
    expect(() => collector.push(new Uint8Array(1))).toThrow(/params exceed maxParamsBytes \(11 > 10\)/);
  });
});

describe('NameValueCache', () => {
  it('reuses the previous strings where the bytes match and decodes the rest', async () => {
    const { NameValueCache, decodeNameValuePairsInto } = await import('../../../src/protocol/fastcgi/name-value.js');
    const cache = new NameValueCache();
    const first = decodeNameValuePairsInto(encodeNameValuePairs([['REQUEST_METHOD', 'GET'], ['REMOTE_PORT', '5001']]), {}, cache);
    const second = decodeNameValuePairsInto(encodeNameValuePairs([['REQUEST_METHOD', 'GET'], ['REMOTE_PORT', '5002']]), {}, cache);
    const third = decodeNameValuePairsInto(encodeNameValuePairs([['REMOTE_PORT', '5003'], ['REQUEST_METHOD', 'PUT'], ['X', 'y'.repeat(100)]]), {}, cache);
    expect(first).toEqual({ REQUEST_METHOD: 'GET', REMOTE_PORT: '5001' });
    expect(second).toEqual({ REQUEST_METHOD: 'GET', REMOTE_PORT: '5002' });
    expect(third).toEqual({ REMOTE_PORT: '5003', REQUEST_METHOD: 'PUT', X: 'y'.repeat(100) });
  });

  // Found by fuzzing (test/fuzz/fastcgi.test.ts): `target["__proto__"] = value` set nothing, so the pair vanished.
  it('keeps pairs named like Object.prototype members as variables of their own', () => {
    const block = encodeNameValuePairs([['__proto__', 'a'], ['constructor', 'b'], ['X', 'c']]);
    const collector = new NameValueCollector(1024);
    collector.push(block);
    const variables = collector.finish();
    expect(Object.keys(variables)).toEqual(['__proto__', 'constructor', 'X']);
    expect(Object.getOwnPropertyDescriptor(variables, '__proto__')?.value).toBe('a');
    expect(Object.getPrototypeOf(variables)).toBe(Object.prototype);
    expect(variables.constructor).toBe('b');
  });
});
