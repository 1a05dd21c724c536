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

/**
 * What a peer can make the server log (a refused address, a malformed request, a protocol error): at most one
 * line per kind every interval, with how many were left out meanwhile, so that a peer sending garbage in a loop
 * cannot flood the log. `kind` groups lines ("malformed head", "refused address"); `line` is the whole text.
 */
export interface PeerLog {
  write(kind: string, line: string): void;
}

/** Creates a PeerLog over `errors`. `now` is for tests. */
export function createPeerLog(errors: ErrorStream, intervalMs: number = LIMIT_LOG_INTERVAL_MS, now: () => number = Date.now): PeerLog {
  const state = new Map<string, { last: number; suppressed: number }>();
  return {
    write(kind, line) {
      const at = now();
      const seen = state.get(kind);
      if (seen !== undefined && at - seen.last < intervalMs) {
        seen.suppressed++;
        return;
      }
      state.set(kind, { last: at, suppressed: 0 });
      const text = line.endsWith('\n') ? line.slice(0, -1) : line;
      const more = seen !== undefined && seen.suppressed > 0 ? ` (${seen.suppressed} more like it since the last line)` : '';
      errors.write(`${text}${more}\n`);
    },
  };
}

/**
 * Refusals at each limit in this process, whatever server and log saw them (every hit counts, logged or not):
 * what the status page and metrics of `tsgi serve --status-path` report. Keys are the limits' option names.
 */
export const refusalCounts = new Map<string, number>();

/** Creates a LimitLog writing to `errors` as `tsgi: PREFIX: ...`. `now` is for tests. */
export function createLimitLog(
  errors: ErrorStream,
  prefix: string,
  intervalMs: number = LIMIT_LOG_INTERVAL_MS,
  now: () => number = Date.now,
): LimitLog {
  const peer = createPeerLog(errors, intervalMs, now);
  return {
    hit(limit, what, raise) {
      refusalCounts.set(limit, (refusalCounts.get(limit) ?? 0) + 1);
      peer.write(limit, `tsgi: ${prefix}: ${what}: refused at the limit ${limit}; to change it: ${raise}`);
    },
  };
}
