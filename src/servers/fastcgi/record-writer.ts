import type { Socket } from 'node:net';
import { FCGI_HEADER_LENGTH, FCGI_MAX_CONTENT_LENGTH } from '../../protocol/fastcgi/constants.js';
import { writeEndRequest, writeRecordHeader } from '../../protocol/fastcgi/record-encoder.js';
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
        const at = this.#reserve(FCGI_HEADER_LENGTH + length);
        writeRecordHeader(this.#pool, at, type, requestId, length);
        this.#pool.set(data.subarray(offset, offset + length), at + FCGI_HEADER_LENGTH);
      } else {
        const at = this.#reserve(FCGI_HEADER_LENGTH);
        writeRecordHeader(this.#pool, at, type, requestId, length);
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
      const at = this.#reserve(FCGI_HEADER_LENGTH + total);
      writeRecordHeader(this.#pool, at, type, requestId, total);
      this.#pool.set(head, at + FCGI_HEADER_LENGTH);
      this.#pool.set(body, at + FCGI_HEADER_LENGTH + head.length);
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
    const at = this.#reserve(FCGI_HEADER_LENGTH + length);
    const pool = this.#pool;
    writeRecordHeader(pool, at, type, requestId, length);
    const start = at + FCGI_HEADER_LENGTH;
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
    const at = this.#reserve(FCGI_HEADER_LENGTH + length);
    writeRecordHeader(this.#pool, at, type, requestId, length);
    if (content) this.#pool.set(content, at + FCGI_HEADER_LENGTH);
  }

  /** Queues an END_REQUEST record. */
  endRequest(requestId: number, appStatus: number, protocolStatus: number): void {
    const at = this.#reserve(FCGI_HEADER_LENGTH + 8);
    writeEndRequest(this.#pool, at, requestId, appStatus, protocolStatus);
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
