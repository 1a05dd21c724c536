import { ProtocolError } from '../../errors.js';
import { addVariable } from '../../environ/variables.js';
import { NameValueCache, cachedString } from '../fastcgi/name-value.js';
import { newVariables } from '../../environ/variables.js';
import type { AddVariable } from '../request-variables.js';

/** Bytes of a uwsgi packet header: modifier1 (u8), datasize (u16 little-endian), modifier2 (u8). */
export const UWSGI_HEADER_BYTES = 4;
/** The largest vars block a packet can carry: datasize is 16 bits (conformance E4). */
export const MAX_UWSGI_VARS_BYTES = 65535;
/** modifier1 of a WSGI/CGI-style request with a vars block, the only kind a tsgi server answers (E2). */
export const UWSGI_MODIFIER_REQUEST = 0;

/** The 4-byte header of a uwsgi packet. */
export interface UwsgiPacketHeader {
  modifier1: number;
  /** Bytes of the vars block that follows. */
  datasize: number;
  modifier2: number;
}

/** A complete uwsgi request head, as the decoder and the reader return it. */
export interface UwsgiRequest {
  /**
   * The vars as byte strings (one char per byte), in a fresh object the caller owns. A repeated HTTP_* var (nginx
   * passes a repeated request header as one var per field) is joined as HTTP joins it; another repeated var: the
   * later one wins (addVariable).
   */
  variables: Record<string, string>;
  /** CONTENT_LENGTH as a number: absent or "" count as 0 (E3). */
  contentLength: number;
  /** The bytes that followed the vars block in the chunk that completed it: the start of the body. */
  rest: Uint8Array;
}

const DIGITS_RE = /^[0-9]+$/;
/** CONTENT_LENGTH digits: more than 15 could exceed Number.MAX_SAFE_INTEGER. */
const MAX_LENGTH_DIGITS = 15;
const EMPTY = new Uint8Array(0);
/**
 * The strings of the last vars block decoded, reused when the same bytes come again (see cachedString): the web
 * server sends the same names in the same order on every request. One per process: decoding is synchronous.
 */
const STRING_CACHE = new NameValueCache();

/** Decodes a packet header from the first 4 bytes of `bytes` (no checks on the modifiers). */
export function decodeUwsgiHeader(bytes: Uint8Array): UwsgiPacketHeader {
  if (bytes.length < UWSGI_HEADER_BYTES) throw new ProtocolError(`uwsgi: packet header needs 4 bytes (${bytes.length})`, 400);
  return { modifier1: bytes[0] as number, datasize: (bytes[1] as number) | ((bytes[2] as number) << 8), modifier2: bytes[3] as number };
}

/**
 * Encodes vars as a uwsgi vars block: for each pair, u16 LE key size, key, u16 LE value size, value. Names
 * and values are byte strings of at most 65535 bytes; anything else is a bug (throws ProtocolError 500).
 */
export function encodeUwsgiVars(pairs: Iterable<readonly [string, string]>): Buffer {
  const list = [...pairs];
  let size = 0;
  for (const [name, value] of list) {
    if (/[^\x00-\xff]/.test(name + value)) throw new ProtocolError(`uwsgi: var is not a byte string (${name})`, 500);
    if (name.length > 0xffff || value.length > 0xffff) throw new ProtocolError(`uwsgi: var longer than 65535 bytes (${name.slice(0, 40)})`, 500);
    size += 4 + name.length + value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [name, value] of list) {
    out.writeUInt16LE(name.length, at);
    at += 2 + out.write(name, at + 2, 'latin1');
    out.writeUInt16LE(value.length, at);
    at += 2 + out.write(value, at + 2, 'latin1');
  }
  return out;
}

/**
 * Encodes a whole uwsgi packet: the 4-byte header, then `vars` (pairs, or an already encoded block) and the
 * body. Throws ProtocolError (500) when the vars block exceeds MAX_UWSGI_VARS_BYTES. For tests and clients:
 * the caller sets CONTENT_LENGTH.
 */
export function encodeUwsgiPacket(
  vars: Iterable<readonly [string, string]> | Record<string, string> | Uint8Array,
  body: Uint8Array | string = '',
  modifier1 = UWSGI_MODIFIER_REQUEST,
  modifier2 = 0,
): Buffer {
  const block = vars instanceof Uint8Array ? vars : encodeUwsgiVars(Symbol.iterator in vars ? (vars as Iterable<readonly [string, string]>) : Object.entries(vars));
  if (block.length > MAX_UWSGI_VARS_BYTES) throw new ProtocolError(`uwsgi: vars block exceeds 65535 bytes (${block.length})`, 500);
  const head = Buffer.from([modifier1, block.length & 0xff, block.length >>> 8, modifier2]);
  return Buffer.concat([head, block, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/**
 * Decodes a complete vars block: u16 LE key size, key, u16 LE value size, value, repeated until the block is
 * exactly used up. A size running past the block (a truncated var) throws a ProtocolError (400) before
 * anything is sliced. Empty names are refused. A repeated name goes through addVariable: repeats of an HTTP_*
 * var are joined (", ", "; " for HTTP_COOKIE), as tsgi's HTTP server joins repeated header fields; for any
 * other name the later one wins (a uwsgi_param given twice). `add` stores each var (addRequestVariable: for a
 * server).
 */
export function decodeUwsgiVars(block: Uint8Array, add: AddVariable = addVariable): Record<string, string> {
  const buffer = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.length);
  const end = buffer.length;
  const variables = newVariables();
  let at = 0;
  let slot = 0;
  while (at < end) {
    if (end - at < 2) throw new ProtocolError(`uwsgi: truncated var: key size cut at byte ${at} of ${end}`, 400);
    const keySize = (buffer[at] as number) | ((buffer[at + 1] as number) << 8);
    at += 2;
    if (keySize === 0) throw new ProtocolError(`uwsgi: empty var name (at byte ${at - 2})`, 400);
    if (end - at < keySize + 2) throw new ProtocolError(`uwsgi: truncated var: key of ${keySize} bytes runs past the block (${end})`, 400);
    const name = cachedString(buffer, at, keySize, STRING_CACHE, slot++);
    at += keySize;
    const valueSize = (buffer[at] as number) | ((buffer[at + 1] as number) << 8);
    at += 2;
    if (end - at < valueSize) throw new ProtocolError(`uwsgi: truncated var: value of ${name.slice(0, 40)} runs past the block (${valueSize})`, 400);
    add(variables, name, cachedString(buffer, at, valueSize, STRING_CACHE, slot++));
    at += valueSize;
  }
  return variables;
}

/** CONTENT_LENGTH of decoded vars: absent or "" is 0, else decimal digits (ProtocolError 400 otherwise). */
function contentLengthOf(variables: Record<string, string>): number {
  const raw = variables.CONTENT_LENGTH;
  if (raw === undefined || raw === '') return 0;
  if (!DIGITS_RE.test(raw) || raw.length > MAX_LENGTH_DIGITS) throw new ProtocolError(`uwsgi: CONTENT_LENGTH must be decimal digits (${raw.slice(0, 40)})`, 400);
  return Number(raw);
}

/**
 * Reads one uwsgi request head (packet header + vars block) from a byte stream split anywhere. modifier1 and
 * modifier2 must both be 0 (a WSGI request, E2), and datasize must not exceed `maxVarsBytes` (at most 65535,
 * the protocol's own limit), checked before the block is buffered. A head that arrives in one chunk is
 * decoded where it lies. push() throws a ProtocolError (400) for anything malformed; once the head is
 * complete the reader is spent.
 */
export class UwsgiRequestReader {
  readonly #maxVarsBytes: number;
  readonly #header = Buffer.alloc(UWSGI_HEADER_BYTES);
  #headerFilled = 0;
  #block: Buffer | null = null;
  #blockFilled = 0;
  #done = false;
  readonly #add: AddVariable;

  /** `add` stores each var (see decodeUwsgiVars). */
  constructor(maxVarsBytes = MAX_UWSGI_VARS_BYTES, add: AddVariable = addVariable) {
    this.#maxVarsBytes = Math.min(maxVarsBytes, MAX_UWSGI_VARS_BYTES);
    this.#add = add;
  }

  /** Feeds the next bytes: returns the request head once complete (`rest` = the bytes after it), else null. */
  push(chunk: Uint8Array): UwsgiRequest | null {
    if (this.#done) throw new ProtocolError('uwsgi: request reader used after the head was complete', 500);
    let at = 0;
    const end = chunk.length;
    if (this.#block === null) {
      if (this.#headerFilled === 0 && end >= UWSGI_HEADER_BYTES) {
        const datasize = this.#checkHeader(decodeUwsgiHeader(chunk));
        // The common case: header and vars in this chunk, decoded where they lie.
        if (end - UWSGI_HEADER_BYTES >= datasize) {
          return this.#finish(chunk.subarray(UWSGI_HEADER_BYTES, UWSGI_HEADER_BYTES + datasize), chunk.subarray(UWSGI_HEADER_BYTES + datasize));
        }
        this.#block = Buffer.allocUnsafe(datasize);
        at = UWSGI_HEADER_BYTES;
      } else {
        const take = Math.min(UWSGI_HEADER_BYTES - this.#headerFilled, end);
        this.#header.set(chunk.subarray(0, take), this.#headerFilled);
        this.#headerFilled += take;
        at = take;
        if (this.#headerFilled < UWSGI_HEADER_BYTES) return null;
        this.#block = Buffer.allocUnsafe(this.#checkHeader(decodeUwsgiHeader(this.#header)));
      }
    }
    const block = this.#block;
    const take = Math.min(end - at, block.length - this.#blockFilled);
    block.set(chunk.subarray(at, at + take), this.#blockFilled);
    this.#blockFilled += take;
    if (this.#blockFilled < block.length) return null;
    return this.#finish(block, chunk.subarray(at + take));
  }

  #checkHeader(header: UwsgiPacketHeader): number {
    if (header.modifier1 !== UWSGI_MODIFIER_REQUEST || header.modifier2 !== 0) {
      throw new ProtocolError(`uwsgi: only modifier1=0 modifier2=0 requests are served (${header.modifier1}/${header.modifier2})`, 400);
    }
    if (header.datasize > this.#maxVarsBytes) throw new ProtocolError(`uwsgi: vars block exceeds maxHeaderBytes (${header.datasize})`, 400);
    return header.datasize;
  }

  #finish(block: Uint8Array, rest: Uint8Array): UwsgiRequest {
    this.#done = true;
    this.#block = null;
    const variables = decodeUwsgiVars(block, this.#add);
    return { variables, contentLength: contentLengthOf(variables), rest: rest.length === 0 ? EMPTY : rest };
  }
}
