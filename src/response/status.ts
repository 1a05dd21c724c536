import { AppError } from '../errors.js';
import type { Header } from '../types.js';
import { isHopByHop } from './hop-by-hop.js';

/** A parsed status line: code and reason phrase. */
export interface Status {
  code: number;
  reason: string;
}

const STATUS_RE = /^([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/** An HTTP token (RFC 9110 §5.6.2): what a header name or a method must be. */
export const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses "NNN Reason" as passed to startResponse. Throws AppError for anything else. */
export function parseStatus(status: unknown): Status {
  if (typeof status !== 'string') throw new AppError(`response: status must be a string (${typeof status})`);
  // Apps answer with a handful of statuses: remember them (frozen, shared) instead of matching every time; the
  // last one is compared first (most often the same string, which is one comparison).
  if (status === lastStatus) return lastParsed as Status;
  const known = parsedStatuses.get(status);
  if (known) {
    lastStatus = status;
    lastParsed = known;
    return known;
  }
  const match = STATUS_RE.exec(status);
  if (!match) throw new AppError(`response: bad status (${JSON.stringify(status).slice(0, 60)})`);
  const parsed = Object.freeze({ code: Number(match[1]), reason: match[2] ?? '' });
  if (parsedStatuses.size < MAX_REMEMBERED_STATUSES) parsedStatuses.set(status, parsed);
  return parsed;
}

const MAX_REMEMBERED_STATUSES = 256;
/** The status string parseStatus answered last from parsedStatuses, and its answer. */
let lastStatus: string | null = null;
let lastParsed: Status | null = null;
const parsedStatuses = new Map<string, Status>();

/**
 * What checkHeaders learnt about a header list while it checked it, so that nobody scans the list again for
 * it: runApp reads the framing fields from it, a transport that frames the response itself (toNodeListener's
 * sink) skips its per-header work when the list needs none.
 */
export interface HeaderFacts {
  /** The value of the (first) Content-Length header, already checked to be 1*DIGIT; undefined when none. */
  contentLength: string | undefined;
  /** True when the list holds a Transfer-Encoding header (any case). */
  transferEncoding: boolean;
  /** True when the list holds a hop-by-hop field (hop-by-hop.ts), Transfer-Encoding included. */
  hopByHop: boolean;
  /** True when a value holds a char above U+00FF (it is no byte string yet: see toByteString). */
  wide: boolean;
}

/**
 * Checks response headers: an array of [name, value] string pairs, names are tokens and not "Status", values
 * hold no control character but HTAB (CR/LF would split the response, field-notes T36). Throws AppError naming the bad header.
 *
 * Content-Length frames the body for whoever reads the response (a browser, nginx reading FastCGI, SCGI or
 * uwsgi), so it must mean one thing to every reader: its value must be 1*DIGIT up to Number.MAX_SAFE_INTEGER
 * (not "-1", "+3", "", "3, 50", " 3"), and several Content-Length headers must all have the same value. Two
 * readers could otherwise frame the response differently (tsgi by the first, nginx by the last: a response
 * desync). Such a head is refused here, before anything is sent (the app error becomes a 500, logged).
 * Repeated identical Content-Length headers are collapsed to one: the array returned is then a new one without
 * the repeats; otherwise it is `headers` itself. When `facts` is given, it is filled in (see HeaderFacts).
 */
export function checkHeaders(headers: unknown, facts?: HeaderFacts): Header[] {
  if (!Array.isArray(headers)) throw new AppError('response: headers must be an array of [name, value] pairs');
  let contentLength: string | undefined;
  let repeatedLength = false;
  let transferEncoding = false;
  let hopByHop = false;
  let wide = false;
  for (let i = 0; i < headers.length; i++) {
    const pair: unknown = headers[i];
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new AppError(`response: header must be a [name, value] pair of strings (${safeJson(pair)})`);
    }
    const name = pair[0] as string;
    const value = pair[1] as string;
    // Apps send the same few names on every response: a name that passed once is not matched again.
    let kind = nameKinds.get(name);
    if (kind === undefined) kind = checkName(name);
    const chars = valueChars(value);
    if (chars === CONTROL) {
      throw new AppError(`response: header value holds a control character (${name}: ${safeJson(value)})`);
    }
    if (chars === WIDE) wide = true;
    if (kind === PLAIN) continue;
    if (kind === CONTENT_LENGTH) {
      if (contentLength === undefined) {
        if (!isContentLength(value)) {
          throw new AppError(`response: Content-Length must be a number of bytes, digits only (${safeJson(value)})`);
        }
        contentLength = value;
      } else if (value !== contentLength) {
        throw new AppError(`response: two different Content-Length headers (${safeJson(contentLength)}, ${safeJson(value)})`);
      } else {
        repeatedLength = true;
      }
    } else {
      hopByHop = true;
      if (kind === TRANSFER_ENCODING) transferEncoding = true;
    }
  }
  if (facts !== undefined) {
    facts.contentLength = contentLength;
    facts.transferEncoding = transferEncoding;
    facts.hopByHop = hopByHop;
    facts.wide = wide;
  }
  if (!repeatedLength) return headers as Header[];
  let seen = false;
  return (headers as Header[]).filter(([name]) => {
    if (name.length !== 14 || !equalsLowerCase(name, 'content-length')) return true;
    const first = !seen;
    seen = true;
    return first;
  });
}

/** What a header name is to checkHeaders (remembered per name in nameKinds). */
const PLAIN = 0;
const CONTENT_LENGTH = 1;
const TRANSFER_ENCODING = 2;
const OTHER_HOP_BY_HOP = 3;
type NameKind = typeof PLAIN | typeof CONTENT_LENGTH | typeof TRANSFER_ENCODING | typeof OTHER_HOP_BY_HOP;

/** Header names that passed checkHeaders' name checks, and their kind (bounded: names beyond it are checked every time). */
const nameKinds = new Map<string, NameKind>();
const MAX_GOOD_NAMES = 512;

/** Checks a name not seen before (a token, not "Status") and returns its kind, remembered while there is room. */
function checkName(name: string): NameKind {
  if (!TOKEN_RE.test(name)) throw new AppError(`response: header name is not a token (${safeJson(name)})`);
  if (name.length === 6 && equalsLowerCase(name, 'status')) {
    throw new AppError('response: "Status" is not a header; pass it as status');
  }
  const lower = name.toLowerCase();
  const kind: NameKind =
    lower === 'content-length'
      ? CONTENT_LENGTH
      : lower === 'transfer-encoding'
        ? TRANSFER_ENCODING
        : isHopByHop(name)
          ? OTHER_HOP_BY_HOP
          : PLAIN;
  if (nameKinds.size < MAX_GOOD_NAMES) nameKinds.set(name, kind);
  return kind;
}

/** What the chars of a header value are to checkHeaders. */
const BYTES = 0;
const WIDE = 1;
const CONTROL = 2;

/**
 * BYTES when every char of `value` is a byte and none a control character but HTAB, WIDE when some char is
 * above U+00FF (and none a control character), CONTROL when one is (RFC 9110 §5.5; CR and LF above all:
 * response splitting). One char loop for both questions, the one pass over each value on the response path.
 */
function valueChars(value: string): typeof BYTES | typeof WIDE | typeof CONTROL {
  let chars: typeof BYTES | typeof WIDE = BYTES;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20) {
      if (code !== 0x09) return CONTROL;
    } else if (code >= 0x7f) {
      if (code === 0x7f) return CONTROL;
      if (code > 0xff) chars = WIDE;
    }
  }
  return chars;
}

/** Longest Content-Length accepted: Number.MAX_SAFE_INTEGER has 16 digits. */
const MAX_LENGTH_DIGITS = 16;

/** True for 1*DIGIT no larger than Number.MAX_SAFE_INTEGER (a digit loop: no regex on the response path). */
function isContentLength(value: string): boolean {
  const length = value.length;
  if (length === 0 || length > MAX_LENGTH_DIGITS) return false;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x30 || code > 0x39) return false;
  }
  return length < MAX_LENGTH_DIGITS || Number(value) <= Number.MAX_SAFE_INTEGER;
}

/** Returns the value of the first header named `name` (case-insensitive), or undefined. */
export function findHeader(headers: readonly Header[], name: string): string | undefined {
  const lower = name.toLowerCase();
  const length = lower.length;
  for (let i = 0; i < headers.length; i++) {
    const header = headers[i] as Header;
    const key = header[0];
    // Only a name of the same length can match: most are skipped at once (hot path).
    if (key.length === length && (key === lower || equalsLowerCase(key, lower))) return header[1];
  }
  return undefined;
}

/**
 * True when `name` lower-cased (ASCII letters only, as header names are compared) is `lower`, which must be
 * lower-case already and as long as `name`. Compares char codes: no lower-cased copy per header on the
 * response path.
 */
export function equalsLowerCase(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let code = name.charCodeAt(i);
    if (code >= 0x41 && code <= 0x5a) code |= 0x20;
    if (code !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** True for statuses that never carry a body (RFC 9110 §6.4.1): 1xx, 204, 304. */
export function isBodylessStatus(code: number): boolean {
  return code < 200 || code === 204 || code === 304;
}

function safeJson(value: unknown): string {
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 80);
  } catch {
    return String(value).slice(0, 80);
  }
}
