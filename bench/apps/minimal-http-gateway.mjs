/**
 * The "minimal environ gateway on node:http" row of bench/run.mjs's direct HTTP section: about the least any
 * server of the tsgi interface (docs/SPEC.md) on Node's own HTTP server does per request, written for the bench
 * as the floor `tsgi serve --http` is compared to. It runs bench/apps/hello-app.mjs, the same app as the
 * createHttpServer row.
 *
 * What it does, per request, because the interface requires it:
 * - an environ: a plain object holding one HTTP_* variable per request header (names mapped once and
 *   remembered), REQUEST_METHOD, SCRIPT_NAME, PATH_INFO (percent-decoding skipped when there is no "%"),
 *   QUERY_STRING, REQUEST_URI, SERVER_NAME, SERVER_PORT, SERVER_PROTOCOL, SERVER_SOFTWARE, GATEWAY_INTERFACE,
 *   REMOTE_ADDR, REMOTE_PORT, and the tsgi.* keys of SPEC 5.3;
 * - `tsgi.input`: an object with `read()` and an async iterator (empty body here: every request of the bench
 *   is a GET);
 * - `tsgi.signal`: an own, enumerable property that is an AbortSignal when read. Creating an AbortController
 *   per request costs about 5 us on Node 20, so it is created only when read: an accessor defined on each
 *   environ (Object.defineProperty of one shared descriptor; the getter finds its request's signal in a
 *   private field the environ is born with: no closure per request), the least a lazy own property costs;
 * - startResponse(status, headers) and the app's body array; the head goes to `res.writeHead(code, reason,
 *   flatHeaders)` (an array, so that repeated fields stay separate), the body to `res.end(chunk)`.
 *
 * What it does not do (tsgi does): no check of the status, of header names and values (control characters,
 * Content-Length digits), of Host (several, malformed), of the request target (absolute form, mount), no
 * Transfer-Encoding or Content-Length policy, no request body, no 100-continue, no Content-Length computed, no
 * HEAD handling, no error page, no abort when the client goes away (the signal never fires), no limits, no
 * timeouts, no access log, no drain on shutdown, no async app or body. Not for production.
 *
 *   node bench/apps/minimal-http-gateway.mjs PORT    prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createServer } from 'node:http';
import app from './hello-app.mjs';

const port = Number(process.argv[2] ?? 8005);
const ERRORS = { write: (text) => void process.stderr.write(text) };
const VERSION = Object.freeze([1, 0]);
const EMPTY = new Uint8Array(0);

/** The request header name -> CGI variable name map (X-A -> HTTP_X_A), worked out once per name. */
const variableNames = new Map();
function variableName(name) {
  let key = variableNames.get(name);
  if (key === undefined) {
    key = `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
    if (key === 'HTTP_CONTENT_TYPE') key = 'CONTENT_TYPE';
    else if (key === 'HTTP_CONTENT_LENGTH') key = 'CONTENT_LENGTH';
    variableNames.set(name, key);
  }
  return key;
}

/** A base class whose constructor returns a new plain object (so `this` in a subclass is an empty `{}`). */
class PlainObject {
  constructor() {
    return {};
  }
}

/**
 * An empty environ with a private slot for its request's signal: a plain object (Object.prototype, no symbol
 * key), so that one getter shared by every environ finds the signal of its own request.
 */
class EnvironWithSignal extends PlainObject {
  #signal = null;

  static signalOf(environ) {
    environ.#signal ??= new AbortController().signal;
    return environ.#signal;
  }
}

/** The accessor of `tsgi.signal`, shared by every environ (no closure per request). */
const SIGNAL = Object.freeze({
  enumerable: true,
  configurable: true,
  get() {
    return EnvironWithSignal.signalOf(this);
  },
});

/** An empty request body, as the interface's InputStream. */
class EmptyInput {
  read() {
    return Promise.resolve(EMPTY);
  }
  async *[Symbol.asyncIterator]() {}
}

function handle(req, res) {
  const environ = new EnvironWithSignal();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) environ[variableName(raw[i])] = raw[i + 1];
  const url = req.url;
  const question = url.indexOf('?');
  const path = question < 0 ? url : url.slice(0, question);
  const socket = req.socket;
  environ.REQUEST_METHOD = req.method;
  environ.SCRIPT_NAME = '';
  environ.PATH_INFO = path.includes('%') ? decodeURIComponent(path) : path;
  environ.QUERY_STRING = question < 0 ? '' : url.slice(question + 1);
  environ.REQUEST_URI = url;
  environ.SERVER_NAME = '127.0.0.1';
  environ.SERVER_PORT = String(port);
  environ.SERVER_PROTOCOL = `HTTP/${req.httpVersion}`;
  environ.SERVER_SOFTWARE = 'minimal-http-gateway';
  environ.GATEWAY_INTERFACE = 'CGI/1.1';
  environ.REMOTE_ADDR = socket.remoteAddress;
  environ.REMOTE_PORT = String(socket.remotePort);
  environ['tsgi.version'] = VERSION;
  environ['tsgi.url_scheme'] = 'http';
  environ['tsgi.input'] = new EmptyInput();
  environ['tsgi.input_terminated'] = false;
  environ['tsgi.errors'] = ERRORS;
  Object.defineProperty(environ, 'tsgi.signal', SIGNAL);
  environ['tsgi.multithread'] = true;
  environ['tsgi.multiprocess'] = false;
  environ['tsgi.run_once'] = false;

  let code = 500;
  let reason = '';
  let headers = [];
  const body = app(environ, (status, list) => {
    code = Number(status.slice(0, 3));
    reason = status.slice(4);
    headers = list;
  });
  const flat = [];
  for (let i = 0; i < headers.length; i++) flat.push(headers[i][0], headers[i][1]);
  res.writeHead(code, reason, flat);
  if (body.length === 1) {
    res.end(body[0]);
  } else {
    for (const chunk of body) res.write(chunk);
    res.end();
  }
}

const server = createServer(handle);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile), without waiting for kept-alive clients.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
