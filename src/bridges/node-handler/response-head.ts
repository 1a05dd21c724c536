/**
 * The response head as Node's ServerResponse serialized it onto the bridge's socket, read back into
 * startResponse's status and headers. Reading Node's own text keeps everything Node decides (header order and
 * spelling, repeated fields, its Date and Content-Length, its framing) without re-implementing it.
 */
import { HOP_BY_HOP_HEADERS } from '../../response/hop-by-hop.js';
import { AppError } from '../../errors.js';
import type { Header } from '../../types.js';

/** Lengths of the names the parse looks at (hop-by-hop ones, Content-Length): others are never lower-cased. */
const WATCHED_LENGTHS = new Set([...HOP_BY_HOP_HEADERS, 'content-length'].map((name) => name.length));
const STATUS_LINE_RE = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/;
const CHUNKED_RE = /(?:^|,)\s*chunked\s*$/i;
/** Longest response head Node may write: it validates every header, this only bounds a runaway parse. */
const MAX_RESPONSE_HEAD_CHARS = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** A final response head, ready for startResponse. */
export interface ResponseHead {
  code: number;
  status: string;
  headers: Header[];
  /** The body that follows is chunk-framed by Node (the framing must be removed). */
  chunked: boolean;
  /** The headers frame the body (a Content-Length or Transfer-Encoding) or the response has none. */
  framed: boolean;
}

interface ParsedHead {
  code: number;
  status: string;
  headers: Header[];
  /** Node framed the body as chunked (Transfer-Encoding ending in chunked). */
  chunked: boolean;
  /** The head carries a Content-Length. */
  sized: boolean;
}

/**
 * Collects Node's writes until a final head went by: `take()` returns the bytes after it. Interim heads (100
 * from writeContinue(), 102/103 from writeProcessing()/writeEarlyHints()) are dropped: tsgi has no interim
 * responses. 101 is a final head (a handler that answers `101 Switching Protocols` gets it sent, as under
 * node:http; no upgrade follows over tsgi).
 */
export class ResponseHeadReader {
  /** The final head, once read. */
  head: ResponseHead | null = null;
  readonly #headRequest: boolean;
  #text = '';

  /** `headRequest`: the request is a HEAD (its response has no body, whatever the head says). */
  constructor(headRequest: boolean) {
    this.#headRequest = headRequest;
  }

  /** Takes one write; returns the body bytes after the final head (null while that head is incomplete). */
  take(chunk: Buffer | string, encoding: BufferEncoding): Buffer | null {
    if (this.#text === '' && typeof chunk !== 'string') {
      // The usual case for a Buffer: the whole head in this write. Only the head is decoded.
      const end = chunk.indexOf(HEAD_END);
      if (end >= 0) {
        const rest = chunk.subarray(end + 4);
        if (this.#accept(chunk.toString('latin1', 0, end))) return rest;
        return rest.length === 0 ? null : this.take(rest, encoding);
      }
    }
    // Strings (Node's head, maybe with the first body chunk joined to it), and heads split across writes.
    let text = this.#text + (typeof chunk === 'string' ? chunk : chunk.toString('latin1'));
    // What follows the head always comes from this write: re-encode it as it came.
    const restEncoding = typeof chunk === 'string' ? encoding : 'latin1';
    this.#text = '';
    for (;;) {
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) {
        if (text.length > MAX_RESPONSE_HEAD_CHARS) throw new AppError(`node-handler: response head too long (${text.length})`);
        this.#text = text;
        return null;
      }
      const done = this.#accept(text.slice(0, end));
      text = text.slice(end + 4);
      if (done) return text === '' ? EMPTY : Buffer.from(text, restEncoding);
      if (text === '') return null;
    }
  }

  /** Parses one head; false for an interim one. */
  #accept(text: string): boolean {
    const head = parseResponseHead(text);
    if (head.code < 200 && head.code !== 101) return false;
    const bodyless = this.#headRequest || head.code < 200 || head.code === 204 || head.code === 304;
    // Node frames a body with Content-Length or chunked, unless the handler removed both fields (Koa for a
    // 205). Chunked from Node, or neither: no length may be computed for it (SPEC 3: Transfer-Encoding: chunked).
    const unsized = !bodyless && (head.chunked || !head.sized);
    if (unsized) head.headers.push(['Transfer-Encoding', 'chunked']);
    this.head = { code: head.code, status: head.status, headers: head.headers, chunked: head.chunked && !bodyless, framed: head.sized || unsized || bodyless };
    return true;
  }
}

/** Parses `HTTP/1.1 200 OK\r\nName: value...` as Node writes it. Header values are byte strings already. */
export function parseResponseHead(text: string): ParsedHead {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  const statusLine = text.slice(0, lineEnd);
  const status = statusOf(statusLine);
  const headers: Header[] = [];
  let chunked = false;
  let sized = false;
  let at = lineEnd + 2;
  while (at < text.length) {
    let end = text.indexOf('\r\n', at);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', at);
    if (colon > at && colon < end) {
      const name = text.slice(at, colon);
      const value = text.slice(text.charCodeAt(colon + 1) === 0x20 ? colon + 2 : colon + 1, end);
      if (WATCHED_LENGTHS.has(name.length)) {
        const lower = name.toLowerCase();
        if (lower === 'transfer-encoding' && CHUNKED_RE.test(value)) chunked = true;
        else if (lower === 'content-length') sized = true;
        // Fields of the in-memory connection, not the response: the tsgi server frames its own.
        if (HOP_BY_HOP_HEADERS.has(lower)) {
          at = end + 2;
          continue;
        }
      }
      headers.push([name, value]);
    }
    at = end + 2;
  }
  return { code: status.code, status: status.status, headers, chunked, sized };
}

/** A status line read back: its code, and the status string for startResponse ("200 OK"). */
interface StatusOfLine {
  code: number;
  status: string;
}

/** The status line parsed last, and what it gave (a handler answers with the same status line again and again). */
let lastStatusLine: string | null = null;
let lastStatus: StatusOfLine | null = null;

/** Parses `HTTP/1.1 200 OK`; the same line as the last one gives the same (frozen) answer, status string included. */
function statusOf(statusLine: string): StatusOfLine {
  if (statusLine === lastStatusLine && lastStatus !== null) return lastStatus;
  const match = STATUS_LINE_RE.exec(statusLine);
  if (!match) throw new AppError(`node-handler: bad status line from Node (${JSON.stringify(statusLine).slice(0, 80)})`);
  const reason = match[2];
  const parsed = Object.freeze({ code: Number(match[1]), status: reason ? `${match[1]} ${reason}`.trimEnd() : (match[1] as string) });
  lastStatusLine = statusLine;
  lastStatus = parsed;
  return parsed;
}
