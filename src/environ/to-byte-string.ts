import { encodeUtf8Latin1 } from './byte-policy.js';

/**
 * A string as a byte string (the byte policy, environ/byte-policy.ts): unchanged when every char is a byte
 * (U+0000-U+00FF), else its UTF-8 bytes, one char each. Header values, reasons and CGI variables are byte
 * strings; text holding a char above U+00FF can't be one yet, so it goes out as UTF-8.
 */
export function toByteString(value: string): string {
  // A char loop, not a regular expression: values are short, and entering a regex costs more than this loop
  // costs to run over them (this runs for every response header).
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return encodeUtf8Latin1(value);
  return value;
}
