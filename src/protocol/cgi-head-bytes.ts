import type { Header } from '../types.js';

/**
 * A CGI response head (`Status: NNN reason`, or with `protocol` an NPH status line such as `HTTP/1.1 NNN
 * reason`; the headers; a blank line: RFC 3875 §5.2, §6.2-6.3) written straight into a caller's buffer, with no
 * string or Buffer made on the way: the bytes formatCgiHead (response/cgi-head.ts) returns, for the common head.
 * Only that one: a head with a char above U+00FF (formatCgiHead encodes such a field as UTF-8) or a field
 * formatCgiHead handles itself (Transfer-Encoding) is left to formatCgiHead, and cgiHeadLength says so.
 * Test: test/protocol/cgi-head-bytes.test.ts (the same bytes as formatCgiHead).
 */

const STATUS_PREFIX = 'Status: ';
/** 3 digits + " " + "\r\n" after the prefix, then the blank line's "\r\n". */
const FIXED_BYTES = 3 + 1 + 2 + 2;

/**
 * Bytes of the head writeCgiHead writes for these arguments, or -1 when it must come from formatCgiHead
 * instead (a char above U+00FF, a Transfer-Encoding field, a code that is not 3 digits). `protocol`: as
 * formatCgiHead's `nph.protocol` (a byte string).
 */
export function cgiHeadLength(code: number, reason: string, headers: readonly Header[], protocol?: string): number {
  if (!(code >= 100 && code <= 999) || !isByteString(reason) || (protocol !== undefined && !isByteString(protocol))) return -1;
  let length = FIXED_BYTES + reason.length + (protocol === undefined ? STATUS_PREFIX.length : protocol.length + 1);
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i] as Header;
    const name = header[0];
    const value = header[1];
    if (isTransferEncoding(name) || !isByteString(name) || !isByteString(value)) return -1;
    length += name.length + value.length + 4;
  }
  return length;
}

/**
 * Writes the head into `target` at `at` and returns where it ends. Call only after cgiHeadLength gave a length
 * (>= 0) for the same arguments, with that many bytes free at `at`.
 */
export function writeCgiHead(target: Uint8Array, at: number, code: number, reason: string, headers: readonly Header[], protocol?: string): number {
  let to: number;
  if (protocol === undefined) to = writeLatin1(target, at, STATUS_PREFIX);
  else {
    to = writeLatin1(target, at, protocol);
    target[to++] = 0x20;
  }
  target[to] = 0x30 + Math.floor(code / 100);
  target[to + 1] = 0x30 + (Math.floor(code / 10) % 10);
  target[to + 2] = 0x30 + (code % 10);
  target[to + 3] = 0x20;
  to = writeLatin1(target, to + 4, reason);
  to = writeCrLf(target, to);
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i] as Header;
    to = writeLatin1(target, to, header[0]);
    target[to] = 0x3a; // ":"
    target[to + 1] = 0x20;
    to = writeLatin1(target, to + 2, header[1]);
    to = writeCrLf(target, to);
  }
  return writeCrLf(target, to);
}

/** True when every char of `text` is a byte (U+0000-U+00FF). */
function isByteString(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

function isTransferEncoding(name: string): boolean {
  return name.length === 17 && name.toLowerCase() === 'transfer-encoding';
}

/** Copies a byte string's chars as bytes (a loop: cheaper than a native call for the short strings of a head). */
function writeLatin1(target: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) target[at + i] = text.charCodeAt(i);
  return at + text.length;
}

function writeCrLf(target: Uint8Array, at: number): number {
  target[at] = 0x0d;
  target[at + 1] = 0x0a;
  return at + 2;
}

/** Heads longer than this are not kept by a CgiHeadCache. */
export const MAX_CACHED_HEAD_BYTES = 1024;

/**
 * The last head written, kept as bytes: an app answers with the same status and headers most of the time, and
 * copying the bytes of the head before costs less than writing it again. The next head is compared with it
 * string by string (usually the very same string objects: each test a pointer compare). Heads written by
 * writeCgiHead only (so equal arguments mean equal bytes). Decoding and writing are synchronous: one cache can
 * serve a whole process.
 */
export class CgiHeadCache {
  #code = 0;
  #reason = '';
  #protocol: string | undefined = undefined;
  /** The names and values, in order. */
  readonly #strings: string[] = [];
  #bytes: Uint8Array | null = null;

  /** Bytes of the cached head when it is the head for these arguments, else -1. */
  lengthOf(code: number, reason: string, headers: readonly Header[], protocol?: string): number {
    const bytes = this.#bytes;
    if (bytes === null || code !== this.#code || reason !== this.#reason || protocol !== this.#protocol || 2 * headers.length !== this.#strings.length) return -1;
    const strings = this.#strings;
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as Header;
      if (header[0] !== strings[2 * i] || header[1] !== strings[2 * i + 1]) return -1;
    }
    return bytes.length;
  }

  /** Copies the cached head into `target` at `at` (after lengthOf said it is the one); returns where it ends. */
  copyTo(target: Uint8Array, at: number): number {
    const bytes = this.#bytes as Uint8Array;
    target.set(bytes, at);
    return at + bytes.length;
  }

  /** Keeps `head` (the bytes writeCgiHead wrote for these arguments: copied) as the cached head. */
  store(code: number, reason: string, headers: readonly Header[], protocol: string | undefined, head: Uint8Array): void {
    if (head.length > MAX_CACHED_HEAD_BYTES) return;
    this.#code = code;
    this.#reason = reason;
    this.#protocol = protocol;
    const strings = this.#strings;
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as Header;
      strings[2 * i] = header[0];
      strings[2 * i + 1] = header[1];
    }
    // What is left of a longer head before is let go (no strings kept alive past their use).
    strings.length = 2 * headers.length;
    if (this.#bytes === null || this.#bytes.length !== head.length) this.#bytes = new Uint8Array(head.length);
    this.#bytes.set(head);
  }
}
