import { writeSync } from 'node:fs';
import { AbortError } from '../errors.js';

/** How long to wait before retrying a write to a non-blocking descriptor whose pipe is full. */
export const EAGAIN_RETRY_MS = 1;

/**
 * Returns a writer that writes whole chunks to file descriptor `fd` with write(2), bypassing process.stdout.
 *
 * Why: creating process.stdout over a pipe loads Node's net and stream machinery, a few milliseconds of every
 * CGI start-up. A CGI script that has no request body to read concurrently can write synchronously: a full
 * pipe blocks the write, which is exactly the backpressure wanted. On a non-blocking descriptor (EAGAIN) it
 * waits EAGAIN_RETRY_MS and retries. EPIPE (the web server closed the pipe: the client went away) rejects with
 * an AbortError and calls `onGone`.
 */
export function createFdWriter(fd: number, onGone: (error: Error) => void): (chunk: Uint8Array) => Promise<void> | void {
  return (chunk) => {
    let offset = 0;
    const attempt = (): Promise<void> | void => {
      while (offset < chunk.length) {
        try {
          offset += writeSync(fd, chunk, offset, chunk.length - offset);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'EAGAIN') return new Promise<void>((resolve) => setTimeout(resolve, EAGAIN_RETRY_MS)).then(attempt);
          const gone = new AbortError(`cgi: cannot write to the web server (${code ?? String(error)})`, error);
          onGone(gone);
          throw gone;
        }
      }
    };
    return attempt();
  };
}
