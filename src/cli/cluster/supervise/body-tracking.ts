/**
 * Knowing when a supervised request ends: the server calls its body's close() exactly once (docs/SPEC.md), so
 * the body is handed on with a close() that also marks the request finished, keeping the body's shape.
 */
import type { Body, Chunk } from '../../../types.js';
import { isThenable } from '../../../thenable.js';

/** True for a body the server iterates asynchronously (the only kind whose waits the clock guards). */
export function isAsyncBody(body: Body): body is AsyncIterable<Chunk> & { close?: () => void | Promise<void> } {
  return typeof (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator] === 'function';
}

/** True for what the server can iterate; anything else is an app error the server reports itself. */
export function isIterableBody(body: unknown): body is Body {
  if (body === null || typeof body !== 'object' || body instanceof Uint8Array) return false;
  return (
    typeof (body as Partial<AsyncIterable<Chunk>>)[Symbol.asyncIterator] === 'function' ||
    typeof (body as Partial<Iterable<Chunk>>)[Symbol.iterator] === 'function'
  );
}

/** Calls body.close() (if any), then `finish`, even when close() throws or rejects. */
function closeThenFinish(body: Body, finish: () => void): () => void | Promise<void> {
  return () => {
    let result: void | Promise<void>;
    try {
      result = typeof body.close === 'function' ? body.close() : undefined;
    } catch (error) {
      finish();
      throw error;
    }
    if (isThenable(result)) return Promise.resolve(result).finally(finish);
    finish();
    return result;
  };
}

/** The same body for the server, with a close() that also marks the request finished. */
export function trackBody(body: Body, finish: () => void): Body {
  if (!isIterableBody(body)) {
    // Not a body: the server answers 500 and will not call close(); the request ends now.
    finish();
    return body;
  }
  const close = closeThenFinish(body, finish);
  if (Array.isArray(body)) {
    // A copy, so an array the app reuses across requests is never changed; still an array for the server.
    const copy = body.slice() as Chunk[] & { close?: () => void | Promise<void> };
    copy.close = close;
    return copy;
  }
  if (isAsyncBody(body)) return { [Symbol.asyncIterator]: () => body[Symbol.asyncIterator](), close };
  const iterable = body as Iterable<Chunk>;
  return { [Symbol.iterator]: () => iterable[Symbol.iterator](), close };
}

/** Calls body.close() (if any) and ignores what it throws or rejects with. */
export function closeQuietly(body: unknown): void {
  if (!isIterableBody(body) || typeof body.close !== 'function') return;
  try {
    const result = body.close();
    if (isThenable(result)) Promise.resolve(result).catch(() => {});
  } catch {
    // The request is over; nothing to report to.
  }
}
