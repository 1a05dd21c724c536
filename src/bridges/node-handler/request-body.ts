/**
 * The request body of one exchange: pulled from `tsgi.input` only as fast as the handler reads it, and only once
 * it reads at all (so `100 Continue` goes out only when the body is wanted), then pushed into the request
 * (objects engine) or into the socket for Node's parser (http-server engine; chunk-framed for a body of unknown
 * length).
 */
import { AbortError } from '../../errors.js';
import { endRequest } from '../../node-private/http.js';
import { abortRequest } from './objects-engine.js';
import type { ExchangeSide } from './settings.js';

const LAST_CHUNK = '0\r\n\r\n';

/** Moves the body from tsgi.input to Node's side of one exchange. */
export class RequestBody {
  readonly #exchange: ExchangeSide;
  #input: AsyncIterator<Uint8Array> | null = null;
  #gateOpen = false;
  #wanted = false;
  #pumping = false;
  #done = false;

  constructor(exchange: ExchangeSide) {
    this.#exchange = exchange;
  }

  /** The handler read the body for the first time: from now on Node's requests for bytes are served. */
  openGate(): void {
    if (this.#gateOpen) return;
    this.#gateOpen = true;
    if (this.#wanted) this.pull();
  }

  /** Node's side wants more request bytes (http-server: socket._read; objects: req._read). */
  pull(): void {
    this.#wanted = true;
    if (!this.#gateOpen || this.#pumping || this.#done || this.#exchange.bodyMode === 'none') return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const exchange = this.#exchange;
    const socket = exchange.socket;
    const req = exchange.req;
    const objects = exchange.settings.objects;
    const chunked = exchange.bodyMode === 'chunked';
    this.#input ??= exchange.environ['tsgi.input'][Symbol.asyncIterator]();
    try {
      for (;;) {
        const { value, done } = await this.#input.next();
        // (Objects engine: the socket is the connection's, and outlives the request; a closed one destroys it.)
        if (objects ? req === null || req.destroyed : socket.destroyed) return;
        if (done) {
          this.#done = true;
          if (objects && req) {
            // As the parser does at the end of the message.
            endRequest(req);
          } else if (chunked) {
            // The socket stays open after the body, as a kept-alive connection does: Express's body parser
            // takes a socket that is no longer readable for a finished request.
            socket.feed(Buffer.from(LAST_CHUNK, 'latin1'));
          }
          return;
        }
        if (value.length === 0) continue;
        const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        let more: boolean;
        if (objects && req) {
          socket.bytesRead += bytes.length;
          more = req.push(bytes);
        } else if (chunked) {
          socket.feed(Buffer.from(`${value.length.toString(16)}\r\n`, 'latin1'));
          socket.feed(bytes);
          more = socket.feed(Buffer.from('\r\n', 'latin1'));
        } else {
          more = socket.feed(bytes);
        }
        if (!more) return;
      }
    } catch (error) {
      this.#done = true;
      const cause = error instanceof Error ? error : new AbortError(String(error));
      if (objects) {
        // What Node does when a client breaks off mid-body: the request fails (refuse), the connection closes,
        // so the request emits 'aborted' and 'close'.
        socket.destroy();
        if (req) abortRequest(req);
        exchange.refuse(cause);
      } else {
        // Destroying with the error makes Node do the same: 'clientError' (-> refuse), then req 'aborted'.
        socket.destroy(cause);
      }
    } finally {
      this.#pumping = false;
    }
  }
}
