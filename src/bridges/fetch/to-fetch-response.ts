/** toFetch: the Response a Fetch host gets for what the tsgi app answered (see toFetch in ../fetch.ts). */
import { toByteString } from '../../environ/to-byte-string.js';
import { AbortError, AppError } from '../../errors.js';
import { STATUS_TEXT } from '../../helpers/status-text.js';
import { isHopByHop } from '../../response/hop-by-hop.js';
import type { Header } from '../../types.js';

/**
 * How many response body bytes toFetch queues ahead of the consumer before the app's writes wait for it to
 * read: enough to keep a fast consumer busy, small enough that a slow one bounds the app's memory.
 */
export const FETCH_RESPONSE_HIGH_WATER_BYTES = 64 * 1024;

/** Statuses whose Response must have a null body (Fetch: "null body status"), besides 1xx which it can't carry. */
const NULL_BODY_STATUSES: ReadonlySet<number> = new Set([204, 205, 304]);

/** A plain-text status page ("404 Not Found\n"), as runApp's error pages look. */
export function plainResponse(code: number): Response {
  const reason = STATUS_TEXT[code] ?? 'Error';
  const page = `${code} ${reason}\n`;
  return new Response(page, {
    status: code,
    statusText: reason,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(page.length) },
  });
}

/**
 * The Response side of toFetch: builds the Response at the head and feeds its body stream. `write()` returns
 * nothing while the queue is below the high-water mark, else a promise that settles when the reader pulls
 * (or cancels): the backpressure runApp waits on.
 */
export class ResponseOutput {
  started = false;
  readonly #abort: AbortController;
  readonly #head: boolean;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #waiting: (() => void) | null = null;
  #closed = false;

  /** `abort` fires when the consumer cancels the body; `head`: a HEAD request, whose Response has no body. */
  constructor(abort: AbortController, head: boolean) {
    this.#abort = abort;
    this.#head = head;
  }

  /**
   * The Response for this head: the fields a response may not carry (response/hop-by-hop.ts) dropped, values
   * and reason as byte strings. Throws AppError for a head a Response can't hold.
   */
  start(code: number, reason: string, list: Header[]): Response {
    const headers = new Headers();
    try {
      if (code < 200 || code > 599) throw new AppError(`fetch: a Response can't carry this status (${code})`);
      for (const [name, value] of list) {
        if (isHopByHop(name)) continue;
        headers.append(name, toByteString(value));
      }
    } catch (error) {
      throw error instanceof AppError ? error : new AppError(`fetch: a response header the Fetch API refuses (${describe(error)})`, error);
    }
    const nullBody = this.#head || NULL_BODY_STATUSES.has(code);
    const body = nullBody
      ? null
      : new ReadableStream<Uint8Array>(
          {
            start: (controller) => {
              this.#controller = controller;
            },
            pull: () => this.#wake(),
            cancel: (cause: unknown) => {
              this.#closed = true;
              this.#abort.abort(new AbortError('fetch: the response body was cancelled', cause));
              this.#wake();
            },
          },
          { highWaterMark: FETCH_RESPONSE_HIGH_WATER_BYTES, size: (chunk) => chunk.byteLength },
        );
    const response = new Response(body, { status: code, statusText: toByteString(reason), headers });
    this.started = true;
    return response;
  }

  write(chunk: Uint8Array): Promise<void> | void {
    const controller = this.#controller;
    if (!controller || this.#closed) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) > 0) return;
    return new Promise<void>((resolve) => {
      this.#waiting = resolve;
    });
  }

  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller?.close();
  }

  fail(error: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller?.error(error);
    this.#wake();
  }

  #wake(): void {
    const resolve = this.#waiting;
    this.#waiting = null;
    resolve?.();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
