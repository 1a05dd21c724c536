import type { Writable } from 'node:stream';
import { AbortError } from '../errors.js';

/**
 * Resolves true on the stream's next 'drain', false when it closes or fails first, or when `signal` fires, so
 * a writer blocked on backpressure never waits on a destination that is gone.
 */
export function waitForDrain(stream: Writable, signal?: AbortSignal): Promise<boolean> {
  if (stream.destroyed || stream.writableEnded || signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (drained: boolean): void => {
      stream.off('drain', onDrain);
      stream.off('close', onGone);
      stream.off('error', onGone);
      signal?.removeEventListener('abort', onGone);
      resolve(drained);
    };
    const onDrain = (): void => finish(true);
    const onGone = (): void => finish(false);
    stream.on('drain', onDrain);
    stream.on('close', onGone);
    stream.on('error', onGone);
    signal?.addEventListener('abort', onGone, { once: true });
  });
}

/**
 * Writes `chunk` and, when the stream's buffer is full, waits for 'drain' (backpressure). Rejects with an
 * AbortError when the stream is closed or fails, or `signal` fires, before it drains.
 */
export function writeToStream(stream: Writable, chunk: Uint8Array, signal?: AbortSignal): Promise<void> | void {
  if (stream.destroyed || stream.writableEnded) {
    return Promise.reject(new AbortError('tsgi: the output stream is closed'));
  }
  if (stream.write(chunk)) return;
  return waitForDrain(stream, signal).then((drained) => {
    if (drained) return;
    const reason: unknown = signal?.reason;
    throw reason instanceof Error ? reason : new AbortError('tsgi: the output stream closed before draining');
  });
}
