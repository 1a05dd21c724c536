import { LintError } from '../../errors.js';
import type { ErrorStream, InputStream } from '../../types.js';
import { describeType } from './report.js';

/** The checked input stream: an InputStream plus a close() that fails, since apps may not close it. */
export interface CheckedInput extends InputStream {
  close(): never;
}

/** The checked error stream: an ErrorStream plus a close() that fails, since apps may not close it. */
export interface CheckedErrors extends ErrorStream {
  close(): never;
}

const checkedInputs = new WeakSet<object>();

/**
 * True for an input wrapper made by wrapInput. An app may return its input as its body (an echo); the server
 * then closes the body, which must not count as the app closing the input.
 */
export function isCheckedInput(value: unknown): boolean {
  return typeof value === 'object' && value !== null && checkedInputs.has(value);
}

/**
 * Wraps tsgi.input to check rule F9 on both sides: the app passes read() a non-negative integer or nothing
 * and never closes the stream; the server's reads resolve with Uint8Array, never more than `n` bytes, and
 * never more than `limit` bytes in all (CONTENT_LENGTH; 0 without it unless the input is terminated).
 */
export function wrapInput(input: InputStream, limit: number): CheckedInput {
  let total = 0;
  const count = (chunk: unknown, n?: number): Uint8Array => {
    // F9: reads return bytes.
    if (!(chunk instanceof Uint8Array)) throw new LintError('F9', 'tsgi.input must produce Uint8Array', describeType(chunk));
    // F9: read(n) returns at most n bytes.
    if (n !== undefined && chunk.length > n) throw new LintError('F9', `tsgi.input.read(${n}) returned more than ${n} bytes`, chunk.length);
    total += chunk.length;
    // F9: reads past CONTENT_LENGTH return EOF.
    if (total > limit) throw new LintError('F9', `tsgi.input produced more than CONTENT_LENGTH (${limit}) bytes`, total);
    return chunk;
  };
  const checked: CheckedInput = {
    async read(n?: number): Promise<Uint8Array> {
      // F9: read takes an optional byte count: a non-negative integer.
      if (arguments.length > 1) throw new LintError('F9', 'tsgi.input.read takes at most one argument', arguments.length);
      if (n !== undefined && !(Number.isInteger(n) && n >= 0)) throw new LintError('F9', 'tsgi.input.read(n) needs a non-negative integer', n);
      return count(await input.read(n), n);
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
      for await (const chunk of input) yield count(chunk);
    },
    close(): never {
      // F9: the app may not close the input.
      throw new LintError('F9', 'the app must not close tsgi.input');
    },
  };
  checkedInputs.add(checked);
  return checked;
}

/** Wraps tsgi.errors to check rule F10: write() takes one string, flush() passes through, close() is refused. */
export function wrapErrors(errors: ErrorStream): CheckedErrors {
  return {
    write(text: string): void {
      // F10: write takes a string.
      if (arguments.length !== 1) throw new LintError('F10', 'tsgi.errors.write takes one argument', arguments.length);
      if (typeof text !== 'string') throw new LintError('F10', 'tsgi.errors.write needs a string', describeType(text));
      errors.write(text);
    },
    flush(): void {
      errors.flush?.();
    },
    close(): never {
      // F10: the app may not close the error stream.
      throw new LintError('F10', 'the app must not close tsgi.errors');
    },
  };
}
