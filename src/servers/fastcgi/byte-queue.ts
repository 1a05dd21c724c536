import type { ByteBudget } from '../../protocol/fastcgi/name-value.js';

/** Contents up to this size are copied into a shared tail buffer instead of a buffer of their own. */
export const COALESCE_LIMIT_BYTES = 4 * 1024;
/** Size of the tail buffers small contents are gathered into. */
export const COALESCE_BUFFER_BYTES = 16 * 1024;

/**
 * An async-iterable queue of byte chunks filled by a protocol handler (FastCGI STDIN or DATA records) and
 * drained by the app's input stream. It reports how many bytes wait, so the connection can pause the socket
 * when an app reads slower than the client sends (backpressure), and resume it as the app catches up.
 *
 * copy() keeps what it queues at the cost of its bytes whatever the record sizes: small contents are appended
 * to the last queued chunk when it sits at the end of a shared tail buffer (so a stream of 1-byte records
 * becomes a few 16 KiB chunks, not a Uint8Array per byte); larger ones get a copy of their own. What waits is
 * charged to `budget` (the server's count of buffered bytes) until it is read or dropped.
 */
export class ByteQueue implements AsyncIterable<Uint8Array> {
  #chunks: Uint8Array[] = [];
  /** The shared tail buffer small contents are appended to, and how much of it is used. */
  #tail: Uint8Array | null = null;
  #tailUsed = 0;
  /** True when the last entry of #chunks is a view of #tail ending at #tailUsed (so it can grow in place). */
  #tailQueued = false;
  /** Where in #tail the last queued chunk starts (when #tailQueued). */
  #runStart = 0;
  readonly #budget: ByteBudget | undefined;
  #head = 0;
  #queued = 0;
  #ended = false;
  #failure: unknown = null;
  #wake: (() => void) | null = null;
  readonly #onDrain: () => void;
  readonly #lowWater: number;

  /** `onDrain` runs when the queue falls to `lowWaterBytes` or below after a read. */
  constructor(onDrain: () => void, lowWaterBytes: number, budget?: ByteBudget) {
    this.#onDrain = onDrain;
    this.#lowWater = lowWaterBytes;
    this.#budget = budget;
  }

  /** Bytes waiting to be read. */
  get queued(): number {
    return this.#queued;
  }

  /** True once end() or fail() was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Adds a chunk, kept as given: for memory that is the chunk's alone, such as a whole socket read (Node never
   * reuses one). A view into a larger buffer goes through copy() instead.
   */
  push(chunk: Uint8Array): void {
    if (this.#ended || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#tailQueued = false;
    this.#add(chunk.length);
  }

  /**
   * Adds a copy of `content`: for a view into a larger buffer (one FastCGI record of a socket read), which,
   * kept, would hold the whole buffer alive while only its own bytes are counted.
   */
  copy(content: Uint8Array): void {
    const length = content.length;
    if (this.#ended || length === 0) return;
    // A large content, or a small one into an empty queue with no tail buffer yet (a body in one record, or
    // an app that keeps up): a copy of its own, as before. Only small contents that pile up share a buffer.
    if (length > COALESCE_LIMIT_BYTES || (this.#tail === null && this.#head === this.#chunks.length)) {
      this.#chunks.push(Uint8Array.prototype.slice.call(content) as Uint8Array);
      this.#tailQueued = false;
      this.#add(length);
      return;
    }
    let tail = this.#tail;
    if (tail === null || this.#tailUsed + length > tail.length) {
      // Not zeroed: only the bytes written are ever handed out.
      tail = this.#tail = Buffer.allocUnsafe(COALESCE_BUFFER_BYTES);
      this.#tailUsed = 0;
      this.#tailQueued = false;
    }
    const at = this.#tailUsed;
    tail.set(content, at);
    this.#tailUsed = at + length;
    const chunks = this.#chunks;
    if (this.#tailQueued) {
      // The last queued chunk ends where this content starts: widen it (same buffer, no new object kept).
      chunks[chunks.length - 1] = tail.subarray(this.#runStart, at + length);
    } else {
      chunks.push(tail.subarray(at, at + length));
      this.#runStart = at;
      this.#tailQueued = true;
    }
    this.#add(length);
  }

  #add(length: number): void {
    this.#queued += length;
    if (this.#budget !== undefined) this.#budget.used += length;
    this.#notify();
  }

  /** Marks the end of the stream. */
  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** Ends the stream with an error that the next read rejects with; drops what was queued. */
  fail(error: unknown): void {
    if (this.#failure === null) this.#failure = error;
    this.#ended = true;
    this.#chunks = [];
    this.#head = 0;
    if (this.#budget !== undefined) this.#budget.used -= this.#queued;
    this.#queued = 0;
    this.#tail = null;
    this.#tailQueued = false;
    this.#notify();
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#head < this.#chunks.length) {
        const chunk = this.#chunks[this.#head] as Uint8Array;
        this.#chunks[this.#head] = EMPTY;
        this.#head++;
        if (this.#head === this.#chunks.length) {
          this.#chunks = [];
          this.#head = 0;
          // The chunk handed out may be the one that grows: from now on it is the app's, never changed.
          this.#tailQueued = false;
        }
        const before = this.#queued;
        this.#queued -= chunk.length;
        if (this.#budget !== undefined) this.#budget.used -= chunk.length;
        if (before > this.#lowWater && this.#queued <= this.#lowWater) this.#onDrain();
        return { done: false, value: chunk };
      }
      if (this.#ended) return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => this.next() };
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

const EMPTY = new Uint8Array(0);
