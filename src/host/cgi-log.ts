/**
 * The stderr of one CGI run, and the host's own log lines about it: forwarded as they come, and kept (up to a
 * cap) for the result runCgi returns.
 */

/** Where a run's log goes besides the text kept for the result. */
export interface CgiLogSinks {
  /** Receives the script's stderr as text as it arrives; also the host's lines when `onHostLine` is not given. */
  onStderr?: (text: string) => void;
  /** Receives each of the host's own log lines (without "\n"): a server may rate-limit or prefix them. */
  onHostLine?: (message: string) => void;
}

/** The stderr of one run: forwarded to the sinks as it comes, and kept up to a cap. */
export class StderrLog {
  #text = '';
  #dropped = 0;
  readonly #max: number;
  readonly #onStderr: ((text: string) => void) | undefined;
  readonly #onHostLine: ((message: string) => void) | undefined;

  constructor(max: number, sinks: CgiLogSinks = {}) {
    this.#max = max;
    this.#onStderr = sinks.onStderr;
    this.#onHostLine = sinks.onHostLine;
  }

  /** Records a piece of the script's stderr. */
  write(text: string): void {
    this.#onStderr?.(text);
    const room = this.#max - this.#text.length;
    if (text.length <= room) {
      this.#text += text;
    } else {
      this.#text += text.slice(0, Math.max(room, 0));
      this.#dropped += text.length - Math.max(room, 0);
    }
  }

  /** Writes one of the host's own log lines; these are kept even past the cap. */
  line(message: string): void {
    if (this.#onHostLine !== undefined) this.#onHostLine(message);
    else this.#onStderr?.(`${message}\n`);
    this.#text += `${message}\n`;
  }

  /** Everything kept: the stderr (capped) followed by the host's lines, with a note of what the cap dropped. */
  text(): string {
    return this.#dropped === 0 ? this.#text : `${this.#text}\n[cgi-host: stderr truncated, ${this.#dropped} chars dropped]\n`;
  }
}
