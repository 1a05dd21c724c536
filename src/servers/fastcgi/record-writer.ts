import type { Socket } from 'node:net';
import { FCGI_HEADER_LENGTH, FCGI_MAX_CONTENT_LENGTH, FCGI_NULL_REQUEST_ID, RecordType } from '../../protocol/fastcgi/constants.js';
import { FIXED_BODY_LENGTH, writeEndRequestBody, writeUnknownTypeBody } from '../../protocol/fastcgi/record-bodies.js';
import { writeRecordHeader } from '../../protocol/fastcgi/record-encoder.js';
import { CgiHeadCache, cgiHeadLength, writeCgiHead } from '../../protocol/cgi-head-bytes.js';
import type { Header } from '../../types.js';

/** Size of the buffers record headers and small contents are packed into. */
export const POOL_BYTES = 64 * 1024;
/** Contents up to this size are copied next to their header; larger ones are written as views (no copy). */
export const COPY_LIMIT_BYTES = 4 * 1024;
/** Past this many buffered bytes, output is flushed at once instead of at the end of the tick. */
export const FLUSH_THRESHOLD_BYTES = 64 * 1024;

/**
 * The pool buffer every writer in the process packs into (as Node's own Buffer pool): a connection costs no
 * buffer of its own, which matters when a web server opens and closes connections all the time (nginx closes
 * those over its upstream `keepalive` count). Bytes are never reused: a full pool is replaced, and the old one
 * lives on in the pieces handed to sockets until they are written.
 */
let sharedPool: Buffer | null = null;
let sharedUsed = 0;

/** The last response head written into the pool, copied when the next is the same (see CgiHeadCache). */
const HEAD_CACHE = new CgiHeadCache();

/**
 * Batches the records of one connection into few socket writes. Headers and small contents are packed into a
 * shared pool buffer (one allocation per POOL_BYTES of output, never one per record or per connection); large
 * contents go out as views of the app's own bytes. Everything queued in one tick leaves in one corked write (writev): a whole
 * small response — STDOUT, the empty STDOUT, END_REQUEST — is a single syscall.
 *
 * The bytes themselves are the protocol module's (src/protocol/fastcgi): every record's header is written by
 * #header (writeRecordHeader), every fixed body by record-bodies.ts; this class only decides where they go.
 */
export class RecordWriter {
  readonly #socket: Socket;
  /** What to write, in order: the first #count entries (the array is reused from one flush to the next). */
  #pieces: Uint8Array[] = [];
  #count = 0;
  /** The pool the open piece lives in: [#openStart, #openEnd) of it, not yet a piece. */
  #pool: Buffer = EMPTY_POOL;
  #openStart = 0;
  #openEnd = 0;
  #queued = 0;
  #scheduled = false;
  /** The end-of-tick flush: one function per connection, not a closure per response. */
  readonly #flushLater = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** Bytes queued and not yet handed to the socket. */
  get queued(): number {
    return this.#queued;
  }

  /** Queues `data` as records of `type` (never an empty record; see `empty`). */
  stream(type: number, requestId: number, data: Uint8Array): void {
    for (let offset = 0; offset < data.length; offset += FCGI_MAX_CONTENT_LENGTH) {
      const length = Math.min(FCGI_MAX_CONTENT_LENGTH, data.length - offset);
      if (length <= COPY_LIMIT_BYTES) {
        const at = this.#header(type, requestId, length, length);
        this.#pool.set(data.subarray(offset, offset + length), at);
      } else {
        this.#header(type, requestId, length, 0);
        this.#closePiece();
        this.#pieces[this.#count++] = data.subarray(offset, offset + length);
        this.#queued += length;
      }
    }
  }

  /** Queues `head` and `body` as one STDOUT-like stream, packing both into the same records when small. */
  streamPair(type: number, requestId: number, head: Uint8Array, body: Uint8Array): void {
    const total = head.length + body.length;
    if (total <= COPY_LIMIT_BYTES) {
      const at = this.#header(type, requestId, total, total);
      this.#pool.set(head, at);
      this.#pool.set(body, at + head.length);
      return;
    }
    this.stream(type, requestId, head);
    this.stream(type, requestId, body);
  }

  /**
   * Queues a CGI response head and `body` (possibly empty) as one STDOUT-like stream, the head written straight
   * into the pool (writeCgiHead: no string or Buffer made for it; copied, when it is the head written last), in
   * the same record as the body when both are small. False, with nothing queued, for a head writeCgiHead leaves to formatCgiHead (see
   * cgiHeadLength): the caller formats it and uses streamPair.
   */
  streamHead(type: number, requestId: number, code: number, reason: string, headers: readonly Header[], body: Uint8Array): boolean {
    const cachedLength = HEAD_CACHE.lengthOf(code, reason, headers);
    const headLength = cachedLength >= 0 ? cachedLength : cgiHeadLength(code, reason, headers);
    if (headLength < 0 || headLength > FCGI_MAX_CONTENT_LENGTH) return false;
    const total = headLength + body.length;
    const inOne = total <= COPY_LIMIT_BYTES;
    const length = inOne ? total : headLength;
    const start = this.#header(type, requestId, length, length);
    const pool = this.#pool;
    let end: number;
    if (cachedLength >= 0) end = HEAD_CACHE.copyTo(pool, start);
    else {
      end = writeCgiHead(pool, start, code, reason, headers);
      HEAD_CACHE.store(code, reason, headers, undefined, pool.subarray(start, end));
    }
    if (inOne) pool.set(body, end);
    else this.stream(type, requestId, body);
    return true;
  }

  /** Queues a record with `content` (<= 65535 bytes), which may be empty (the end of a stream). */
  record(type: number, requestId: number, content?: Uint8Array): void {
    const length = content?.length ?? 0;
    const at = this.#header(type, requestId, length, length);
    if (content) this.#pool.set(content, at);
  }

  /** Queues an END_REQUEST record (§5.5). */
  endRequest(requestId: number, appStatus: number, protocolStatus: number): void {
    const at = this.#header(RecordType.END_REQUEST, requestId, FIXED_BODY_LENGTH, FIXED_BODY_LENGTH);
    writeEndRequestBody(this.#pool, at, appStatus, protocolStatus);
  }

  /** Queues an UNKNOWN_TYPE management record naming `type` (§4.2). */
  unknownType(type: number): void {
    const at = this.#header(RecordType.UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, FIXED_BODY_LENGTH, FIXED_BODY_LENGTH);
    writeUnknownTypeBody(this.#pool, at, type);
  }

  /** Flushes at the end of this tick (after the current chain of promise callbacks), or now when a lot is queued. */
  schedule(): void {
    if (this.flushIfFull() || this.#scheduled) return;
    this.#scheduled = true;
    process.nextTick(this.#flushLater);
  }

  /**
   * Flushes now when FLUSH_THRESHOLD_BYTES or more are queued (true then), so that output held for a later
   * flush stays bounded and the socket's backpressure still reaches whoever is writing.
   */
  flushIfFull(): boolean {
    if (this.#queued < FLUSH_THRESHOLD_BYTES) return false;
    this.flush();
    return true;
  }

  /** Hands everything queued to the socket in one corked write. Returns false when the socket wants a drain. */
  flush(): boolean {
    this.#closePiece();
    const count = this.#count;
    if (count === 0) return !this.#socket.writableNeedDrain;
    const pieces = this.#pieces;
    this.#count = 0;
    this.#queued = 0;
    const socket = this.#socket;
    if (count === 1) {
      // The usual case (a whole small response in one piece).
      const piece = pieces[0] as Uint8Array;
      pieces[0] = EMPTY_POOL;
      return socket.destroyed ? false : socket.write(piece);
    }
    this.#pieces = [];
    if (socket.destroyed) return false;
    socket.cork();
    for (let i = 0; i < count; i++) socket.write(pieces[i] as Uint8Array);
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /**
   * Reserves a record: its header, written here, and `copied` bytes after it for its content (0 when the content
   * follows as a piece of its own). Returns where the content goes in this.#pool (read it after the call: the
   * reservation may have moved to a new pool). The one place the writer writes a record header.
   */
  #header(type: number, requestId: number, contentLength: number, copied: number): number {
    const at = this.#reserve(FCGI_HEADER_LENGTH + copied);
    writeRecordHeader(this.#pool, at, type, requestId, contentLength);
    return at + FCGI_HEADER_LENGTH;
  }

  /**
   * Returns the offset of `size` fresh bytes in the shared pool (then this.#pool), contiguous with the open piece
   * when no other writer took bytes in between.
   */
  #reserve(size: number): number {
    let pool = sharedPool;
    if (pool === null || sharedUsed + size > pool.length) {
      // Bytes already handed to a socket may still be waiting in its queue: never reuse them, take a new pool.
      pool = sharedPool = Buffer.allocUnsafe(Math.max(POOL_BYTES, size));
      sharedUsed = 0;
    }
    if (this.#pool !== pool || this.#openEnd !== sharedUsed) {
      this.#closePiece();
      this.#pool = pool;
      this.#openStart = this.#openEnd = sharedUsed;
    }
    const at = sharedUsed;
    sharedUsed += size;
    this.#openEnd = sharedUsed;
    this.#queued += size;
    return at;
  }

  #closePiece(): void {
    if (this.#openEnd > this.#openStart) {
      this.#pieces[this.#count++] = this.#pool.subarray(this.#openStart, this.#openEnd);
      this.#openStart = this.#openEnd;
    }
  }
}

const EMPTY_POOL = Buffer.alloc(0);
