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
  const { source, contentLength, terminated, signal, onFirstRead } = options;
  let remaining = contentLength ?? (terminated ? Number.POSITIVE_INFINITY : 0);
  const declared = contentLength;
  let received = 0;
  let iterator: AsyncIterator<Uint8Array> | null = null;
  let pending: Uint8Array | null = null;
  let started = false;
  let failure: unknown = null;
  let busy = false;

  function abortReason(): unknown {
    const reason: unknown = signal?.reason;
    return reason instanceof Error ? reason : new AbortError();
  }

  function waitForAbort(): { promise: Promise<never>; dispose: () => void } {
    if (!signal) return { promise: new Promise<never>(() => {}), dispose: () => {} };
    let listener: () => void = () => {};
    const promise = new Promise<never>((_, reject) => {
      listener = () => reject(abortReason());
      signal.addEventListener('abort', listener, { once: true });
    });
    promise.catch(() => {});
    return { promise, dispose: () => signal.removeEventListener('abort', listener) };
  }

  /** Returns the next chunk of at most `limit` bytes, or null at the end of the body. */
  async function nextChunk(limit: number): Promise<Uint8Array | null> {
    if (failure !== null) throw failure;
    if (remaining <= 0) return null;
    if (signal?.aborted) throw abortReason();
    let chunk = pending;
    pending = null;
    while (chunk === null || chunk.length === 0) {
      if (!source) {
        chunk = null;
        break;
      }
      if (!started) {
        started = true;
        onFirstRead?.();
      }
      iterator ??= source[Symbol.asyncIterator]();
      const abort = waitForAbort();
      let step: IteratorResult<Uint8Array>;
      try {
        step = await Promise.race([iterator.next(), abort.promise]);
      } finally {
        abort.dispose();
      }
      if (step.done) {
        chunk = null;
        break;
      }
      chunk = step.value;
    }
    if (chunk === null) {
      remaining = 0;
      if (declared !== null && received < declared) {
        failure = new InputError(`input: body ended after ${received} of ${declared} bytes (CONTENT_LENGTH)`);
        throw failure;
      }
      return null;
    }
    const take = Math.min(limit, remaining, chunk.length);
    if (take < chunk.length) {
      // Bytes past CONTENT_LENGTH are dropped; bytes past `limit` wait for the next read.
      if (remaining > take) pending = chunk.subarray(take);
      chunk = chunk.subarray(0, take);
    }
    remaining -= take;
    received += take;
    return chunk;
  }

  async function exclusive<T>(task: () => Promise<T>): Promise<T> {
    if (busy) throw new InputError('input: concurrent reads of tsgi.input', 500);
    busy = true;
    try {
      return await task();
    } finally {
      busy = false;
    }
  }

  async function read(n?: number): Promise<Uint8Array> {
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
      throw new InputError(`input: read() size must be a non-negative integer (${n})`, 500);
    }
    return exclusive(async () => {
      const want = n ?? Number.POSITIVE_INFINITY;
      if (want === 0) return EMPTY;
      const parts: Uint8Array[] = [];
      let total = 0;
      while (total < want) {
        const chunk = await nextChunk(want - total);
        if (chunk === null) break;
        parts.push(chunk);
        total += chunk.length;
      }
      if (parts.length === 0) return EMPTY;
      if (parts.length === 1) return parts[0] as Uint8Array;
      return Buffer.concat(parts, total);
    });
  }

  return {
    read,
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const chunk = await exclusive(() => nextChunk(Number.POSITIVE_INFINITY));
        if (chunk === null) return;
        yield chunk;
      }
    },
  };
}
