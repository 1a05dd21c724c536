import { openSync, writeSync } from 'node:fs';
import type { ErrorStream } from '../types.js';

/**
 * Opens the target of `tsgi serve --error-log`: "-" for stderr, else a file opened for append now (created
 * with mode 0644), so a bad path fails at startup: "tsgi serve: cannot open the error log (PATH: ENOENT)".
 *
 * The servers' own log goes there (the `errors` option: refused requests, protocol errors, the apps'
 * `tsgi.errors` and the stacks of apps that throw). Lines are written synchronously with O_APPEND: error lines
 * are few, none is lost when the process exits right after (a crash, a watchdog kill), and the lines of
 * several worker processes never interleave inside a line. A failed write (a full disk) goes to stderr instead.
 */
export function openErrorLog(target: string): ErrorStream {
  if (target === '-') return { write: (text) => void process.stderr.write(text) };
  let fd: number;
  try {
    fd = openSync(target, 'a', 0o644);
  } catch (error) {
    throw new Error(`tsgi serve: cannot open the error log (${target}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return {
    write(text) {
      if (text.length === 0) return;
      try {
        writeSync(fd, text);
      } catch {
        process.stderr.write(text);
      }
    },
  };
}
