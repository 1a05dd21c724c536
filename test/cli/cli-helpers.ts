import type { ResultPromise } from 'execa';

/** A TCP port on 127.0.0.1 for a `tsgi serve` a test starts (see test/free-port.ts for why not listen(0)). */
export { freePort } from '../free-port.js';

/** Resolves with the child's stdout so far once it matches `pattern` (bounded; rejects if the child ends first). */
export function waitForLine(child: ResultPromise, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms: ${text}`)), timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.catch((error: unknown) => {
      clearTimeout(timer);
      reject(error instanceof Error ? error : new Error(String(error)));
    });
  });
}

/** The first stdout line of a started server (its startup line), bounded. */
export function firstLine(child: ResultPromise, timeoutMs = 20_000): Promise<string> {
  return waitForLine(child, /\n/, timeoutMs);
}
