/** fromFetch: the handler's Response body as a tsgi Body, read at the transport's pace. */
import { AbortError, AppError } from '../../errors.js';
import type { Body } from '../../types.js';
import { abortReason } from './abort-reason.js';

const NOT_YET = Symbol('not yet');
const EMPTY_CHUNK = new Uint8Array(0);

/**
 * The tsgi body over a Response body: each `next()` reads one chunk, so the transport's pace sets the
 * stream's. When `signal` fires, the reader is cancelled (which settles a read that waits for a slow producer,
 * such as server-sent events) and the body fails with the abort reason; `close()` cancels a body that was not
 * read to its end.
 */
export function readBody(stream: ReadableStream<Uint8Array>, signal: AbortSignal): Body {
  const reader = stream.getReader();
  let finished = false;
  const finish = async (reason?: unknown): Promise<void> => {
    if (finished) return;
    finished = true;
    signal.removeEventListener('abort', onAbort);
    if (reason === undefined) return;
    try {
      await reader.cancel(reason);
    } catch {
      // A stream that errored can't be cancelled; there is nothing left to release.
    }
  };
  const onAbort = (): void => void finish(abortReason(signal));
  signal.addEventListener('abort', onAbort, { once: true });

  // The first read: when it is not ready by the end of this turn of the event loop, the body yields an empty
  // chunk first, so the head leaves at once (SPEC 4.1: server-sent events, long polls), as Node's Fetch
  // servers send a Response's head before its body.
  let first: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  let firstTried = false;
  const iterator: AsyncIterator<Uint8Array> = {
    async next() {
      if (signal.aborted) throw abortReason(signal);
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        if (!firstTried) {
          firstTried = true;
          const read = reader.read();
          const ready = await Promise.race([read, nextTurn()]);
          if (ready === NOT_YET) {
            first = read;
            return { done: false, value: EMPTY_CHUNK };
          }
          step = ready as ReadableStreamReadResult<Uint8Array>;
        } else if (first !== null) {
          const read = first;
          first = null;
          step = await read;
        } else {
          step = await reader.read();
        }
      } catch (error) {
        finished = true;
        signal.removeEventListener('abort', onAbort);
        throw error;
      }
      // A cancel on abort ends a pending read as "done": that is not the end of the body.
      if (signal.aborted) throw abortReason(signal);
      if (step.done) {
        await finish();
        return { done: true, value: undefined };
      }
      const chunk: unknown = step.value;
      if (!(chunk instanceof Uint8Array)) {
        const error = new AppError(`fetch: response body chunks must be Uint8Array (${Object.prototype.toString.call(chunk)})`);
        await finish(error);
        throw error;
      }
      return { done: false, value: chunk };
    },
    async return() {
      await finish(new AbortError('fetch: the response body was not read to its end'));
      return { done: true, value: undefined };
    },
  };
  return {
    [Symbol.asyncIterator]: () => iterator,
    close: () => finish(signal.aborted ? abortReason(signal) : new AbortError('fetch: the response body was not read to its end')),
  };
}

/** Resolves to NOT_YET once the current turn of the event loop (its I/O callbacks) is over. */
function nextTurn(): Promise<typeof NOT_YET> {
  return new Promise((resolve) => setImmediate(resolve, NOT_YET));
}
