import { ProtocolError } from '../../errors.js';
import { addVariable, hasVariable } from '../../environ/variables.js';
import { NameValueCache, cachedString } from '../fastcgi/name-value.js';
import { newVariables } from '../../environ/variables.js';
import type { AddVariable } from '../request-variables.js';

/** Default cap on the header netstring's payload of one request: far above what web servers send (a few KiB). */
export const DEFAULT_MAX_SCGI_HEADER_BYTES = 1024 * 1024;

/** A complete SCGI request header, as the decoder and the reader return it. */
export interface ScgiHeader {
  /** The headers as byte strings (one char per byte), in a fresh object the caller owns. */
  variables: Record<string, string>;
  /** CONTENT_LENGTH as a number ("" counts as 0). */
  contentLength: number;
  /** The bytes that followed the netstring's "," in the chunk that completed it: the start of the body. */
  rest: Uint8Array;
}

const COLON = 0x3a;
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;
/** CONTENT_LENGTH digits: more than 15 could exceed Number.MAX_SAFE_INTEGER. */
const MAX_LENGTH_DIGITS = 15;
const DIGITS_RE = /^[0-9]*$/;
const EMPTY = new Uint8Array(0);
/**
 * The strings of the last header decoded, reused when the same bytes come again (see cachedString): the web
 * server sends the same names in the same order on every request. One per process: decoding is synchronous.
 */
const STRING_CACHE = new NameValueCache();

/**
 * Encodes name-value pairs as an SCGI header netstring: `len:name\0value\0...,` with `len` the payload's
 * length in decimal (SCGI spec, "Request format"). The pairs go out as given: the caller puts CONTENT_LENGTH
 * first and includes SCGI=1 (encodeScgiRequest does). Names and values are byte strings; a char above U+00FF
 * or a NUL is a bug (throws ProtocolError 500).
 */
export function encodeScgiHeader(pairs: Iterable<readonly [string, string]>): Buffer {
  let payload = '';
  for (const [name, value] of pairs) {
    if (/[^\x01-\xff]/.test(name + value)) throw new ProtocolError(`scgi: header is not a NUL-free byte string (${name})`, 500);
    payload += `${name}\0${value}\0`;
  }
  return Buffer.from(`${payload.length}:${payload},`, 'latin1');
}

/**
 * Encodes a whole SCGI request: CONTENT_LENGTH (the body's length) first, SCGI=1, then `variables` (any
 * CONTENT_LENGTH or SCGI among them is skipped), then the body (a string is sent as UTF-8). For tests and
 * clients.
 */
export function encodeScgiRequest(variables: Record<string, string> | Iterable<readonly [string, string]>, body: Uint8Array | string = ''): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const pairs: Array<readonly [string, string]> = [
    ['CONTENT_LENGTH', String(bytes.length)],
    ['SCGI', '1'],
  ];
  const entries = Symbol.iterator in variables ? (variables as Iterable<readonly [string, string]>) : Object.entries(variables);
  for (const pair of entries) if (pair[0] !== 'CONTENT_LENGTH' && pair[0] !== 'SCGI') pairs.push(pair);
  return Buffer.concat([encodeScgiHeader(pairs), bytes]);
}

/**
 * Decodes the payload of an SCGI header netstring (what lies between ":" and ","): NUL-terminated names and
 * values; CONTENT_LENGTH first, decimal digits (or "" for no body); SCGI present and "1"; no empty names.
 * Empty values are kept (nginx sends CONTENT_TYPE ""). Throws a ProtocolError (400) naming the rule broken.
 * `rest` of the result is empty.
 *
 * Duplicates: the SCGI spec says "duplicate names are not allowed", but nginx (scgi_pass) sends a request
 * header given twice (two Cookie or X-Forwarded-For lines) as two HTTP_* headers, and refusing those would
 * answer 400 to a valid HTTP request. So repeats of an HTTP_* name are joined as HTTP joins repeated fields
 * (addVariable: ", ", "; " for HTTP_COOKIE), the same environ every other transport gives. A repeated non-HTTP
 * name (CONTENT_LENGTH, SCRIPT_NAME, an scgi_param...) is still refused: no web server sends one for a request,
 * and which of two CONTENT_LENGTHs framed the body is exactly the ambiguity the spec's rule prevents.
 * `add` stores each pair (addRequestVariable, for a server, leaves out an empty CONTENT_LENGTH or CONTENT_TYPE;
 * the checks above apply to what was sent either way).
 */
export function decodeScgiHeaders(payload: Uint8Array, add: AddVariable = addVariable): ScgiHeader {
  const buffer = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  const end = buffer.length;
  if (end === 0 || buffer[end - 1] !== 0) throw new ProtocolError('scgi: header block must end with a NUL (no terminator)', 400);
  const variables = newVariables();
  let at = 0;
  let slot = 0;
  /** The first header's value (CONTENT_LENGTH, checked), and whether a CONTENT_TYPE came (`add` may not store it). */
  let rawLength: string | null = null;
  let sawContentType = false;
  while (at < end) {
    // The block ends with a NUL (checked above), so these scans stop inside it.
    let nameEnd = at;
    while (buffer[nameEnd] !== 0) nameEnd++;
    if (nameEnd === at) throw new ProtocolError(`scgi: empty header name (at byte ${at})`, 400);
    const name = cachedString(buffer, at, nameEnd - at, STRING_CACHE, slot++);
    if (nameEnd + 1 >= end) throw new ProtocolError(`scgi: header without a value (${name.slice(0, 40)})`, 400);
    let valueEnd = nameEnd + 1;
    while (buffer[valueEnd] !== 0) valueEnd++;
    if (rawLength === null && name !== 'CONTENT_LENGTH') throw new ProtocolError(`scgi: the first header must be CONTENT_LENGTH (${name.slice(0, 40)})`, 400);
    if (rawLength !== null && !name.startsWith('HTTP_') && isRepeat(variables, name, sawContentType)) {
      throw new ProtocolError(`scgi: duplicate header (${name.slice(0, 40)})`, 400);
    }
    const value = cachedString(buffer, nameEnd + 1, valueEnd - nameEnd - 1, STRING_CACHE, slot++);
    if (rawLength === null) rawLength = value;
    else if (name === 'CONTENT_TYPE') sawContentType = true;
    add(variables, name, value);
    at = valueEnd + 1;
  }
  const length = rawLength as string;
  if (!DIGITS_RE.test(length) || length.length > MAX_LENGTH_DIGITS) {
    throw new ProtocolError(`scgi: CONTENT_LENGTH must be decimal digits (${length.slice(0, 40)})`, 400);
  }
  if (variables.SCGI !== '1') {
    throw new ProtocolError(`scgi: the SCGI header must be "1" (${variables.SCGI === undefined ? 'missing' : variables.SCGI.slice(0, 40)})`, 400);
  }
  return { variables, contentLength: length === '' ? 0 : Number(length), rest: EMPTY };
}

/** True when a header after the first one repeats an earlier one (CONTENT_LENGTH is always the first). */
function isRepeat(variables: Record<string, string>, name: string, sawContentType: boolean): boolean {
  if (name === 'CONTENT_LENGTH') return true;
  if (name === 'CONTENT_TYPE') return sawContentType;
  return hasVariable(variables, name);
}

/**
 * Reads one SCGI request header from a byte stream split anywhere: the length digits, ":", the payload, ","
 * (a netstring: decimal, no leading zeros, both delimiters required). The declared length is checked against
 * `maxHeaderBytes` as each digit arrives, so nothing past the cap is ever buffered. A header that arrives in
 * one chunk is decoded where it lies, without a copy. push() throws a ProtocolError (400) for a malformed or
 * oversized header (see decodeScgiHeaders for the rules on the payload); once the header is complete the
 * reader is spent.
 */
export class ScgiHeaderReader {
  readonly #maxHeaderBytes: number;
  #length = 0;
  #digits = 0;
  #payload: Buffer | null = null;
  #filled = 0;
  #done = false;

  readonly #add: AddVariable;

  /** `add` stores each header (see decodeScgiHeaders). */
  constructor(maxHeaderBytes = DEFAULT_MAX_SCGI_HEADER_BYTES, add: AddVariable = addVariable) {
    this.#maxHeaderBytes = maxHeaderBytes;
    this.#add = add;
  }

  /** Feeds the next bytes: returns the header once complete (`rest` = the bytes after it), else null. */
  push(chunk: Uint8Array): ScgiHeader | null {
    if (this.#done) throw new ProtocolError('scgi: header reader used after the header was complete', 500);
    let at = 0;
    const end = chunk.length;
    while (this.#payload === null && at < end) {
      const byte = chunk[at++] as number;
      if (byte === COLON) {
        if (this.#digits === 0) throw new ProtocolError('scgi: netstring without a length (":" first)', 400);
        // The common case: the whole netstring is in this chunk, so it is decoded where it lies.
        if (end - at > this.#length) return this.#finish(chunk.subarray(at, at + this.#length + 1), chunk.subarray(at + this.#length + 1));
        this.#payload = Buffer.allocUnsafe(this.#length + 1);
        break;
      }
      if (byte < ZERO || byte > NINE) {
        throw new ProtocolError(`scgi: netstring length must be decimal digits (0x${byte.toString(16).padStart(2, '0')})`, 400);
      }
      if (this.#digits === 1 && this.#length === 0) throw new ProtocolError('scgi: netstring length has a leading zero', 400);
      this.#length = this.#length * 10 + (byte - ZERO);
      this.#digits++;
      if (this.#length > this.#maxHeaderBytes) throw new ProtocolError(`scgi: header exceeds maxHeaderBytes (${this.#maxHeaderBytes})`, 400);
    }
    const payload = this.#payload;
    if (payload === null || at >= end) return null;
    const take = Math.min(end - at, payload.length - this.#filled);
    payload.set(chunk.subarray(at, at + take), this.#filled);
    this.#filled += take;
    if (this.#filled < payload.length) return null;
    return this.#finish(payload, chunk.subarray(at + take));
  }

  /** Checks the "," that ends `block` (payload + ","), then decodes the payload; `rest` starts the body. */
  #finish(block: Uint8Array, rest: Uint8Array): ScgiHeader {
    const comma = block[block.length - 1] as number;
    if (comma !== COMMA) throw new ProtocolError(`scgi: netstring must end with "," (0x${comma.toString(16).padStart(2, '0')})`, 400);
    this.#done = true;
    this.#payload = null;
    const header = decodeScgiHeaders(block.subarray(0, block.length - 1), this.#add);
    header.rest = rest.length === 0 ? EMPTY : rest;
    return header;
  }
}
