import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { RecordType } from '../../../src/protocol/fastcgi/constants.js';
import { RecordDecoder, type FastCgiRecord } from '../../../src/protocol/fastcgi/record-decoder.js';
import {
  encodeBeginRequest,
  encodeEndRequest,
  encodeGetValuesResult,
  encodeRecord,
  encodeStreamRecords,
  encodeUnknownType,
} from '../../../src/protocol/fastcgi/record-encoder.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function decodeAll(chunks: Uint8Array[]): Array<{ type: number; requestId: number; content: string }> {
  const out: Array<{ type: number; requestId: number; content: string }> = [];
  const decoder = new RecordDecoder((r: FastCgiRecord) => out.push({ type: r.type, requestId: r.requestId, content: hex(r.content) }));
  for (const chunk of chunks) decoder.push(chunk);
  return out;
}

describe('record encoder (FastCGI §3.3, §5, §8)', () => {
  it('encodes headers byte-exact', () => {
    expect(hex(encodeRecord(RecordType.STDOUT, 1, Buffer.from('hi')))).toBe('0106000100020000' + '6869');
    expect(hex(encodeRecord(RecordType.STDOUT, 0x1234))).toBe('0106123400000000');
    expect(hex(encodeBeginRequest(1, 1, 1))).toBe('0101000100080000' + '0001010000000000');
    expect(hex(encodeEndRequest(7, 0x01020304, 2))).toBe('0103000700080000' + '0102030402000000');
    expect(hex(encodeUnknownType(99))).toBe('010b000000080000' + '6300000000000000');
    expect(hex(encodeGetValuesResult([['FCGI_MPXS_CONNS', '1']]))).toBe('010a000000120000' + '0f01' + Buffer.from('FCGI_MPXS_CONNS1').toString('hex'));
  });

  it('C2: splits 70,000 bytes into records of at most 65535, never an empty one', () => {
    const data = Buffer.alloc(70_000, 7);
    const records = decodeAll([encodeStreamRecords(RecordType.STDOUT, 3, data)]);
    expect(records.map((r) => r.content.length / 2)).toEqual([65535, 4465]);
    expect(encodeStreamRecords(RecordType.STDOUT, 3, new Uint8Array(0)).length).toBe(0);
  });

  it('refuses a single record over 65535 bytes', () => {
    expect(() => encodeRecord(RecordType.STDOUT, 1, new Uint8Array(65536))).toThrow(RangeError);
  });
});

describe('record decoder', () => {
  const stream = Buffer.concat([
    encodeBeginRequest(1, 1, 0),
    encodeRecord(RecordType.PARAMS, 1, Buffer.from('0101414243', 'hex')),
    encodeRecord(RecordType.PARAMS, 1),
    // nginx-style 8-byte aligned padding: 5 bytes of content, 3 of padding.
    Buffer.from('0105000100050300' + '68656c6c6f' + 'aabbcc', 'hex'),
    encodeRecord(RecordType.STDIN, 1),
  ]);
  const expected = [
    { type: 1, requestId: 1, content: '0001000000000000' },
    { type: 4, requestId: 1, content: '0101414243' },
    { type: 4, requestId: 1, content: '' },
    { type: 5, requestId: 1, content: '68656c6c6f' },
    { type: 5, requestId: 1, content: '' },
  ];

  it('decodes a stream in one read, skipping padding (C1, T5)', () => {
    expect(decodeAll([stream])).toEqual(expected);
  });

  it('T1: decodes the same stream split at every byte boundary', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(decodeAll([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
    }
    expect(decodeAll([...stream].map((byte) => Uint8Array.of(byte)))).toEqual(expected);
  });

  it('T5: padding on every record type, up to 255 bytes', () => {
    const padded = Buffer.concat([Buffer.from('0109000000000000', 'hex').fill(0xff, 6, 7), Buffer.alloc(255)]);
    expect(decodeAll([padded])).toEqual([{ type: 9, requestId: 0, content: '' }]);
  });

  it('C1: a version other than 1 throws a ProtocolError', () => {
    expect(() => decodeAll([Buffer.from('0206000100000000', 'hex')])).toThrow(ProtocolError);
  });

  it('reports whether a record is partly received', () => {
    const decoder = new RecordDecoder(() => {});
    expect(decoder.idle).toBe(true);
    decoder.push(Buffer.from('0106', 'hex'));
    expect(decoder.idle).toBe(false);
    decoder.push(Buffer.from('000100000000', 'hex'));
    expect(decoder.idle).toBe(true);
  });
});
