import { describe, expect, it } from 'vitest';
import { parseResponseHead } from '../../src/bridges/node-handler/response-head.js';

describe('parseResponseHead (Node\'s serialized head read back)', () => {
  it('reads status and headers, drops hop-by-hop fields, and answers a repeated status line alike', () => {
    const first = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive');
    expect(first).toEqual({ code: 200, status: '200 OK', headers: [['Content-Type', 'text/plain'], ['Content-Length', '2']], chunked: false, sized: true });
    const again = parseResponseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked');
    expect(again).toMatchObject({ code: 200, status: '200 OK', headers: [], chunked: true, sized: false });
    expect(parseResponseHead('HTTP/1.1 404 Not Found').status).toBe('404 Not Found');
    expect(parseResponseHead('HTTP/1.1 299 ').status).toBe('299');
  });

  it('refuses a bad status line, also right after a good one and when empty', () => {
    parseResponseHead('HTTP/1.1 200 OK');
    expect(() => parseResponseHead('')).toThrow(/bad status line/);
    expect(() => parseResponseHead('HTTP/1.1 2000 OK')).toThrow(/bad status line/);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nX: 1'.slice(0, 8))).toThrow(/bad status line/);
  });
});
