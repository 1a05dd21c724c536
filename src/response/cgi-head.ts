import type { Header } from '../types.js';

/**
 * Formats a CGI response head (RFC 3875 §6.2-6.3): `Status: NNN reason`, the headers, a blank line. With
 * `nph`, a full HTTP status line instead (§5.2). Lines end in CRLF. Header values are byte strings; chars
 * above U+00FF can't be sent and are encoded as UTF-8.
 */
export function formatCgiHead(
  code: number,
  reason: string,
  headers: readonly Header[],
  nph?: { protocol: string },
): Buffer {
  let head = nph ? `${nph.protocol} ${code} ${reason}\r\n` : `Status: ${code} ${reason}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  head += '\r\n';
  return /[^\x00-\xff]/.test(head) ? Buffer.from(head, 'utf8') : Buffer.from(head, 'latin1');
}
