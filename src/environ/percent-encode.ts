/**
 * Percent-encoding byte strings (the byte policy, environ/byte-policy.ts) for URLs: the inverse of
 * percentDecodeToByteString. One table per use says what each byte becomes.
 */

/** A table of what each byte becomes: itself when `keep` matches its char, else its percent-escape ("%2F"). */
export function percentEncodeTable(keep: RegExp): readonly string[] {
  return Array.from({ length: 256 }, (_, byte) => {
    const char = String.fromCharCode(byte);
    return keep.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  });
}

/**
 * What each byte becomes in a URL path: itself when RFC 3986 §3.3 allows it in a path segment (unreserved,
 * sub-delims, ":", "@") or "/", else its percent-escape. "%" is escaped too: a decoded path's "%" was "%25" on
 * the wire, and leaving it bare would decode twice. "\\" is escaped because the URL parser would turn it into "/".
 */
const PATH_BYTE = percentEncodeTable(/[A-Za-z0-9\-._~!$&'()*+,;=:@/]/);

/**
 * Encodes a byte string with `table`, one char (byte) at a time. A char above U+00FF (not a byte string: a
 * broken byte policy) goes as its UTF-8 bytes.
 */
export function percentEncode(value: string, table: readonly string[]): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 256) {
      out += table[code] as string;
    } else {
      // A surrogate pair is one char: both halves go to the encoder together.
      const length = code >= 0xd800 && code < 0xdc00 && i + 1 < value.length ? 2 : 1;
      for (const byte of Buffer.from(value.slice(i, i + length), 'utf8')) out += table[byte] as string;
      i += length - 1;
    }
  }
  return out;
}

/** Percent-encodes a decoded byte-string path (SCRIPT_NAME, PATH_INFO) for a URL path (see PATH_BYTE). */
export function percentEncodePath(path: string): string {
  return percentEncode(path, PATH_BYTE);
}
