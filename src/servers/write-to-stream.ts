import type { Writable } from 'node:stream';
import { AbortError } from '../errors.js';

/**
 * Writes `chunk` and, when the stream's buffer is full, waits for 'drain' (backpressure). Rejects when the
 * stream errors or closes first, or when `signal` fires, so a gone client never leaves a writer waiting.
 */
export function writeToStream(stream: Writable, chunk: Uint8Array, signal?: AbortSignal): Promise<void> | void {
  if (stream.destroyed || stream.writableEnded) {
    return Promise.reject(new AbortError('tsgi: the output stream is closed'));
  }
  if (stream.write(chunk)) return;
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new AbortError(`tsgi: output stream failed (${error.message})`, error));
    };
    const onClose = (): void => {
      cleanup();
      reject(new AbortError('tsgi: the output stream closed'));
    };
    const onAbort = (): void => {
      cleanup();
      reject(signal?.reason instanceof Error ? signal.reason : new AbortError());
    };
    stream.on('drain', onDrain);
    stream.on('error', onError);
    stream.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
