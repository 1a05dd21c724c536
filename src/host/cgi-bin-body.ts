/**
 * The body of a cgiBin response: the script's output, as the async iterable a tsgi body is, whose close()
 * (which every server calls once, however the response ends) kills the script if it is still running: a client
 * that went away takes the script's whole process group with it.
 */
import type { Readable } from 'node:stream';

/** A script's output as a tsgi Body. */
export class ScriptBody implements AsyncIterable<Uint8Array> {
  readonly #output: Readable;

  constructor(output: Readable) {
    this.#output = output;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.#output[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  }

  /** Ends the run: a script still writing is killed with its process group (a no-op once its output ended). */
  close(): void {
    if (!this.#output.readableEnded && !this.#output.destroyed) this.#output.destroy();
  }
}
