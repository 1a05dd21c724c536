import type { ErrorStream } from '../types.js';

/** Default quiet time between two log lines about the same limit. */
export const LIMIT_LOG_INTERVAL_MS = 10_000;

/**
 * Logs a refusal at a limit (a timeout, a cap on connections, requests or bytes) once, then at most once per
 * interval per limit, with how many more were refused meanwhile: a hostile peer hitting a limit thousands of
 * times a second gets a few lines, never a log flood. Every line names the limit and how to raise it.
 */
export interface LimitLog {
  /**
   * `limit`: the option's name (e.g. "headerTimeoutMs"); `what`: what happened, for a person ("a connection
   * sent no complete request head in 10 s"); `raise`: how to change the limit ("--header-timeout SECONDS").
   */
  hit(limit: string, what: string, raise: string): void;
}

/** Creates a LimitLog writing to `errors` as `tsgi: PREFIX: ...`. `now` is for tests. */
export function createLimitLog(
  errors: ErrorStream,
  prefix: string,
  intervalMs: number = LIMIT_LOG_INTERVAL_MS,
  now: () => number = Date.now,
): LimitLog {
  const state = new Map<string, { last: number; suppressed: number }>();
  return {
    hit(limit, what, raise) {
      const at = now();
      const seen = state.get(limit);
      if (seen !== undefined && at - seen.last < intervalMs) {
        seen.suppressed++;
        return;
      }
      const more = seen !== undefined && seen.suppressed > 0 ? ` (${seen.suppressed} more since the last line)` : '';
      state.set(limit, { last: at, suppressed: 0 });
      errors.write(`tsgi: ${prefix}: ${what}: refused at the limit ${limit}${more}; to change it: ${raise}\n`);
    },
  };
}
