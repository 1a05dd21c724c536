import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  CgiHeadReader,
  findCgiHeadEnd,
  MAX_HEAD_BYTES,
  parseCgiHead,
  parseNphStatusLine,
} from '../../src/response/cgi-head-parse.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Asserts that parsing `text` throws a 500 ProtocolError whose message matches `message`. */
function expectDefect(text: string | Buffer, message: RegExp, options = {}): void {
  let caught: unknown;
  try {
    parseCgiHead(typeof text === 'string' ? bytes(text) : text, options);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).status).toBe(500);
  expect((caught as ProtocolError).message).toMatch(/^cgi-host: /);
  expect((caught as ProtocolError).message).toMatch(message);
}

describe('findCgiHeadEnd', () => {
  it.each([
    ['CRLF CRLF', 'Content-Type: a\r\n\r\nBODY', 19],
    ['LF LF (B12a)', 'Content-Type: a\n\nBODY', 17],
    ['CRLF then LF', 'Content-Type: a\r\n\nBODY', 18],
    ['LF then CRLF', 'Content-Type: a\n\r\nBODY', 18],
    ['first blank line wins', 'A: 1\n\nB: 2\n\n', 6],
    ['CR alone is not a line end', 'A: 1\r\rB: 2\n\n', 12],
    ['incomplete', 'Content-Type: a\r\n', -1],
    ['incomplete after CR', 'Content-Type: a\r\n\r', -1],
    ['nothing', '', -1],
  ])('%s', (_name, text, expected) => {
    expect(findCgiHeadEnd(bytes(text))).toBe(expected);
  });

  it('throws when no head ends within maxHeadBytes', () => {
    expect(() => findCgiHeadEnd(bytes('X: 12345678\n'), 10)).toThrow(/head exceeds maxHeadBytes \(10\)/);
    expect(findCgiHeadEnd(bytes('X: 1\n\n'), 6)).toBe(6);
  });
});

describe('parseCgiHead: accepted heads', () => {
  it.each([
    [
      'document response, CRLF',
      'Content-Type: text/html\r\n\r\n<p>',
      { status: 200, reason: 'OK', headers: [['Content-Type', 'text/html']], bodyStart: 27 },
    ],
    [
      'LF-only lines (B12a)',
      'Content-Type: text/plain\nX-A: 1\n\nhi',
      { status: 200, reason: 'OK', headers: [['Content-Type', 'text/plain'], ['X-A', '1']], bodyStart: 33 },
    ],
    [
      'lower-case status with reason (B12b)',
      'status: 404 Nope\r\ncontent-type: text/plain\r\n\r\n',
      { status: 404, reason: 'Nope', headers: [['content-type', 'text/plain']], bodyStart: 46 },
    ],
    [
      'Status without reason gets the standard one',
      'Status: 503\r\nContent-Type: text/plain\r\n\r\n',
      { status: 503, reason: 'Service Unavailable', headers: [['Content-Type', 'text/plain']], bodyStart: 41 },
    ],
    [
      'Status alone is enough (§6.2)',
      'Status: 204 No Content\n\n',
      { status: 204, reason: 'No Content', headers: [], bodyStart: 24 },
    ],
    [
      'unknown status code',
      'Status: 299\nContent-Type: a\n\n',
      { status: 299, reason: 'Unknown', headers: [['Content-Type', 'a']], bodyStart: 29 },
    ],
    [
      'reason with blanks, value blanks trimmed',
      'Status:   418   I am a  teapot  \nContent-Type:text/plain \n\n',
      { status: 418, reason: 'I am a  teapot', headers: [['Content-Type', 'text/plain']], bodyStart: 59 },
    ],
    [
      'two Set-Cookie stay two headers (B12g)',
      'Content-Type: a\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n',
      {
        status: 200,
        reason: 'OK',
        headers: [
          ['Content-Type', 'a'],
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
        ],
        bodyStart: 53,
      },
    ],
    [
      'local redirect alone (B13a) -> 302',
      'Location: /x?q=1\r\n\r\n',
      { status: 302, reason: 'Found', headers: [['Location', '/x?q=1']], bodyStart: 20, localRedirect: true },
    ],
    [
      'client redirect alone (B13b) -> 302',
      'Location: http://h/\n\n',
      { status: 302, reason: 'Found', headers: [['Location', 'http://h/']], bodyStart: 21, localRedirect: false },
    ],
    [
      'Location + Status 301 + body (B13c)',
      'Location: http://h/\nStatus: 301 Moved\nContent-Type: text/html\n\nmoved',
      {
        status: 301,
        reason: 'Moved',
        headers: [['Location', 'http://h/'], ['Content-Type', 'text/html']],
        bodyStart: 63,
        localRedirect: false,
      },
    ],
    [
      'protocol-relative Location is not local',
      'Location: //evil/\n\n',
      { status: 302, reason: 'Found', headers: [['Location', '//evil/']], bodyStart: 19, localRedirect: false },
    ],
    [
      'equal Content-Length twice is tolerated',
      'Content-Type: a\nContent-Length: 2\nContent-Length: 2\n\nhi',
      {
        status: 200,
        reason: 'OK',
        headers: [['Content-Type', 'a'], ['Content-Length', '2'], ['Content-Length', '2']],
        bodyStart: 53,
      },
    ],
  ])('%s', (_name, text, expected) => {
    const head = parseCgiHead(bytes(text));
    expect(head).toMatchObject({ nph: false, ...expected });
    expect(bytes(text).subarray(0, head.bodyStart).toString('latin1')).toMatch(/\r?\n\r?\n$/);
  });

  it('removes Transfer-Encoding, Connection and Keep-Alive and says so (B12h)', () => {
    const head = parseCgiHead(
      bytes('Content-Type: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nX: 1\r\n\r\n'),
    );
    expect(head.headers).toEqual([
      ['Content-Type', 'a'],
      ['X', '1'],
    ]);
    expect(head.warnings).toHaveLength(3);
    expect(head.warnings[0]).toBe('cgi-host: hop-by-hop field removed from the response (Transfer-Encoding: chunked)');
  });

  it('keeps header bytes as a byte string (latin-1)', () => {
    const raw = Buffer.concat([bytes('Content-Type: a\nX-Name: caf'), Buffer.from([0xc3, 0xa9, 0xe9]), bytes('\n\n')]);
    const head = parseCgiHead(raw);
    expect(head.headers[1]).toEqual(['X-Name', 'caf\u00c3\u00a9\u00e9']);
  });

  it('finds the body of a binary response', () => {
    const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const raw = Buffer.concat([bytes('Content-Type: application/octet-stream\r\n\r\n'), bytes('\r\n\r\n'), body]);
    const head = parseCgiHead(raw);
    expect(head.bodyStart).toBe(42);
    expect(raw.subarray(head.bodyStart)).toEqual(Buffer.concat([bytes('\r\n\r\n'), body]));
  });
});

describe('parseCgiHead: defects (B12)', () => {
  it.each([
    ['Status: x (c)', 'Status: x\nContent-Type: a\n\n', /bad Status line \(x\)/],
    ['Status without space before reason', 'Status: 404Nope\n\n', /bad Status line \(404Nope\)/],
    ['Status out of range', 'Status: 999 No\n\n', /bad Status line/],
    ['Status of two digits', 'Status: 20 OK\n\n', /bad Status line/],
    ['empty output (d)', '', /empty output/],
    ['no blank line (d)', 'Content-Type: text/plain\r\nhello', /blank line/],
    ['starts with a blank line', '\r\nhello', /starts with a blank line/],
    ['a line without ":" (e)', 'Content-Type: a\nhello world\n\n', /line without ":" \(hello world\)/],
    ['an HTTP status line in a non-NPH script (e)', 'HTTP/1.1 200 OK\nContent-Type: a\n\n', /line without ":"/],
    ['none of Content-Type, Location, Status (f)', 'X-Powered-By: me\n\n', /none of Content-Type, Location, Status \(X-Powered-By\)/],
    ['Status twice (i)', 'Status: 200 OK\nStatus: 404 No\nContent-Type: a\n\n', /Status twice/],
    ['Location twice (i)', 'Location: /a\nLocation: /b\n\n', /Location twice/],
    ['Content-Type twice', 'Content-Type: a\nContent-Type: b\n\n', /Content-Type twice/],
    ['bad Content-Length', 'Content-Type: a\nContent-Length: -1\n\n', /bad Content-Length \(-1\)/],
    ['differing Content-Length', 'Content-Type: a\nContent-Length: 1\nContent-Length: 2\n\n', /differing Content-Length/],
    ['folded line', 'Content-Type: a\n b\n\n', /folded/],
    ['blank before the colon', 'Content-Type : a\n\n', /bad header field name \("Content-Type "\)/],
    ['empty name', ': a\nContent-Type: a\n\n', /bad header field name/],
    ['bare CR inside a line', 'Content-Type: a\rX: 1\n\n', /bare CR/],
    ['control character in a value', 'Content-Type: a\x01\n\n', /control character/],
    ['NUL in a value', 'Content-Type: a\x00b\n\n', /control character/],
  ])('%s', (_name, text, message) => {
    expectDefect(text, message);
  });

  it('caps the head size (MAX_HEAD_BYTES by default)', () => {
    expectDefect(bytes(`Content-Type: a\nX: ${'x'.repeat(MAX_HEAD_BYTES)}\n\n`), /head exceeds maxHeadBytes \(65536\)/);
    expectDefect('Content-Type: a\nX: 123456789\n\n', /maxHeadBytes \(16\)/, { maxHeadBytes: 16 });
    expect(parseCgiHead(bytes('Content-Type: a\n\n'), { maxHeadBytes: 17 }).bodyStart).toBe(17);
  });
});

describe('NPH heads (B15)', () => {
  it('parses the status line and keeps every field as sent', () => {
    const head = parseCgiHead(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: 1\r\n\r\n5\r\nhello\r\n'), { nph: true });
    expect(head).toMatchObject({
      nph: true,
      protocol: 'HTTP/1.1',
      status: 200,
      reason: 'OK',
      headers: [
        ['Transfer-Encoding', 'chunked'],
        ['X', '1'],
      ],
      bodyStart: 53,
      warnings: [],
    });
  });

  it.each([
    ['HTTP/1.0 404 Nope', { protocol: 'HTTP/1.0', status: 404, reason: 'Nope' }],
    ['HTTP/1.1 404', { protocol: 'HTTP/1.1', status: 404, reason: 'Not Found' }],
    ['HTTP/1.1 500 ', { protocol: 'HTTP/1.1', status: 500, reason: 'Internal Server Error' }],
  ])('parseNphStatusLine(%j)', (line, expected) => {
    expect(parseNphStatusLine(line)).toEqual(expected);
  });

  it.each(['HTTP/2 200 OK', 'HTTP/1.1 2000 OK', 'Status: 200 OK', 'http/1.1 200 OK', 'HTTP/1.1 200 O\x01K'])(
    'refuses the status line %j',
    (line) => {
      expect(() => parseNphStatusLine(line)).toThrow(ProtocolError);
      expectDefect(`${line}\r\n\r\n`, /bad NPH status line/, { nph: true });
    },
  );
});

describe('CgiHeadReader', () => {
  const head = 'Status: 201 Created\r\nContent-Type: application/octet-stream\r\n\r\n';
  const body = Buffer.concat([bytes('\r\n\r\n'), Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))]);
  const output = Buffer.concat([bytes(head), body]);

  it.each([1, 2, 3, 7, 64, output.length])('finds the head and the body in chunks of %i bytes', (size) => {
    const reader = new CgiHeadReader();
    let result;
    let offset = 0;
    for (; offset < output.length && result === undefined; offset += size) {
      result = reader.push(output.subarray(offset, offset + size));
    }
    expect(result).toBeDefined();
    expect(reader.done).toBe(true);
    expect(result?.head.status).toBe(201);
    expect(result?.headBytes.toString('latin1')).toBe(head);
    expect(Buffer.concat([result?.body ?? Buffer.alloc(0), output.subarray(offset)])).toEqual(body);
  });

  it('splits exactly between CR and LF of the blank line', () => {
    const reader = new CgiHeadReader();
    expect(reader.push(bytes('Content-Type: a\r\n\r'))).toBeUndefined();
    const result = reader.push(bytes('\nrest'));
    expect(result?.head.bodyStart).toBe(19);
    expect(result?.body.toString()).toBe('rest');
  });

  it('reports empty output and a missing blank line at end()', () => {
    expect(() => new CgiHeadReader().end()).toThrow(/empty output/);
    const reader = new CgiHeadReader();
    reader.push(bytes('Content-Type: a\n'));
    expect(() => reader.end()).toThrow(/blank line that closes the head \(16 bytes\)/);
  });

  it('refuses an endless head without holding more than maxHeadBytes', () => {
    const reader = new CgiHeadReader({ maxHeadBytes: 1024 });
    expect(reader.push(Buffer.alloc(1000, 0x61))).toBeUndefined();
    expect(() => reader.push(Buffer.alloc(1_000_000, 0x61))).toThrow(/head exceeds maxHeadBytes \(1024\)/);
  });

  it('throws the parse defect once the head is complete', () => {
    const reader = new CgiHeadReader();
    expect(reader.push(bytes('Status: x\n'))).toBeUndefined();
    expect(() => reader.push(bytes('\n'))).toThrow(/bad Status line \(x\)/);
  });

  it('parses NPH output and keeps the raw head bytes', () => {
    const reader = new CgiHeadReader({ nph: true });
    const result = reader.push(bytes('HTTP/1.0 200 OK\nContent-Type: a\n\nhi'));
    expect(result?.head).toMatchObject({ nph: true, status: 200, protocol: 'HTTP/1.0' });
    expect(result?.headBytes.toString()).toBe('HTTP/1.0 200 OK\nContent-Type: a\n\n');
    expect(result?.body.toString()).toBe('hi');
  });

  it('refuses pushes after the head', () => {
    const reader = new CgiHeadReader();
    reader.push(bytes('Content-Type: a\n\n'));
    expect(() => reader.push(bytes('x'))).toThrow(ProtocolError);
  });
});
