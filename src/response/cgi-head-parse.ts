/**
 * The host side of the CGI response head (RFC 3875 §6.2-6.3, §5.2 for NPH): a pure, byte-level parser and a
 * streaming reader that accumulates a script's stdout until the head is complete. Field names and values are
 * byte strings (one char per byte, latin-1), as everywhere else in tsgi.
 */
import { HOP_BY_HOP_HEADERS } from './hop-by-hop.js';
import { TOKEN_RE } from './status.js';
import { ProtocolError } from '../errors.js';
import type { Header } from '../types.js';
import { getStatusText } from '../helpers/status-text.js';

/** Default cap on the size of a response head, blank line included. A longer head is a defect, never buffered. */
export const MAX_HEAD_BYTES = 64 * 1024;

/**
 * The fields a response may not carry (response/hop-by-hop.ts, the one list), under the name the CGI host
 * exports (`tsgi/testing`). A CGI script can't speak for the connection, so the host drops them (conformance
 * B12h) and notes each drop in `warnings`.
 */
export const HOP_BY_HOP_FIELDS: ReadonlySet<string> = HOP_BY_HOP_HEADERS;

/** A parsed CGI (or NPH) response head. */
export interface CgiHead {
  /** The status code: from `Status:` (or the NPH status line); else 302 when there is a Location, else 200. */
  status: number;
  /** The reason phrase: the script's, or the standard one for `status` when the script gave none. */
  reason: string;
  /**
   * The header fields in the order the script wrote them, names as written, values trimmed of surrounding
   * blanks. `Status` is consumed (not listed); hop-by-hop fields are removed (CGI mode only); repeated fields
   * such as Set-Cookie stay separate pairs.
   */
  headers: Header[];
  /** Offset of the first body byte: the length of the head including the blank line. */
  bodyStart: number;
  /**
   * True for a local redirect response (§6.2.2): a `Location` holding an abs-path and no other field. The
   * host answers it with a 302 (see run-cgi.ts); a server that owns a URL space may re-dispatch instead.
   */
  localRedirect: boolean;
  /** True when the head was parsed as an NPH head (a full `HTTP/1.x NNN reason` status line). */
  nph: boolean;
  /** The HTTP version of an NPH status line ("HTTP/1.1"); undefined for a CGI head. */
  protocol?: string;
  /** Tolerated defects (a dropped hop-by-hop field...), one message each, for the error log. */
  warnings: string[];
}

/** Options of the head parser and reader. */
export interface CgiHeadOptions {
  /** Parse an NPH head (`HTTP/1.x NNN reason` first, §5.2) instead of a CGI head. Default false. */
  nph?: boolean;
  /** Cap on the head size in bytes, blank line included. Default MAX_HEAD_BYTES. */
  maxHeadBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_VALUE_RE = /^([1-5][0-9]{2})(?:[ \t]+(.*))?$/;
const NPH_STATUS_RE = /^(HTTP\/1\.[01]) ([1-5][0-9]{2})(?: (.*))?$/;

/**
 * Returns the offset of the first body byte in `bytes`, or -1 when the head is not complete yet. The head
 * ends at the first empty line; lines end in LF with an optional CR before it, so CRLF CRLF, LF LF and any mix
 * of the two end a head (§6.3 asks for CRLF; scripts written for Unix emit LF, and every server accepts it).
 * Throws a ProtocolError when no head ends within `maxHeadBytes` bytes.
 */
export function findCgiHeadEnd(bytes: Uint8Array, maxHeadBytes = MAX_HEAD_BYTES): number {
  const found = scanForHeadEnd(bytes, 0, Math.min(bytes.length, maxHeadBytes), 0);
  if (found.bodyStart >= 0) return found.bodyStart;
  if (bytes.length >= maxHeadBytes) throw headTooLarge(maxHeadBytes);
  return -1;
}

/**
 * Parses a complete CGI response head from the start of `bytes` (a script's whole output, or at least its
 * head). Returns the head and where the body starts. Throws a ProtocolError (status 500) naming the defect:
 * empty output; no blank line; a line without ":"; a bad field name; a control char or bare CR in a line; a
 * folded line; a bad `Status` value; `Status`, `Location`, `Content-Type` or differing `Content-Length`
 * twice; a non-numeric `Content-Length`; none of Content-Type, Location and Status (§6.2); a head over
 * `maxHeadBytes`. With `nph`, the first line must be `HTTP/1.x NNN reason` and only the generic line rules
 * apply.
 */
export function parseCgiHead(bytes: Uint8Array, options: CgiHeadOptions = {}): CgiHead {
  const maxHeadBytes = options.maxHeadBytes ?? MAX_HEAD_BYTES;
  if (bytes.length === 0) throw defect('empty output: no response head');
  const bodyStart = findCgiHeadEnd(bytes, maxHeadBytes);
  if (bodyStart < 0) throw defect('output ends before the blank line that closes the head', `${bytes.length} bytes`);
  return parseHeadLines(bytes, bodyStart, options.nph ?? false);
}

/**
 * Parses the status line of an NPH script's output (§5.2): `HTTP/1.0 200 OK` or `HTTP/1.1 404` (the reason
 * is optional; the standard one is filled in). Throws a ProtocolError (500) for anything else.
 */
export function parseNphStatusLine(line: string): { protocol: string; status: number; reason: string } {
  const match = NPH_STATUS_RE.exec(line);
  if (!match || CONTROL_RE.test(line)) throw defect('bad NPH status line', line);
  const status = Number(match[2]);
  const reason = match[3]?.trim() || getStatusText(status);
  return { protocol: match[1] as string, status, reason };
}

/** What CgiHeadReader.push returns once the head is complete. */
export interface CgiHeadResult {
  head: CgiHead;
  /** The raw bytes of the head, blank line included (what an NPH relay sends first). */
  headBytes: Buffer;
  /** The body bytes that arrived in the same chunks as the head (possibly empty). */
  body: Buffer;
}

/**
 * Accumulates a script's stdout chunk by chunk until the head is complete, never holding more than
 * `maxHeadBytes` of head. `push()` returns undefined while the head is incomplete, then the parsed head and the
 * body bytes that came with it; later chunks are body and don't go through the reader. `end()` reports output
 * that stopped before the head was complete. Both throw the same ProtocolErrors as parseCgiHead.
 */
export class CgiHeadReader {
  readonly #nph: boolean;
  readonly #maxHeadBytes: number;
  #buffer: Buffer = Buffer.alloc(0);
  #length = 0;
  #lineStart = 0;
  #done = false;

  constructor(options: CgiHeadOptions = {}) {
    this.#nph = options.nph ?? false;
    this.#maxHeadBytes = options.maxHeadBytes ?? MAX_HEAD_BYTES;
  }

  /** True once push() has returned the head. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds the next chunk of stdout. See the class contract. */
  push(chunk: Uint8Array): CgiHeadResult | undefined {
    if (this.#done) throw new ProtocolError('cgi-host: head reader used after the head was complete', 500);
    // Only bytes that can still belong to the head are copied; the rest of the chunk is body or excess.
    const room = this.#maxHeadBytes - this.#length;
    const taken = Math.min(room, chunk.length);
    this.#append(chunk.subarray(0, taken));
    const scanned = scanForHeadEnd(this.#buffer, this.#length - taken, this.#length, this.#lineStart);
    this.#lineStart = scanned.lineStart;
    if (scanned.bodyStart < 0) {
      if (this.#length >= this.#maxHeadBytes) throw headTooLarge(this.#maxHeadBytes);
      return undefined;
    }
    this.#done = true;
    const all = this.#buffer.subarray(0, this.#length);
    const head = parseHeadLines(all, scanned.bodyStart, this.#nph);
    const rest = Buffer.concat([all.subarray(scanned.bodyStart), chunk.subarray(taken)]);
    return { head, headBytes: Buffer.from(all.subarray(0, scanned.bodyStart)), body: rest };
  }

  /** Signals the end of stdout before the head was complete: always throws the ProtocolError for it. */
  end(): never {
    if (this.#length === 0) throw defect('empty output: no response head');
    throw defect('output ends before the blank line that closes the head', `${this.#length} bytes`);
  }

  #append(bytes: Uint8Array): void {
    const needed = this.#length + bytes.length;
    if (needed > this.#buffer.length) {
      // Doubling keeps the copying linear even when a script writes its head a byte at a time.
      const grown = Buffer.allocUnsafe(Math.min(Math.max(needed, this.#buffer.length * 2, 1024), this.#maxHeadBytes));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#length);
    this.#length = needed;
  }
}

/** Scans bytes[from, to) for the LF that ends an empty line; `lineStart` is where the current line began. */
function scanForHeadEnd(
  bytes: Uint8Array,
  from: number,
  to: number,
  lineStart: number,
): { bodyStart: number; lineStart: number } {
  for (let i = from; i < to; i++) {
    if (bytes[i] !== LF) continue;
    if (i === lineStart || (i === lineStart + 1 && bytes[lineStart] === CR)) return { bodyStart: i + 1, lineStart };
    lineStart = i + 1;
  }
  return { bodyStart: -1, lineStart };
}

function parseHeadLines(bytes: Uint8Array, bodyStart: number, nph: boolean): CgiHead {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bodyStart).toString('latin1');
  // The last two items of the split are the blank line and the empty remainder after its LF.
  const lines = text.split('\n').slice(0, -2).map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.length === 0) throw defect('output starts with a blank line: no header fields');
  const head: CgiHead = { status: 200, reason: '', headers: [], bodyStart, localRedirect: false, nph, warnings: [] };
  let first = 0;
  if (nph) {
    const status = parseNphStatusLine(lines[0] as string);
    head.protocol = status.protocol;
    head.status = status.status;
    head.reason = status.reason;
    first = 1;
  }
  const fields: Header[] = [];
  for (let i = first; i < lines.length; i++) fields.push(splitField(lines[i] as string));
  if (nph) {
    head.headers = fields;
    return head;
  }
  applyCgiFieldRules(head, fields);
  return head;
}

/** Splits one head line into [name, value], enforcing the generic line rules (§6.3, RFC 9112 §5). */
function splitField(line: string): Header {
  if (line.includes('\r')) throw defect('bare CR inside a head line', line);
  if (line.startsWith(' ') || line.startsWith('\t')) throw defect('folded (continuation) head line', line);
  const colon = line.indexOf(':');
  if (colon < 0) throw defect('head line without ":"', line);
  const name = line.slice(0, colon);
  if (!TOKEN_RE.test(name)) throw defect('bad header field name', name);
  const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
  if (CONTROL_RE.test(value)) throw defect('control character in a header value', line);
  return [name, value];
}

/** The CGI-specific rules of §6.2-6.3: Status, Location, Content-Type, and what a server must not relay. */
function applyCgiFieldRules(head: CgiHead, fields: Header[]): void {
  let status: string | undefined;
  let location: string | undefined;
  let contentType: string | undefined;
  let contentLength: string | undefined;
  for (const [name, value] of fields) {
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status !== undefined) throw defect('Status twice', value);
      status = value;
      continue;
    }
    if (lower === 'location') {
      if (location !== undefined) throw defect('Location twice', value);
      location = value;
    } else if (lower === 'content-type') {
      if (contentType !== undefined) throw defect('Content-Type twice', value);
      contentType = value;
    } else if (lower === 'content-length') {
      if (!/^[0-9]+$/.test(value)) throw defect('bad Content-Length', value);
      if (contentLength !== undefined && contentLength !== value) throw defect('differing Content-Length', value);
      contentLength = value;
    } else if (HOP_BY_HOP_FIELDS.has(lower)) {
      head.warnings.push(`cgi-host: hop-by-hop field removed from the response (${name}: ${value})`);
      continue;
    }
    head.headers.push([name, value]);
  }
  if (status === undefined && location === undefined && contentType === undefined) {
    throw defect('head has none of Content-Type, Location, Status', fields.map(([name]) => name).join(', '));
  }
  if (status !== undefined) {
    const match = STATUS_VALUE_RE.exec(status);
    if (!match) throw defect('bad Status line', status);
    head.status = Number(match[1]);
    head.reason = match[2]?.trim() || getStatusText(Number(match[1]));
  } else {
    // §6.2.3: a redirect without Status is a 302; everything else defaults to 200 (§6.3.3).
    head.status = location === undefined ? 200 : 302;
    head.reason = getStatusText(head.status);
  }
  head.localRedirect =
    status === undefined && location !== undefined && fields.length === 1 && /^\/(?!\/)/.test(location);
}

function headTooLarge(maxHeadBytes: number): ProtocolError {
  return defect('head exceeds maxHeadBytes', String(maxHeadBytes));
}

/** A malformed head is the script's fault, answered with 500 like Apache's "malformed header from script". */
function defect(rule: string, value?: string): ProtocolError {
  return new ProtocolError(`cgi-host: ${rule}${value === undefined ? '' : ` (${formatValue(value)})`}`, 500);
}

function formatValue(value: string): string {
  const short = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  // Quoted when blanks at either end or non-printable bytes would otherwise be invisible in the log.
  return /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(short) ? short : JSON.stringify(short);
}
