/**
 * The bridge's in-memory connection: a Duplex standing in for the net.Socket of a request. Its readable side
 * carries the request (http-server engine: head, then body pulled from tsgi.input when Node asks for more;
 * objects engine: nothing, the body goes into the request itself), its writable side receives the response and
 * hands it to the exchange; a write's callback runs only once the tsgi side took its bytes (backpressure).
 */
import { Duplex } from 'node:stream';
import type { Environ } from '../../types.js';

const PORT_RE = /^[0-9]{1,5}$/;

/** What a socket reports to the request it carries (the exchange). */
export interface SocketOwner {
  /** Node's side reads the socket (http-server engine: its parser wants request bytes). */
  socketRead(): void;
  /** Node wrote bytes; `callback` is to be called once they were taken. */
  onOutput(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void;
  /** Node ended the socket's writable side. */
  onOutputEnd(): void;
  /** The socket was destroyed (told a tick later, before its 'error' and 'close' events). */
  socketClosed(): void;
}

/** A socket stand-in with net.Socket's addresses (from the environ) and the calls servers and apps make. */
export class BridgeSocket extends Duplex {
  remoteAddress: string | undefined = undefined;
  remotePort: number | undefined = undefined;
  remoteFamily: string | undefined = undefined;
  localAddress: string | undefined = undefined;
  localPort: number | undefined = undefined;
  readonly connecting = false;
  readonly pending = false;
  bytesRead = 0;
  bytesWritten = 0;
  /** Requests this socket carried (a pooled one is retired after so many). */
  requests = 0;
  #exchange: SocketOwner | null = null;
  /** The REMOTE_PORT and SERVER_PORT values remotePort and localPort were parsed from. */
  #remotePortText: unknown = undefined;
  #localPortText: unknown = undefined;

  constructor(https: boolean) {
    // Strings reach _write undecoded: Node writes its head as latin-1 text, sometimes joined to a UTF-8 body.
    super({ decodeStrings: false, allowHalfOpen: true });
    // TLSSocket's marker, which Express (req.protocol), Koa and Fastify read; absent on plain sockets.
    if (https) (this as { encrypted?: boolean }).encrypted = true;
  }

  /** Gives the socket to a request: the addresses are the environ's, its events go to `exchange`. */
  attach(exchange: SocketOwner, environ: Environ): void {
    this.#exchange = exchange;
    this.requests++;
    const remote = environ.REMOTE_ADDR || undefined;
    if (remote !== this.remoteAddress) {
      this.remoteAddress = remote;
      this.remoteFamily = familyOf(remote);
    }
    // (The ports are parsed only when they change: a kept-alive client keeps its port, the server keeps its own.)
    const remotePort = environ.REMOTE_PORT;
    if (remotePort !== this.#remotePortText) {
      this.#remotePortText = remotePort;
      this.remotePort = toPort(remotePort);
    }
    const local = (typeof environ.SERVER_ADDR === 'string' && environ.SERVER_ADDR) || undefined;
    if (local !== this.localAddress) this.localAddress = local;
    const localPort = environ.SERVER_PORT;
    if (localPort !== this.#localPortText) {
      this.#localPortText = localPort;
      this.localPort = toPort(localPort);
    }
  }

  /** The request is over (the socket goes back to the pool, or is destroyed). */
  detach(): void {
    this.#exchange = null;
  }

  /** The current request's exchange (null while pooled). */
  get exchange(): SocketOwner | null {
    return this.#exchange;
  }

  /** As net.Socket: the local address. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined) return {};
    return { address: this.localAddress, family: familyOf(this.localAddress) ?? 'IPv4', port: this.localPort ?? 0 };
  }

  // Connection tuning has no meaning for an in-memory stream; these exist because servers and apps call them.
  setTimeout(_ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  /** As net.Socket: end once the writes are done (Node's server calls it after a `Connection: close` response). */
  destroySoon(): void {
    if (this.writable) this.end();
    else this.destroy();
  }

  override _read(): void {
    this.#exchange?.socketRead();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    // Nothing is written to a pooled socket (a finished response is detached from it); dropped if it were.
    if (this.#exchange) this.#exchange.onOutput(chunk, encoding, callback);
    else callback();
  }

  /**
   * Destroying the socket (an abort, a failure, a retired socket) tells the request on it, a tick later and
   * before the socket's own 'error' and 'close' (as Node's server hears of a closed connection before a
   * response's 'close'). (A hook rather than a 'close' listener: a listener per socket would turn the 'close'
   * listener a response adds to its socket into a list built and split again on every request.)
   */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const exchange = this.#exchange;
    if (exchange !== null) process.nextTick(tellClosed, this, exchange);
    callback(error);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#exchange?.onOutputEnd();
    callback();
  }

  /** Pushes request bytes, counting them. */
  feed(bytes: Buffer | null): boolean {
    if (bytes) this.bytesRead += bytes.length;
    return this.push(bytes);
  }
}

function tellClosed(socket: BridgeSocket, exchange: SocketOwner): void {
  if (socket.exchange === exchange) socket.detach();
  exchange.socketClosed();
}

function toPort(value: unknown): number | undefined {
  return typeof value === 'string' && PORT_RE.test(value) ? Number(value) : undefined;
}

function familyOf(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.includes(':') ? 'IPv6' : 'IPv4';
}
