import { encodeUtf8Latin1 } from './byte-policy.js';

const NON_LATIN1_RE = /[^\x00-\xff]/;

/**
 * A string as a byte string (the byte policy, environ/byte-policy.ts): unchanged when every char is a byte
 * (U+0000-U+00FF), else its UTF-8 bytes, one char each. Header values, reasons and CGI variables are byte
 * strings; text holding a char above U+00FF can't be one yet, so it goes out as UTF-8.
 */
export function toByteString(value: string): string {
  return NON_LATIN1_RE.test(value) ? encodeUtf8Latin1(value) : value;
}
