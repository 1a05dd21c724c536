/**
 * The ResponseSink of toNodeListener: what runApp sends, written to Node's ServerResponse (the head as one
 * writeHead with a flat header list, a small response's body with the end in one write, backpressure through
 * writeToStream, a cut response closed after what it already wrote).
 */
import type { ServerResponse } from 'node:http';
import { toByteString } from '../../environ/to-byte-string.js';
import { isHopByHop } from '../../response/hop-by-hop.js';
import type { ResponseSink } from '../../response/run-app.js';
import { equalsLowerCase, type HeaderFacts } from '../../response/status.js';
import type { LazyAbort } from '../../servers/lazy-abort.js';
import { writeToStream } from '../../servers/write-to-stream.js';
import type { Header } from '../../types.js';
import type { RequestBody } from './request-body.js';

/** How long a cut response may take to flush what it already wrote before the connection is destroyed, in ms. */
const ABORT_FLUSH_TIMEOUT_MS = 2000;
const EMPTY = new Uint8Array(0);
/** Largest last chunk handed to Node as latin-1 text, to leave with the head in one write (see #end). */
const SMALL_LAST_CHUNK_BYTES = 1024;

/**
 * The ResponseSink over a ServerResponse. Hop-by-hop headers from the app are dropped (Node frames the message
 * itself), so is Content-Length on 1xx/204 (RFC 9110 §8.6); headers go out as a flat list so repeated ones
 * (Set-Cookie) stay separate lines. `closeConnection` (a boolean, or an object whose `mustClose` is read when
 * the head goes out) adds `Connection: close`. A class: one object per response, no closures.
 */
export class NodeSink implements ResponseSink {
  /** The response this sink writes to. */
  get response(): ServerResponse {
    return this.#res;
  }

  /** Why the request was aborted (its client went away), or null while it is alive. */
  get abortReason(): Error | null {
    return this.#abort.reason;
  }

  /** The status sent, 0 before the head. */
  status = 0;
  /** Body bytes handed to the socket. */
  bytes = 0;
  /** The request's body, when the sink answers a request whose app ran (see the constructor); else null. */
  readonly body: RequestBody | null;
  /** When the request started (performance.now()), for the access log; 0 when there is none. */
  readonly startedAt: number;
  readonly #res: ServerResponse;
  readonly #abort: LazyAbort;
  readonly #closeConnection: boolean | { readonly mustClose: boolean };
  /**
   * The first body chunk waits for the end of the tick: when the response ends there, it leaves with the head
   * in one res.end() (one write of one buffer) instead of a write and an end.
   */
  #held: Uint8Array | null = null;
  /** True once a body chunk went to res.write(): the head has left, nothing can join it any more. */
  #wrote = false;
  /** What runs once the response ended (or the run did): see settle(). */
  #onSettled: ((sink: NodeSink) => void) | null;
  /** True once #onSettled ran (or there is none). */
  settled: boolean;

  /**
   * `closeConnection` is the request's RequestBody (its `mustClose`) when the app runs, and that body is then
   * `body`; `onSettled` is called with the sink (one function per listener: no closure per request).
   */
  constructor(
    res: ServerResponse,
    abort: LazyAbort,
    closeConnection: boolean | RequestBody,
    onSettled: ((sink: NodeSink) => void) | null,
    startedAt = 0,
  ) {
    this.body = typeof closeConnection === 'boolean' ? null : closeConnection;
    this.startedAt = startedAt;
    this.#res = res;
    this.#abort = abort;
    this.#closeConnection = closeConnection;
    this.#onSettled = onSettled;
    this.settled = onSettled === null;
  }

  /** Runs the after-response work once: when the response ends or is cut, else when the run ends. */
  settle(): void {
    if (this.settled) return;
    this.settled = true;
    const onSettled = this.#onSettled;
    this.#onSettled = null;
    onSettled?.(this);
  }

  sendHead(code: number, reason: string, headers: Header[], facts?: Readonly<HeaderFacts>): void {
    const flat: string[] = [];
    if (facts !== undefined && !facts.hopByHop && !facts.wide && (facts.contentLength === undefined || !forbidsContentLength(code))) {
      // The common head (checkHeaders found nothing to drop and no value to convert): copied as it is.
      for (let i = 0; i < headers.length; i++) {
        const header = headers[i] as Header;
        flat.push(header[0], header[1]);
      }
    } else {
      this.#flattenChecked(code, headers, flat);
    }
    const close = this.#closeConnection;
    if (typeof close === 'boolean' ? close : close.mustClose) flat.push('Connection', 'close');
    this.status = code;
    this.#res.writeHead(code, toByteString(reason), flat);
  }

  /** Puts `headers` into `flat` but for the fields a response framed by Node may not carry, values as byte strings. */
  #flattenChecked(code: number, headers: Header[], flat: string[]): void {
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as Header;
      const name = header[0];
      if (name === 'Content-Length') {
        // The common spelling, checked first: no lower-cased copy of it on every response.
        if (forbidsContentLength(code)) continue;
      } else if (isHopByHop(name)) {
        continue;
      } else if (name.length === 14 && forbidsContentLength(code) && equalsLowerCase(name, 'content-length')) {
        continue;
      }
      flat.push(name, toByteString(header[1]));
    }
  }

  write(chunk: Uint8Array): void | Promise<void> {
    this.bytes += chunk.length;
    if (!this.#wrote && this.#held === null) {
      this.#held = chunk;
      process.nextTick(releaseHeld, this);
      return;
    }
    this.release();
    this.#wrote = true;
    return writeToStream(this.#res, chunk);
  }

  /** Writes the held first chunk, if it is still held (the response did not end in its tick). */
  release(): void {
    const chunk = this.#held;
    if (chunk === null) return;
    this.#held = null;
    const res = this.#res;
    if (!res.destroyed && !res.writableEnded) {
      this.#wrote = true;
      res.write(chunk);
    }
  }

  /** The last chunk and the end: a response of one small chunk leaves with its head in one write. */
  endWith(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.release();
    this.#held = chunk;
    this.end();
  }

  end(): void {
    this.#end();
    this.settle();
  }

  #end(): void {
    const res = this.#res;
    const last = this.#held;
    this.#held = null;
    if (res.destroyed || res.writableEnded) return;
    if (last === null) {
      res.end();
    } else if (last.length <= SMALL_LAST_CHUNK_BYTES) {
      // A small body that is the whole response: as text, Node joins it to its head and sends both in one
      // write (a Buffer would go out with the head in a writev, whose bookkeeping costs more than the copy).
      res.end(latin1Text(last), 'latin1');
    } else {
      // Node sends what is left with the end, in one writev.
      res.end(last);
    }
    // Nothing to wait for: Node flushes the rest on its own, and a connection that closes first fires the
    // request's abort ('close' before 'finish').
  }

  /** The app flushed its head (SPEC 4.1): Node sends it now instead of with the first body bytes. */
  flush(): void {
    const res = this.#res;
    // (headersSent is already true after writeHead: it says the head is stored, not that it left.)
    if (!res.destroyed && !res.writableEnded) res.flushHeaders();
  }

  abort(): void {
    // The head promised a body that won't come (G3; runApp has logged why): closing the connection is the
    // only way left to say so.
    this.release();
    const res = this.#res;
    const socket = res.socket;
    if (this.#abort.reason !== null || !socket || socket.destroyed) {
      res.destroy();
      return;
    }
    // Let the bytes already written reach the client first, or it might see nothing at all.
    const timer = setTimeout(() => socket.destroy(), ABORT_FLUSH_TIMEOUT_MS);
    timer.unref();
    socket.write(EMPTY, () => {
      clearTimeout(timer);
      socket.destroy();
    });
  }
}

/** The bytes as latin-1 text (one char per byte: Node writes them back byte for byte). */
function latin1Text(bytes: Uint8Array): string {
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('latin1');
}

function releaseHeld(sink: NodeSink): void {
  sink.release();
}

/** A 1xx or 204 response may not carry Content-Length (RFC 9110 8.6): Node refuses one, so the sink drops it. */
function forbidsContentLength(code: number): boolean {
  return code < 200 || code === 204;
}
