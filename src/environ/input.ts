import { AbortError, InputError } from '../errors.js';
import type { InputStream } from '../types.js';

const EMPTY = new Uint8Array(0);

/** How the body of one request reaches the input stream. */
export interface InputSource {
  /** Raw body bytes as the transport receives them; may run past the end of the body (CGI stdin). */
  source?: AsyncIterable<Uint8Array> | null;
  /** CONTENT_LENGTH as a number, or null when the request did not declare one. */
  contentLength: number | null;
  /** When true and contentLength is null, the body ends where the source ends (de-chunked uploads). */
  terminated: boolean;
  /** Aborts pending reads when the client goes away. */
  signal?: AbortSignal;
  /** Called once, before the first read that has to wait for the client (HTTP's `100 Continue`). */
  onFirstRead?: () => void;
}

/**
 * Creates the `tsgi.input` stream over a transport's raw body bytes. It never pulls from the source once
 * CONTENT_LENGTH bytes were delivered (RFC 3875 §4.2: the script MUST NOT read past it, and the source may
 * stay open), never yields more than CONTENT_LENGTH, and rejects with an InputError (400) when the source
 * ends early. Without CONTENT_LENGTH the body is empty unless `terminated` says the source ends by itself.
 */
export function createInput(options: InputSource): InputStream {
  return new BodyInput(options.source ?? null, options.contentLength, options.terminated, options.signal, options.onFirstRead);
}

/**
 * The InputStream behind createInput; a class, so a request costs one object rather than a dozen closures.
 * createEnviron builds it directly from positional arguments (no options object per request).
 */
export class BodyInput implements InputStream {
  readonly #source: AsyncIterable<Uint8Array> | null;
  readonly #declared: number | null;
  readonly #signal: AbortSignal | undefined;
  readonly #onFirstRead: (() => void) | undefined;
  #remaining: number;
  #received = 0;
  #iterator: AsyncIterator<Uint8Array> | null = null;
  #pending: Uint8Array | null = null;
  #started = false;
  #failure: unknown = null;
  #busy = false;

  constructor(
    source: AsyncIterable<Uint8Array> | null,
    contentLength: number | null,
    terminated: boolean,
    signal?: AbortSignal,
    onFirstRead?: () => void,
  ) {
    this.#source = source;
    this.#declared = contentLength;
    this.#signal = signal;
    this.#onFirstRead = onFirstRead;
    this.#remaining = contentLength ?? (terminated ? Number.POSITIVE_INFINITY : 0);
  }

  async read(n?: number): Promise<Uint8Array> {
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      throw new InputError(`input: read() size must be a non-negative integer (${n})`, 500);
    }
    const want = n ?? Number.POSITIVE_INFINITY;
    if (want === 0) return EMPTY;
    this.#enter();
    try {
      const parts: Uint8Array[] = [];
      let total = 0;
      while (total < want) {
        const chunk = await this.#nextChunk(want - total);
        if (chunk === null) break;
        parts.push(chunk);
        total += chunk.length;
      }
      if (parts.length === 0) return EMPTY;
      if (parts.length === 1) return parts[0] as Uint8Array;
      return Buffer.concat(parts, total);
    } finally {
      this.#busy = false;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      this.#enter();
      let chunk: Uint8Array | null;
      try {
        chunk = await this.#nextChunk(Number.POSITIVE_INFINITY);
      } finally {
        this.#busy = false;
      }
      if (chunk === null) return;
      yield chunk;
    }
  }

  #enter(): void {
    if (this.#busy) throw new InputError('input: concurrent reads of tsgi.input', 500);
    this.#busy = true;
  }

  #abortReason(): unknown {
    const reason: unknown = this.#signal?.reason;
    return reason instanceof Error ? reason : new AbortError();
  }

  /** The source's next step, rejected with the abort reason if the client goes away first. */
  #pull(iterator: AsyncIterator<Uint8Array>): Promise<IteratorResult<Uint8Array>> {
    const signal = this.#signal;
    if (!signal) return iterator.next();
    let listener: () => void = () => {};
    const aborted = new Promise<never>((_, reject) => {
      listener = () => reject(this.#abortReason());
      signal.addEventListener('abort', listener, { once: true });
    });
    aborted.catch(() => {});
    return Promise.race([iterator.next(), aborted]).finally(() => signal.removeEventListener('abort', listener));
  }

  /** Returns the next chunk of at most `limit` bytes, or null at the end of the body. */
  async #nextChunk(limit: number): Promise<Uint8Array | null> {
    if (this.#failure !== null) throw this.#failure;
    if (this.#remaining <= 0) return null;
    if (this.#signal?.aborted) throw this.#abortReason();
    let chunk = this.#pending;
    this.#pending = null;
    while (chunk === null || chunk.length === 0) {
      if (!this.#source) {
        chunk = null;
        break;
      }
      if (!this.#started) {
        this.#started = true;
        this.#onFirstRead?.();
      }
      this.#iterator ??= this.#source[Symbol.asyncIterator]();
      const step = await this.#pull(this.#iterator);
      if (step.done) {
        chunk = null;
        break;
      }
      chunk = step.value;
    }
    if (chunk === null) {
      this.#remaining = 0;
      if (this.#declared !== null && this.#received < this.#declared) {
        this.#failure = new InputError(`input: body ended after ${this.#received} of ${this.#declared} bytes (CONTENT_LENGTH)`);
        throw this.#failure;
      }
      return null;
    }
    const take = Math.min(limit, this.#remaining, chunk.length);
    if (take < chunk.length) {
      // Bytes past CONTENT_LENGTH are dropped; bytes past `limit` wait for the next read.
      if (this.#remaining > take) this.#pending = chunk.subarray(take);
      chunk = chunk.subarray(0, take);
    }
    this.#remaining -= take;
    this.#received += take;
    return chunk;
  }
}
