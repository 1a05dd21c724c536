/**
 * What the "objects" engine of fromNodeHandler (src/bridges/node-handler/) needs from Node's http internals,
 * and the check that this Node has it: the http part of src/node-private/ (net.ts holds node:net's). The engine builds `http.IncomingMessage` and `http.ServerResponse` itself, as Node's own server does
 * for each request it parses, and does what that server does around them. It relies on these members, which
 * are not all documented (all long-standing, and present in Node 20.19+; the probe guards any other version):
 * - `IncomingMessage.prototype._addHeaderLines(raw, n)`: what the parser calls to hand a request its raw
 *   header list (`rawHeaders`; `headers` and `headersDistinct` are then derived lazily by Node itself);
 * - `IncomingMessage.prototype._read` (sets `_consuming`) and `_dump()` (discards an unread body);
 * - `new ServerResponse(req, { highWaterMark })`, `assignSocket(socket)` / `detachSocket(socket)` (the
 *   response writes its head and body to `socket.write()`, and emits 'close' when the socket closes);
 * - the response's private `kNeedDrain` flag, which the server clears when it relays the socket's 'drain';
 * - `_closed`, the flag behind a response's single 'close' event;
 * - `_expect_continue` (set by the server for `Expect: 100-continue`), and `socket._httpMessage` (the response a
 *   socket carries, which `assignSocket` sets and `detachSocket` clears).
 * probeObjectsEngine() exercises all of them on a throwaway pair; fromNodeHandler falls back to its
 * "http-server" engine when the probe fails. This module is the only one of tsgi that touches them: the bridge
 * calls the functions below.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';

/** The undocumented members of IncomingMessage the engine uses. */
interface IncomingInternals {
  _addHeaderLines(headers: string[], count: number): void;
  _dump(): void;
  _consuming: boolean;
  _read(size: number): void;
}

/** The undocumented members of ServerResponse the engine uses. */
interface ResponseInternals {
  assignSocket(socket: unknown): void;
  detachSocket(socket: unknown): void;
  _closed: boolean;
  _expect_continue: boolean;
  destroyed: boolean;
}

/** ServerResponse's constructor as Node 20+ has it (the second argument is not in every @types/node). */
const ServerResponseWithOptions = ServerResponse as unknown as new (
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
let kNeedDrain: symbol | undefined;

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

const readIncoming = IncomingMessage.prototype._read as (this: IncomingMessage, size: number) => void;

/**
 * As Node's parser does before 'request': a request on `socket` with the raw header list (name, value, ...);
 * Node derives `headers` and `headersDistinct` from it when they are read.
 */
export function createRequest(socket: Duplex, raw: string[]): IncomingMessage {
  const req = new IncomingMessage(socket as never) as IncomingMessage & IncomingInternals;
  if (raw.length > 0) req._addHeaderLines(raw, raw.length);
  return req;
}

/**
 * As Node's server does for a request: its response, with the socket's high-water mark, told whether the
 * request expects `100 Continue` (then `res.writeContinue()` is allowed), and assigned to the socket.
 */
export function createResponse(req: IncomingMessage, socket: Duplex, expectContinue: boolean): ServerResponse {
  const res = new ServerResponseWithOptions(req, { highWaterMark: socket.writableHighWaterMark });
  if (expectContinue) res._expect_continue = true;
  res.assignSocket(socket);
  return res;
}

/**
 * As Node's server does when a response finished: a body the handler never read is discarded (pulled and
 * dropped), and the response lets go of its socket. Its 'close' follows a tick later (emitResponseClose).
 */
export function finishExchange(req: IncomingMessage, res: ServerResponse, socket: Duplex): void {
  if (!(req as IncomingMessage & IncomingInternals)._consuming && req.readableFlowing !== true) (req as IncomingMessage & IncomingInternals)._dump();
  (res as ServerResponse & ResponseInternals).detachSocket(socket);
}

/** As Node's server after a response finished: the response's single 'close'. */
export function emitResponseClose(res: ServerResponse): void {
  const internals = res as ServerResponse & ResponseInternals;
  if (internals._closed) return;
  internals.destroyed = true;
  internals._closed = true;
  res.emit('close');
}

/**
 * Calls `onRead` each time the handler reads the request body (after IncomingMessage's own `_read`, which marks
 * the body as being consumed so that it is not dumped at the end).
 */
export function onRequestRead(req: IncomingMessage, onRead: () => void): void {
  req._read = (size: number): void => {
    readIncoming.call(req, size);
    onRead();
  };
}

/** Calls `onRead` once, the first time the handler reads the request body (the request's own `_read` then runs). */
export function onFirstRequestRead(req: IncomingMessage, onRead: () => void): void {
  const readOwn = req._read;
  req._read = (size: number): void => {
    req._read = readOwn;
    onRead();
    readOwn.call(req, size);
  };
}

/** As the parser does at the end of the message: the request is complete, its body ends. */
export function endRequest(req: IncomingMessage): void {
  req.complete = true;
  req.push(null);
}

/** The response this socket currently carries (null when none: a finished response detached itself). */
export function responseOnSocket(socket: Duplex): ServerResponse | null {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

/**
 * As Node's server on a socket's 'drain' (`this` is the socket; a listener added once per socket): the
 * response waiting for one (its res.write() returned false) gets it.
 */
export function relayDrain(this: Duplex): void {
  const res = responseOnSocket(this) as (ServerResponse & Record<symbol, unknown>) | null;
  if (!res || res.writableEnded || kNeedDrain === undefined || res[kNeedDrain] !== true) return;
  res[kNeedDrain] = false;
  res.emit('drain');
}
