/**
 * writeCgiHead writes the FastCGI server's response heads straight into its output buffer: it must give
 * exactly the bytes of formatCgiHead (the one definition of a CGI head) for every head it accepts, and refuse
 * (cgiHeadLength -1) the heads formatCgiHead treats specially.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CgiHeadCache, MAX_CACHED_HEAD_BYTES, cgiHeadLength, writeCgiHead } from '../../src/protocol/cgi-head-bytes.js';
import { formatCgiHead } from '../../src/response/cgi-head.js';
import type { Header } from '../../src/types.js';

/** The head writeCgiHead writes (with an NPH status line of `protocol`), or null when it refuses it. */
function written(code: number, reason: string, headers: Header[], protocol?: string): Buffer | null {
  const length = cgiHeadLength(code, reason, headers, protocol);
  if (length < 0) return null;
  // Garbage around the head: it must write exactly `length` bytes where it is told.
  const target = Buffer.alloc(length + 10, 0xee);
  const end = writeCgiHead(target, 5, code, reason, headers, protocol);
  expect(end).toBe(5 + length);
  expect(target.subarray(0, 5).every((byte) => byte === 0xee)).toBe(true);
  expect(target.subarray(end).every((byte) => byte === 0xee)).toBe(true);
  return target.subarray(5, end);
}

describe('writeCgiHead', () => {
  it('writes the bytes of formatCgiHead for common heads', () => {
    const heads: Array<[number, string, Header[]]> = [
      [200, 'OK', [['Content-Type', 'text/plain'], ['Content-Length', '13']]],
      [404, 'Not Found', []],
      [204, '', [['X-Empty', '']]],
      [500, 'Internal Server Error', [['Content-Type', 'text/plain; charset=utf-8'], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]],
      [999, 'Custom', [['X-Latin1', 'caf\u00e9 \u00ff\t']]],
    ];
    for (const [code, reason, headers] of heads) {
      expect(written(code, reason, headers)).toEqual(formatCgiHead(code, reason, headers));
      // The NPH form (uwsgi's `HTTP/1.1 200 OK` status line).
      expect(written(code, reason, headers, 'HTTP/1.1')).toEqual(formatCgiHead(code, reason, headers, { protocol: 'HTTP/1.1' }));
    }
  });

  it('leaves wide chars and Transfer-Encoding to formatCgiHead', () => {
    expect(cgiHeadLength(200, 'OK', [['X-Name', 'caf\u00e9 \u20ac']])).toBe(-1);
    expect(cgiHeadLength(200, '\u2713', [])).toBe(-1);
    expect(cgiHeadLength(200, 'OK', [['X-\u0100', 'a']])).toBe(-1);
    expect(cgiHeadLength(200, 'OK', [['transfer-Encoding', 'chunked']])).toBe(-1);
    expect(cgiHeadLength(99, 'Low', [])).toBe(-1);
    expect(cgiHeadLength(200, 'OK', [], 'HTTP/\u2713')).toBe(-1);
  });

  it('matches formatCgiHead on random heads (byte strings, any length)', () => {
    const byteString = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 40 });
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 999 }),
        byteString,
        fc.array(fc.tuple(byteString, byteString), { maxLength: 8 }),
        (code, reason, pairs) => {
          const headers = pairs as Header[];
          const bytes = written(code, reason, headers);
          if (bytes !== null) expect(bytes).toEqual(formatCgiHead(code, reason, headers));
          const nph = written(code, reason, headers, 'HTTP/1.0');
          if (nph !== null) expect(nph).toEqual(formatCgiHead(code, reason, headers, { protocol: 'HTTP/1.0' }));
        },
      ),
      { numRuns: 500, seed: 20_261_203 },
    );
  });
});

describe('CgiHeadCache', () => {
  it('gives back the head stored last for equal arguments only, as a copy of its bytes', () => {
    const cache = new CgiHeadCache();
    const headers: Header[] = [['Content-Type', 'text/plain'], ['Content-Length', '13']];
    expect(cache.lengthOf(200, 'OK', headers)).toBe(-1);
    const source = written(200, 'OK', headers) as Buffer;
    cache.store(200, 'OK', headers, undefined, source);
    source.fill(0);
    // Equal strings, other objects: the same head.
    const same: Header[] = [[`Content-${'Type'}`, 'text/plain'], ['Content-Length', String(13)]];
    expect(cache.lengthOf(200, 'OK', same)).toBe(formatCgiHead(200, 'OK', headers).length);
    const target = Buffer.alloc(100);
    const end = cache.copyTo(target, 3);
    expect(target.subarray(3, end)).toEqual(formatCgiHead(200, 'OK', headers));
    for (const [code, reason, other, protocol] of [
      [201, 'OK', headers, undefined],
      [200, 'Fine', headers, undefined],
      [200, 'OK', headers, 'HTTP/1.1'],
      [200, 'OK', [['Content-Type', 'text/plain'], ['Content-Length', '14']], undefined],
      [200, 'OK', [['Content-Type', 'text/plain']], undefined],
      [200, 'OK', [...headers, ['X', 'y']], undefined],
    ] as Array<[number, string, Header[], string | undefined]>) {
      expect(cache.lengthOf(code, reason, other, protocol)).toBe(-1);
    }
  });

  it('keeps no head over MAX_CACHED_HEAD_BYTES', () => {
    const cache = new CgiHeadCache();
    const headers: Header[] = [['X-Long', 'x'.repeat(MAX_CACHED_HEAD_BYTES)]];
    cache.store(200, 'OK', headers, undefined, written(200, 'OK', headers) as Buffer);
    expect(cache.lengthOf(200, 'OK', headers)).toBe(-1);
  });
});
