/**
 * The floor of the Express bridge rows of bench/run.mjs: the Express hello world of express-app.mjs behind
 * about the least any bridge from a Node `(req, res)` handler to a tsgi `(environ, startResponse)` app can do,
 * written for the bench as the figure fromNodeHandler (bench/apps/express-hello.ts) is compared to.
 * `tsgi serve bench/apps/express-floor.mjs --http 127.0.0.1:P` serves it as express-hello.ts is served.
 *
 * What it does, per request: one `http.IncomingMessage` and one `http.ServerResponse` built by Node's own
 * constructors (as Node's server builds them, and as fromNodeHandler's "objects" engine does), the request's
 * method, url (REQUEST_URI), version and headers (every HTTP_* variable, names as CGI spells them) handed over
 * the way Node's parser does, the response assigned to a socket stand-in (one Writable reused by every
 * request) that collects what Node writes; when the handler has ended the response, startResponse gets the
 * status from `res.statusCode`/`res.statusMessage` and the headers from `res.getHeaders()`, and the body is the
 * bytes Node wrote after its head (whose length is Node's private `res._header`). Then what Node's own server
 * does for every request whose response finished (and what a bridge owes the handler for the same reason): the
 * request's unread body is dumped, so that the request ends ('end', then 'close': what `on-finished(req)`, and
 * with it Express's finalhandler and body-parser, wait for), and the response gets its 'close' a tick later.
 * (Measured on Express on node:http itself, with `IncomingMessage.prototype._dump` made a no-op: callgrind
 * counts ~45k of its ~556k instructions per hello request for that request end; no correct bridge skips it.)
 *
 * What it does not do (fromNodeHandler does): only handlers that answer synchronously (anything else gets a
 * 500), no request body, no backpressure, no 'drain', no client abort, no socket addresses, no `Expect`,
 * no chunked framing removed, headers that writeHead() alone set (not setHeader()) and Node's own Date and
 * framing headers are not passed on, no limits. Not for production.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { createExpressHello } from './express-app.mjs';

/** The socket stand-in: a Writable that collects what Node writes in `chunks` (one for every request). */
const socket = new Writable({
  decodeStrings: false,
  write(chunk, encoding, callback) {
    socket.chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    callback();
  },
});
socket.chunks = [];

/** Turns a synchronous `(req, res)` handler into a tsgi app, as cheaply as a bridge can. */
export function minimalBridge(handler) {
  return (environ, startResponse) => {
    const req = new IncomingMessage(socket);
    req.method = environ.REQUEST_METHOD;
    req.url = environ.REQUEST_URI;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    const raw = [];
    for (const key in environ) if (key.startsWith('HTTP_')) raw.push(key.slice(5), environ[key]);
    req._addHeaderLines(raw, raw.length);
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    socket.chunks = [];
    handler(req, res);
    req.complete = true;
    req.push(null);
    const chunks = socket.chunks;
    const headLength = res._header ? res._header.length : 0;
    res.detachSocket(socket);
    if (!req._consuming) req._dump();
    process.nextTick(emitResponseClose, res);
    if (!res.writableEnded) {
      startResponse('500 Internal Server Error', [['Content-Type', 'text/plain']]);
      return ['the floor bridge takes only handlers that answer synchronously\n'];
    }
    const headers = [];
    const fields = res.getHeaders();
    for (const name in fields) headers.push([name, String(fields[name])]);
    startResponse(`${res.statusCode} ${res.statusMessage}`, headers);
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    return [all.subarray(headLength)];
  };
}

/** Node's server's `emitCloseNT`: the response's single 'close'. */
function emitResponseClose(res) {
  if (res._closed) return;
  res.destroyed = true;
  res._closed = true;
  res.emit('close');
}

export default minimalBridge(createExpressHello());
