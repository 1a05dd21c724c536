import { LintError } from '../../errors.js';
import type { Body, Chunk } from '../../types.js';
import { describeType } from './report.js';
import { countChunk, type ResponseState } from './response-rules.js';
import { isCheckedInput } from './stream-wrappers.js';

/**
 * Checks what an app returned (F18) and wraps it so that its use is checked over time (F18-F21). The wrapper
 * keeps the body's kind (a sync iterable stays sync) and always has a close() that calls the app's close()
 * (when it has one) exactly once.
 *
 * Checked: chunks are Uint8Array or string (F18); startResponse was called before the first chunk and before
 * the body ended (F19); no next() after close() and no second close() (F20: server rules); a HEAD, 1xx, 204 or
 * 304 body is empty and the bytes equal a declared Content-Length (F21). That close() runs at least once can
 * only be checked by whoever drives the server (a test): the wrapper cannot see a call that never comes.
 */
export function wrapBody(body: unknown, state: ResponseState): Body {
  // F18: the app returns an iterable, never null, a string or a Uint8Array.
  if (body === null || body === undefined) throw new LintError('F18', 'the app must return an iterable body', describeType(body));
  if (typeof body === 'string' || body instanceof Uint8Array) {
    throw new LintError('F18', 'the app must return an iterable of chunks, not a single chunk', describeType(body));
  }
  const candidate = body as Partial<AsyncIterable<Chunk> & Iterable<Chunk>> & { close?: unknown };
  const isAsync = typeof candidate[Symbol.asyncIterator] === 'function';
  if (!isAsync && typeof candidate[Symbol.iterator] !== 'function') {
    throw new LintError('F18', 'the app must return a sync or async iterable', describeType(body));
  }
  if (candidate.close !== undefined && typeof candidate.close !== 'function') {
    throw new LintError('F18', 'body.close must be a function when present', describeType(candidate.close));
  }

  let iterator: Iterator<Chunk> | AsyncIterator<Chunk> | undefined;
  const getIterator = (): Iterator<Chunk> | AsyncIterator<Chunk> => {
    iterator ??= isAsync ? (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]() : (body as Iterable<Chunk>)[Symbol.iterator]();
    return iterator;
  };
  const beforeNext = (): void => {
    // F20: the server never asks for more after close().
    if (state.closed) throw new LintError('F20', 'next() called on the body after close()');
  };
  const afterNext = (step: IteratorResult<unknown>): IteratorResult<Chunk> => {
    if (step.done === true) {
      // F19: the app calls startResponse before its body ends.
      if (!state.started) throw new LintError('F19', 'the body ended before startResponse was called');
      // F21: exactly the declared Content-Length (a HEAD response declares the length it would have had).
      if (!state.isHead && state.contentLength !== null && state.bytes !== state.contentLength) {
        throw new LintError('F21', `body is shorter than its Content-Length (${state.contentLength})`, state.bytes);
      }
      return { done: true, value: undefined };
    }
    const chunk = step.value;
    // F18: the body yields only Uint8Array or string.
    if (!(chunk instanceof Uint8Array) && typeof chunk !== 'string') {
      throw new LintError('F18', 'the body must yield Uint8Array or string chunks', describeType(chunk));
    }
    // F19: the first chunk requires startResponse to have been called.
    if (!state.started) throw new LintError('F19', 'the body produced a chunk before startResponse was called', describeType(chunk));
    countChunk(state, chunk);
    return { done: false, value: chunk };
  };
  const close = (): void | Promise<void> => {
    // F20: close() runs exactly once.
    if (state.closed) throw new LintError('F20', 'body.close() called more than once');
    state.closed = true;
    if (typeof candidate.close === 'function' && !isCheckedInput(body)) return (candidate.close as () => void | Promise<void>).call(body);
    return undefined;
  };

  if (isAsync) {
    const checked: AsyncIterator<Chunk> = {
      async next(): Promise<IteratorResult<Chunk>> {
        beforeNext();
        return afterNext(await (getIterator() as AsyncIterator<Chunk>).next());
      },
      async return(): Promise<IteratorResult<Chunk>> {
        const inner = getIterator() as AsyncIterator<Chunk>;
        if (typeof inner.return === 'function') await inner.return();
        return { done: true, value: undefined };
      },
    };
    return { [Symbol.asyncIterator]: () => checked, close };
  }
  const checked: Iterator<Chunk> = {
    next(): IteratorResult<Chunk> {
      beforeNext();
      return afterNext((getIterator() as Iterator<Chunk>).next());
    },
    return(): IteratorResult<Chunk> {
      const inner = getIterator() as Iterator<Chunk>;
      if (typeof inner.return === 'function') inner.return();
      return { done: true, value: undefined };
    },
  };
  return { [Symbol.iterator]: () => checked, close };
}
