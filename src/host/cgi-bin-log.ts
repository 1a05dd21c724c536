/**
 * Where cgiBin's log lines go: the scripts' stderr line by line, each line naming its script, and the host's
 * own lines about scripts through rate-limited logs (one line per kind every 10 s at most: a client can make a
 * broken script fail in a loop). Every line goes to the request's error stream unless cgiBin was given one.
 */
import type { ErrorStream } from '../types.js';
import { createLimitLog, createPeerLog, type LimitLog, type PeerLog } from '../servers/limit-log.js';

/** A partial stderr line longer than this is written as it is rather than held for its end. */
export const MAX_PARTIAL_LINE_CHARS = 16 * 1024;

/** An ErrorStream that writes to whichever stream `target` is at the moment of each write. */
class ForwardingErrors implements ErrorStream {
  target: ErrorStream | undefined;

  write(text: string): void {
    this.target?.write(text);
  }
}

/** The rate-limited logs one cgiBin app shares across its requests. */
export class CgiBinLogs {
  readonly #sink = new ForwardingErrors();
  readonly #peer: PeerLog = createPeerLog(this.#sink);
  readonly #limits: LimitLog = createLimitLog(this.#sink, 'cgi-bin');

  /** A line about a script (its SCRIPT_NAME in front), at most one per `kind` every 10 s. */
  host(errors: ErrorStream, kind: string, scriptName: string, message: string): void {
    this.#sink.target = errors;
    this.#peer.write(kind, `tsgi: cgi-bin: ${describe(scriptName)}: ${message}`);
  }

  /** A refusal at a limit: names the limit and how to change it (limit-log.ts), at most one per limit every 10 s. */
  limit(errors: ErrorStream, limit: string, what: string, raise: string): void {
    this.#sink.target = errors;
    this.#limits.hit(limit, what, raise);
  }
}

/**
 * The stderr of one script, cut into lines, each written as `tsgi: cgi-bin: SCRIPT_NAME: line` (not rate
 * limited: it is the script's own log). A last line without "\n" is written by flush().
 */
export class ScriptStderr {
  readonly #errors: ErrorStream;
  readonly #prefix: string;
  #partial = '';

  constructor(errors: ErrorStream, scriptName: string) {
    this.#errors = errors;
    this.#prefix = `tsgi: cgi-bin: ${describe(scriptName)}: `;
  }

  readonly write = (text: string): void => {
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      this.#errors.write(`${this.#prefix}${this.#partial}${text.slice(start, end)}\n`);
      this.#partial = '';
      start = end + 1;
    }
    this.#partial += text.slice(start);
    if (this.#partial.length > MAX_PARTIAL_LINE_CHARS) this.flush();
  };

  /** Writes what is left of a line without its "\n". */
  flush(): void {
    if (this.#partial === '') return;
    this.#errors.write(`${this.#prefix}${this.#partial}\n`);
    this.#partial = '';
  }
}

/** A SCRIPT_NAME (a byte string) for a log line: as it is when printable ASCII, else JSON-quoted. */
function describe(value: string): string {
  const short = value.length > 200 ? `${value.slice(0, 200)}...` : value;
  return /^[\x21-\x7e]*$/.test(short) ? short : JSON.stringify(short);
}
