import { createWriteStream, openSync } from 'node:fs';

/** Where `tsgi serve --access-log` writes: accessLog's `write`, plus a close that flushes. */
export interface AccessLogFile {
  /** Queues one line; never blocks the request (the stream writes in the background). */
  write(line: string): void;
  /** Flushes what is queued and closes the file (stderr stays open). Resolves within CLOSE_TIMEOUT_MS. */
  close(): Promise<void>;
}

/** Past this many queued bytes (a stalled disk), lines are dropped rather than held in memory. */
export const MAX_QUEUED_LOG_BYTES = 8 * 1024 * 1024;
/** The longest close() waits for the disk. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Opens the access log target of `tsgi serve`: "-" for stderr, else a file opened for append (created with
 * mode 0644), shared safely by several worker processes since every write appends whole lines (O_APPEND).
 * Opening happens now, so a bad path fails at startup with a clear message:
 * "tsgi serve: cannot open the access log (PATH: ENOENT)".
 */
export function openAccessLogFile(target: string, errors: NodeJS.WritableStream = process.stderr): AccessLogFile {
  if (target === '-') {
    return {
      write: (line) => void process.stderr.write(line),
      close: () => new Promise((resolve) => process.stderr.write('', () => resolve())),
    };
  }
  let fd: number;
  try {
    fd = openSync(target, 'a', 0o644);
  } catch (error) {
    throw new Error(`tsgi serve: cannot open the access log (${target}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const stream = createWriteStream(target, { fd, autoClose: true });
  let failed = false;
  let dropped = 0;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (failed) return;
    failed = true;
    errors.write(`tsgi: access log ${target} failed, no more lines will be written (${error.code ?? error.message})\n`);
  });
  let closing: Promise<void> | null = null;
  return {
    write(line) {
      if (failed || closing) return;
      if (stream.writableLength > MAX_QUEUED_LOG_BYTES) {
        if (dropped++ === 0) errors.write(`tsgi: access log ${target} is not keeping up; dropping lines\n`);
        return;
      }
      if (dropped > 0) {
        errors.write(`tsgi: access log ${target} caught up; ${dropped} lines were dropped\n`);
        dropped = 0;
      }
      stream.write(line);
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        timer.unref();
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        if (stream.destroyed) {
          done();
          return;
        }
        stream.once('close', done);
        stream.end();
      });
      return closing;
    },
  };
}
