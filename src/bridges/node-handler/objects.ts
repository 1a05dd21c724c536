/**
 * What the "objects" engine of fromNodeHandler needs from Node's http internals, and the check that this Node
 * has it. The engine builds `http.IncomingMessage` and `http.ServerResponse` itself, as Node's own server does
 * for each request it parses, and does what that server does around them. It relies on these members, which
 * are not all documented (all long-standing, and present in Node 20.19+; the probe guards any other version):
 * - `IncomingMessage.prototype._addHeaderLines(raw, n)`: what the parser calls to hand a request its raw
 *   header list (`rawHeaders`; `headers` and `headersDistinct` are then derived lazily by Node itself);
 * - `IncomingMessage.prototype._read` (sets `_consuming`) and `_dump()` (discards an unread body);
 * - `new ServerResponse(req, { highWaterMark })`, `assignSocket(socket)` / `detachSocket(socket)` (the
 *   response writes its head and body to `socket.write()`, and emits 'close' when the socket closes);
 * - the response's private `kNeedDrain` flag, which the server clears when it relays the socket's 'drain';
 * - `_closed`, the flag behind a response's single 'close' event.
 * probeObjectsEngine() exercises all of them on a throwaway pair; fromNodeHandler falls back to its
 * "http-server" engine when the probe fails.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';

/** The undocumented members of IncomingMessage the engine uses. */
export interface IncomingInternals {
  _addHeaderLines(headers: string[], count: number): void;
  _dump(): void;
  _consuming: boolean;
  _read(size: number): void;
}

/** The undocumented members of ServerResponse the engine uses. */
export interface ResponseInternals {
  assignSocket(socket: unknown): void;
  detachSocket(socket: unknown): void;
  _closed: boolean;
  _expect_continue: boolean;
  destroyed: boolean;
}

/** ServerResponse's constructor as Node 20+ has it (the second argument is not in every @types/node). */
export const ServerResponseWithOptions = ServerResponse as unknown as new (
  req: IncomingMessage,
  options: { highWaterMark: number },
) => ServerResponse & ResponseInternals;

/** The error Node's server destroys an unfinished request with when its connection goes away. */
export function connectionReset(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

/**
 * OutgoingMessage's private "a write returned false" flag, which Node's server clears when it relays the
 * socket's 'drain' to the response (found on a probe response; undefined when this Node has no such field).
 */
export let kNeedDrain: symbol | undefined;

let probed: boolean | undefined;

/** probeObjectsEngine(), run once per process. */
export function objectsEngineSupported(): boolean {
  probed ??= probeObjectsEngine();
  return probed;
}

/**
 * True when this Node builds a request/response pair the way the objects engine expects: headers derived from
 * the raw list, the response assigned to a socket, its head and body written to that socket synchronously by
 * `end()`, and detached again.
 */
export function probeObjectsEngine(): boolean {
  try {
    let written = '';
    const socket = new Duplex({
      decodeStrings: false,
      read() {},
      write(chunk: Buffer | string, _encoding, callback) {
        written += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
        callback();
      },
    });
    const req = new IncomingMessage(socket as never) as IncomingMessage & IncomingInternals;
    if (typeof req._addHeaderLines !== 'function' || typeof req._dump !== 'function' || typeof req._read !== 'function') return false;
    req.method = 'GET';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    req._addHeaderLines(['Host', 'probe', 'X-Twice', 'a', 'x-twice', 'b'], 6);
    if (req.headers.host !== 'probe' || req.headers['x-twice'] !== 'a, b') return false;
    if (req.rawHeaders.length !== 6 || req.headersDistinct['x-twice']?.length !== 2) return false;
    const res = new ServerResponseWithOptions(req, { highWaterMark: socket.writableHighWaterMark });
    if (typeof res.assignSocket !== 'function' || typeof res.detachSocket !== 'function') return false;
    if (res._closed !== false) return false;
    kNeedDrain = Object.getOwnPropertySymbols(res).find((symbol) => symbol.description === 'kNeedDrain');
    if (kNeedDrain === undefined || (res as unknown as Record<symbol, unknown>)[kNeedDrain] !== false) return false;
    res.assignSocket(socket);
    if (res.socket !== socket) return false;
    res.end('ok');
    const ok = /^HTTP\/1\.1 200 OK\r\n/.test(written) && /\r\nContent-Length: 2\r\n/i.test(written) && written.endsWith('\r\n\r\nok');
    res.detachSocket(socket);
    socket.destroy();
    req.destroy();
    return ok && res.socket === null;
  } catch {
    return false;
  }
}
