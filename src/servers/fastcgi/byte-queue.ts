import type { ByteBudget } from '../../protocol/fastcgi/name-value.js';

/**
 * Contents up to this size are copied (into a shared tail buffer, or one of their own); larger ones are kept as
 * views, charged their whole buffer.
 */
export const COALESCE_LIMIT_BYTES = 4 * 1024;
/** Size of the tail buffers small contents are gathered into. */
export const COALESCE_BUFFER_BYTES = 16 * 1024;

/**
 * An async-iterable queue of byte chunks filled by a protocol handler (FastCGI STDIN or DATA records) and
 * drained by the app's input stream. It reports how many bytes wait, so the connection can pause the socket
 * when an app reads slower than the client sends (backpressure), and resume it as the app catches up.
 *
 * copy() keeps what it queues at about the cost of its bytes whatever the record sizes: small contents are
 * appended to the last queued chunk when it sits at the end of a shared tail buffer (so a stream of 1-byte
 * records becomes a few 16 KiB chunks, not a Uint8Array per byte); larger ones are kept as views of the buffer
 * they arrived in (no copy: nginx's 8 KiB STDIN records, eight to a 64 KiB socket read, cost no allocation of
 * their own), and each buffer is charged whole, once, for as long as a view of it waits: what is counted is
 * what is held, never less. What waits is counted in `queued` and charged to `budget` (the server's count of
 * buffered bytes) until it is read or dropped.
 */
export class ByteQueue implements AsyncIterable<Uint8Array> {
  #chunks: Uint8Array[] = [];
  /**
   * What each chunk of #chunks is charged: its length, or for a view the whole buffer's size, carried by the
   * last queued view of that buffer (the others carry 0), so the charge goes back when the last one is read.
   */
  #charges: number[] = [];
  /** The buffer the last queued chunk is a view of (kept by copy()), while that chunk waits; null otherwise. */
  #viewBuffer: ArrayBufferLike | null = null;
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

  /** Bytes held for what waits to be read: its length, or for views kept by copy(), their whole buffers. */
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
    this.#charges.push(chunk.length);
    this.#tailQueued = false;
    this.#viewBuffer = null;
    this.#add(chunk.length);
  }

  /**
   * Adds `content`, a view into a buffer that is never written again (one FastCGI record of a socket read, or
   * the decoder's buffer for a split record) and may hold other bytes: a large one is kept as it is and its
   * buffer charged whole (once for a run of views of the same buffer); a small one is copied, so that it does
   * not keep a whole read alive for a few bytes.
   */
  copy(content: Uint8Array): void {
    const length = content.length;
    if (this.#ended || length === 0) return;
    if (length > COALESCE_LIMIT_BYTES) {
      this.#keepView(content);
      return;
    }
    // A small one into an empty queue with no tail buffer yet (a body in one record, or an app that keeps up):
    // a copy of its own. Only small contents that pile up share a buffer.
    if (this.#tail === null && this.#head === this.#chunks.length) {
      this.#chunks.push(Uint8Array.prototype.slice.call(content) as Uint8Array);
      this.#charges.push(length);
      this.#tailQueued = false;
      this.#viewBuffer = null;
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
      (this.#charges[chunks.length - 1] as number) += length;
    } else {
      chunks.push(tail.subarray(at, at + length));
      this.#charges.push(length);
      this.#runStart = at;
      this.#tailQueued = true;
      this.#viewBuffer = null;
    }
    this.#add(length);
  }

  /** Queues `content` as it is; its buffer is charged unless the last queued chunk is a view of it already. */
  #keepView(content: Uint8Array): void {
    const buffer = content.buffer;
    const charges = this.#charges;
    this.#chunks.push(content);
    this.#tailQueued = false;
    if (this.#viewBuffer === buffer) {
      // The buffer is charged to the previous view: the charge moves to this one, read after it.
      const last = charges.length - 1;
      charges.push(charges[last] as number);
      charges[last] = 0;
      this.#notify();
      return;
    }
    this.#viewBuffer = buffer;
    charges.push(buffer.byteLength);
    this.#add(buffer.byteLength);
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
    this.#charges = [];
    this.#head = 0;
    if (this.#budget !== undefined) this.#budget.used -= this.#queued;
    this.#queued = 0;
    this.#tail = null;
    this.#tailQueued = false;
    this.#viewBuffer = null;
    this.#notify();
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      if (this.#head < this.#chunks.length) {
        const chunk = this.#chunks[this.#head] as Uint8Array;
        const charge = this.#charges[this.#head] as number;
        this.#chunks[this.#head] = EMPTY;
        this.#head++;
        if (this.#head === this.#chunks.length) {
          this.#chunks = [];
          this.#charges = [];
          this.#head = 0;
          // The chunk handed out may be the one that grows: from now on it is the app's, never changed. And a
          // next view of the same buffer is charged again: the app may keep this one.
          this.#tailQueued = false;
          this.#viewBuffer = null;
        }
        const before = this.#queued;
        this.#queued -= charge;
        if (this.#budget !== undefined) this.#budget.used -= charge;
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
