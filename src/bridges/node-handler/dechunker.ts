/**
 * The http-server engine's de-chunker: Node frames a response body as HTTP/1.1 chunks when the handler gave no
 * Content-Length; the tsgi server frames its own, so the bridge removes Node's.
 */
import { AppError } from '../../errors.js';

const LINE_END_RE = /\r?\n$/;

/**
 * Removes HTTP/1.1 chunked framing (RFC 9112 §7.1) from a stream of writes that may split it anywhere: Node
 * writes the size line, the data and the CRLF separately.
 */
export class Dechunker {
  #state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  #line = '';
  #remaining = 0;

  /** Takes the next bytes Node wrote; `emit` gets the body bytes among them (views, not copies). */
  push(bytes: Buffer, emit: (part: Buffer) => void): void {
    let at = 0;
    while (at < bytes.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const take = Math.min(this.#remaining, bytes.length - at);
        emit(bytes.subarray(at, at + take));
        at += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#state = 'data-end';
        continue;
      }
      const newline = bytes.indexOf(0x0a, at);
      const end = newline < 0 ? bytes.length : newline + 1;
      this.#line += bytes.toString('latin1', at, end);
      at = end;
      if (newline < 0) break;
      const line = this.#line.replace(LINE_END_RE, '');
      this.#line = '';
      if (this.#state === 'data-end') {
        this.#state = 'size';
      } else if (this.#state === 'size') {
        const size = parseInt(line.split(';', 1)[0] as string, 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new AppError(`node-handler: bad chunk size from Node (${JSON.stringify(line).slice(0, 40)})`);
        this.#remaining = size;
        this.#state = size === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.#state = 'done';
      }
    }
  }
}
