/**
 * An async-iterable queue of byte chunks filled by a protocol handler (FastCGI STDIN or DATA records) and
 * drained by the app's input stream. It reports how many bytes wait, so the connection can pause the socket
 * when an app reads slower than the client sends (backpressure), and resume it as the app catches up.
 */
export class ByteQueue implements AsyncIterable<Uint8Array> {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #ended = false;
  #failure: unknown = null;
  #wake: (() => void) | null = null;
  readonly #onDrain: () => void;
  readonly #lowWater: number;

  /** `onDrain` runs when the queue falls to `lowWaterBytes` or below after a read. */
  constructor(onDrain: () => void, lowWaterBytes: number) {
    this.#onDrain = onDrain;
    this.#lowWater = lowWaterBytes;
  }

  /** Bytes waiting to be read. */
  get queued(): number {
    return this.#queued;
  }

  /** True once end() or fail() was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Adds a chunk (kept as given: copy it first if its memory will be reused). */
  push(chunk: Uint8Array): void {
    if (this.#ended || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
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
    this.#queued = 0;
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
        }
        const before = this.#queued;
        this.#queued -= chunk.length;
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
