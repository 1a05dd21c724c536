import type { Readable } from 'node:stream';

/** How much of a CGI request body is read ahead of the app by default (see createStdinReader). */
export const READ_AHEAD_BYTES = 16 * 1024 * 1024;
/** How long a finished CGI script keeps discarding a body its app did not read, at most. */
export const DRAIN_TIMEOUT_MS = 2_000;

/** The request body of a CGI run, read from stdin. */
export interface StdinReader {
  /** The body bytes, never past CONTENT_LENGTH; for createEnviron's `input`. */
  source: AsyncIterable<Uint8Array>;
  /**
   * Reads and discards what the app left unread, up to CONTENT_LENGTH, for at most `timeoutMs`. Then stops
   * reading stdin for good.
   */
  drain(timeoutMs?: number): Promise<void>;
}

/**
 * Reads a CGI request body from stdin, ahead of the app, up to `readAheadBytes` held in memory.
 *
 * Why read ahead: Apache's mod_cgi and mod_cgid write the whole request body to the script before they read
 * any of its output. An app that streams its response while it reads the body (an echo, a transform) would
 * block on a full stdout pipe while Apache blocks on a full stdin pipe. Reading ahead keeps stdin flowing
 * while the app writes; past `readAheadBytes` the reader pauses (bounded memory), so bodies larger than that
 * must be read before answering under Apache.
 *
 * Why drain: under mod_cgid stdin and stdout are one socket; exiting with request bytes unread makes the
 * kernel reset it, and the client loses the response.
 *
 * It never reads past CONTENT_LENGTH and never waits for EOF (RFC 3875 §4.2).
 */
export function createStdinReader(stdin: Readable, contentLength: number, readAheadBytes = READ_AHEAD_BYTES): StdinReader {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let remaining = contentLength;
  let ended = remaining === 0;
  let failure: Error | null = null;
  let discarding = false;
  let wake: (() => void) | null = null;

  const notify = (): void => {
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const stop = (): void => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.off('error', onError);
    stdin.pause();
  };
  const onData = (chunk: Buffer): void => {
    let part: Uint8Array = chunk;
    if (part.length >= remaining) {
      part = part.subarray(0, remaining);
      ended = true;
      stop();
    }
    remaining -= part.length;
    if (!discarding && part.length > 0) {
      queue.push(part);
      queued += part.length;
      if (queued >= readAheadBytes) stdin.pause();
    }
    notify();
  };
  const onEnd = (): void => {
    ended = true;
    stop();
    notify();
  };
  const onError = (error: Error): void => {
    failure = error;
    ended = true;
    stop();
    notify();
  };
  if (!ended) {
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
  }

  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<Uint8Array>> {
        for (;;) {
          const chunk = queue.shift();
          if (chunk !== undefined) {
            queued -= chunk.length;
            if (!ended && queued < readAheadBytes / 2) stdin.resume();
            return { done: false, value: chunk };
          }
          if (failure) throw failure;
          if (ended) return { done: true, value: undefined };
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      },
    }),
  };

  async function drain(timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
    discarding = true;
    queue.length = 0;
    queued = 0;
    if (ended) return;
    stdin.resume();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (ended) resolve();
          else wake = check;
        };
        check();
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    stop();
  }

  return { source, drain };
}
