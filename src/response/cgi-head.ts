import { toByteString } from '../environ/to-byte-string.js';
import type { Header } from '../types.js';

/**
 * Formats a CGI response head (RFC 3875 §6.2-6.3): `Status: NNN reason`, the headers, a blank line. With
 * `nph`, a full HTTP status line instead (§5.2). Lines end in CRLF. Header values are byte strings (one char
 * per byte); a field holding chars above U+00FF can't be sent as such, and only that field is encoded as UTF-8
 * (the others keep their bytes).
 */
export function formatCgiHead(
  code: number,
  reason: string,
  headers: readonly Header[],
  nph?: { protocol: string },
): Buffer {
  let head = nph ? `${nph.protocol} ${code} ${reason}\r\n` : `Status: ${code} ${reason}\r\n`;
  for (const [name, value] of headers) if (!isFramingRequest(name, value)) head += `${name}: ${value}\r\n`;
  head += '\r\n';
  if (!WIDE_CHAR_RE.test(head)) return Buffer.from(head, 'latin1');
  let wide = nph ? `${nph.protocol} ${code} ${toByteString(reason)}\r\n` : `Status: ${code} ${toByteString(reason)}\r\n`;
  for (const [name, value] of headers) if (!isFramingRequest(name, value)) wide += `${toByteString(name)}: ${toByteString(value)}\r\n`;
  return Buffer.from(`${wide}\r\n`, 'latin1');
}

const WIDE_CHAR_RE = /[^\x00-\xff]/;

/**
 * `Transfer-Encoding: chunked` from an app only asks that no Content-Length be computed (docs/SPEC.md section 3):
 * the web server frames the body, so the field never reaches it. (Any other hop-by-hop field is passed on as the
 * app wrote it: the web server drops it, and the validator reports it, F14.)
 */
function isFramingRequest(name: string, value: string): boolean {
  return name.length === 17 && name.toLowerCase() === 'transfer-encoding' && value.trim().toLowerCase() === 'chunked';
}
