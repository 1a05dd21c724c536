import { describe, expect, it } from 'vitest';
import { formatCgiHead } from '../../src/response/cgi-head.js';

describe('formatCgiHead', () => {
  it('writes Status, the headers and a blank line, each ending in CRLF', () => {
    const head = formatCgiHead(404, 'Not Found', [['Content-Type', 'text/plain'], ['X-A', 'b']]);
    expect(head.toString('latin1')).toBe('Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: b\r\n\r\n');
  });

  it('an NPH head starts with the HTTP status line', () => {
    expect(formatCgiHead(200, 'OK', [], { protocol: 'HTTP/1.1' }).toString('latin1')).toBe('HTTP/1.1 200 OK\r\n\r\n');
  });

  it('byte-string values keep their bytes (one char = one byte)', () => {
    const head = formatCgiHead(200, 'OK', [['X-Latin', '\u00e9\u00ff']]);
    expect(head.toString('hex')).toContain(Buffer.from('X-Latin: ').toString('hex') + 'e9ff0d0a');
  });

  it('only a field with chars above U+00FF is encoded as UTF-8; the others keep their bytes', () => {
    const head = formatCgiHead(200, 'OK', [['A', '\u00e9'], ['B', '€']]);
    const hex = head.toString('hex');
    expect(hex).toContain('413a20e90d0a'); // "A: \xe9\r\n"
    expect(hex).toContain('423a20e282ac0d0a'); // "B: " + UTF-8 of €
    expect(formatCgiHead(200, 'Ç€', []).toString('hex')).toContain('c387e282ac');
  });
});
