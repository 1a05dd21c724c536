/**
 * `tsgi/fastcgi`: a drop-in replacement for node-fastcgi 2.0.0 (`createServer(responder?, authorizer?, filter?,
 * config?)`, `listen()` on the inherited socket, 'request' / 'authorize' / 'filter' events with `(req, res)`),
 * running on tsgi's FastCGI server. Handlers get real `http.IncomingMessage` / `http.ServerResponse` objects
 * (fromNodeHandler), so Express apps work (they don't under node-fastcgi: fbbdev/node-fastcgi#4, #7), and the
 * protocol bugs measured in node-fastcgi are gone (field-notes "node-fastcgi 2.0.0, measured").
 *
 * Config options, mapped to tsgi's FastCGI options:
 * - `maxConns` (default 2000) -> `maxConnections`: reported as FCGI_MAX_CONNS, as in node-fastcgi, and
 *   enforced (connections past it are closed; node-fastcgi only reports it);
 * - `maxReqs` (default 2000) -> `maxRequests`: reported as FCGI_MAX_REQS and enforced (END_REQUEST with
 *   FCGI_OVERLOADED past it; node-fastcgi only reports it);
 * - `multiplex` (default true) -> `multiplex`: reported as FCGI_MPXS_CONNS and enforced (a second request on a
 *   busy connection gets FCGI_CANT_MPX_CONN; node-fastcgi's check never fires);
 * - `valueMap` has no equivalent: GET_VALUES answers the three standard names only, extra names are ignored
 *   (node-fastcgi's README calls this API "a bad design choice" that will change).
 * Other differences, all deliberate: FCGI_KEEP_CONN is honoured (node-fastcgi closes every connection after one
 * request); params are byte strings (latin-1, tsgi's byte policy) where node-fastcgi decodes UTF-8 lossily;
 * `rawHeaders` names are title-cased ("User-Agent") where node-fastcgi upper-cases them; a role with no listener
 * is answered `501 Not Implemented` (node-fastcgi sends END_REQUEST{UNKNOWN_ROLE}); `res.writeContinue()`
 * works (node-fastcgi throws); the 'clientError' and 'protocolError' events are not emitted (protocol errors
 * close the connection and go to the server's log).
 */
import { fstatSync } from 'node:fs';
import { IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { environOf, fromNodeHandler } from '../bridges/node-handler.js';
import { FastCgiServer } from '../servers/fastcgi.js';
import type { Environ, InputStream } from '../types.js';

export { IncomingMessage, OutgoingMessage, ServerResponse };

/** node-fastcgi's server configuration. Extra keys are kept on `server.config` (node-fastcgi's valueMap targets). */
export interface FastCgiCompatConfig {
  /** FCGI_MAX_CONNS, and the most connections at once. Default 2000. */
  maxConns?: number | string;
  /** FCGI_MAX_REQS, and the most requests in progress at once. Default 2000. */
  maxReqs?: number | string;
  /** FCGI_MPXS_CONNS: several requests at once on one connection. Default true. */
  multiplex?: boolean;
  /** Accepted and kept, without effect: see the module comment. */
  valueMap?: Record<string, string>;
  [key: string]: unknown;
}

/** `config` with node-fastcgi's defaults applied. */
export interface ResolvedCompatConfig extends FastCgiCompatConfig {
  maxConns: number;
  maxReqs: number;
  multiplex: boolean;
  valueMap: Record<string, string>;
}

/** A handler for one of the three events. */
export type CompatHandler = (req: IncomingMessage, res: ServerResponse) => unknown;
/** The Authorizer handler; its response has node-fastcgi's extra methods. */
export type CompatAuthorizer = (req: IncomingMessage, res: AuthorizerResponse) => unknown;

/** The response of an Authorizer request: `Content-Type: text/plain` preset, plus node-fastcgi's three methods. */
export interface AuthorizerResponse extends ServerResponse {
  /** Passes a variable to the web server's next handlers: sets the `Variable-NAME` header (FastCGI §6.3). */
  setVariable(name: string, value: string): void;
  /** Ends with 200 and no body: access granted. */
  allow(): void;
  /** Ends with 403 and no body: access denied. */
  deny(): void;
}

/** What node-fastcgi hangs on `req.socket`: the raw params and the extra streams. */
export interface CompatSocketExtras {
  /** The request's CGI params (byte strings), FCGI_ROLE included. */
  params: Record<string, string>;
  /** The Filter role's DATA stream (empty and ended for other roles). */
  dataStream: Readable;
  /** Writes go to the request's FCGI_STDERR stream. */
  errorStream: Writable;
}

const DEFAULT_MAX = 2000;
/** node-fastcgi's idle timeout per connection, in ms; its 'timeout' event or a destroyed socket follow. */
const DEFAULT_TIMEOUT_MS = 2 * 60 * 1000;

/**
 * node-fastcgi's Server, on tsgi's FastCGI engine: a net.Server. `listen()` with no arguments (or only a
 * callback) listens on the socket the web server passed as fd 0 (FastCGI §2.2), any other arguments go to
 * net.Server's listen. Emits 'request' (Responder), 'authorize' (Authorizer) and 'filter' (Filter) with
 * `(req, res)`, and 'timeout' with the connection when one stays idle for `timeout` ms (destroyed when no
 * listener takes it).
 */
export class Server extends FastCgiServer {
  /** The configuration with defaults applied (a copy: the caller's object is left alone). */
  readonly config: ResolvedCompatConfig;
  /** Present for http.Server compatibility; has no effect (node-fastcgi's neither). */
  maxHeadersCount = 0;
  /** Idle time before a connection times out, in ms; 0 disables. */
  timeout = DEFAULT_TIMEOUT_MS;

  constructor(responder?: unknown, authorizer?: unknown, filter?: unknown, config?: FastCgiCompatConfig) {
    const resolved = resolveConfig(responder, authorizer, filter, config);
    const ref: { server: Server | null } = { server: null };
    super(
      // The url as node-fastcgi builds it (REQUEST_URI, else SCRIPT_NAME + PATH_INFO + query).
      fromNodeHandler((req, res) => ref.server?.dispatch(req, res), { url: 'request-uri' }),
      { maxConnections: resolved.maxConns, maxRequests: resolved.maxReqs, multiplex: resolved.multiplex },
    );
    ref.server = this;
    this.config = resolved;
    if (typeof responder === 'function') this.on('request', responder as CompatHandler);
    if (typeof authorizer === 'function') this.on('authorize', authorizer as CompatAuthorizer);
    if (typeof filter === 'function') this.on('filter', filter as CompatHandler);
    this.on('connection', (socket: Socket) => this.#watchIdle(socket));
  }

  /** As node-fastcgi: no arguments, or a callback alone, listen on fd 0; otherwise net.Server's listen. */
  override listen(...args: unknown[]): this {
    const listen = super.listen as (...params: unknown[]) => this;
    if (args.length === 0 || (args.length === 1 && typeof args[0] === 'function')) {
      return listen.call(this, { fd: 0 }, ...args);
    }
    return listen.apply(this, args);
  }

  /** As http.Server: sets the idle timeout of new connections (ms) and, optionally, a 'timeout' listener. */
  setTimeout(msecs: number, callback?: (socket: Socket) => void): this {
    this.timeout = msecs;
    if (callback) this.on('timeout', callback);
    return this;
  }

  #watchIdle(socket: Socket): void {
    if (!this.timeout) return;
    socket.setTimeout(this.timeout);
    socket.on('timeout', () => {
      if (!this.emit('timeout', socket)) socket.destroy();
    });
  }

  /** Routes one request to the event of its role, with node-fastcgi's extras attached. @internal */
  dispatch(req: IncomingMessage, res: ServerResponse): void {
    const environ = environOf(req) as Environ;
    const role = environ.FCGI_ROLE;
    const event = role === 'AUTHORIZER' ? 'authorize' : role === 'FILTER' ? 'filter' : 'request';
    attachExtras(req, res, environ, role === 'FILTER');
    if (role === 'AUTHORIZER') makeAuthorizerResponse(res);
    if (this.listenerCount(event) === 0) {
      environ['tsgi.errors'].write(`tsgi: fastcgi-compat: no '${event}' listener for a ${String(role)} request (501)\n`);
      res.statusCode = 501;
      res.end();
      return;
    }
    this.emit(event, req, res);
  }
}

/** Creates a node-fastcgi compatible server; any argument may be left out (a config may come in any slot). */
export function createServer(
  responder?: CompatHandler | FastCgiCompatConfig,
  authorizer?: CompatAuthorizer | FastCgiCompatConfig,
  filter?: CompatHandler | FastCgiCompatConfig,
  config?: FastCgiCompatConfig,
): Server {
  return new Server(responder, authorizer, filter, config);
}

/** True when fd 0 is a socket, i.e. a web server started this process as a FastCGI app (false on Windows). */
export function isService(): boolean {
  if (process.platform === 'win32') return false;
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

/**
 * node-fastcgi's argument shuffle: the config is the first object argument after the functions, so
 * `createServer(handler, config)` works. Defaults as node-fastcgi's.
 */
function resolveConfig(responder: unknown, authorizer: unknown, filter: unknown, config: unknown): ResolvedCompatConfig {
  const found =
    config ??
    (typeof filter === 'function'
      ? {}
      : (filter ?? (typeof authorizer === 'function' ? {} : (authorizer ?? (typeof responder === 'function' ? {} : (responder ?? {}))))));
  const given = (typeof found === 'object' && found !== null ? found : {}) as FastCgiCompatConfig;
  const maxConns = Number.parseInt(String(given.maxConns), 10);
  const maxReqs = Number.parseInt(String(given.maxReqs), 10);
  return {
    ...given,
    maxConns: maxConns > 0 ? maxConns : DEFAULT_MAX,
    maxReqs: maxReqs > 0 ? maxReqs : DEFAULT_MAX,
    multiplex: given.multiplex === undefined ? true : Boolean(given.multiplex),
    valueMap: { ...(given.valueMap ?? {}), FCGI_MAX_CONNS: 'maxConns', FCGI_MAX_REQS: 'maxReqs', FCGI_MPXS_CONNS: 'multiplex' },
  };
}

/** node-fastcgi's extras: `req.socket.params/dataStream/errorStream`, and the old `req.cgiParams`, `req.data`, `res.stderr`. */
function attachExtras(req: IncomingMessage, res: ServerResponse, environ: Environ, filter: boolean): void {
  const params: Record<string, string> = {};
  for (const key of Object.keys(environ)) {
    const value = environ[key];
    if (!key.startsWith('tsgi.') && typeof value === 'string') params[key] = value;
  }
  const data = environ['tsgi.fastcgi.data'] as InputStream | undefined;
  // Readable.from pulls one chunk per read: the DATA stream keeps its backpressure.
  const dataStream = filter && data ? Readable.from(data, { objectMode: false }) : Readable.from([], { objectMode: false });
  const errors = environ['tsgi.errors'];
  const errorStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      errors.write(chunk.toString('utf8'));
      callback();
    },
  });
  Object.assign(req.socket, { params, dataStream, errorStream } satisfies CompatSocketExtras);
  Object.assign(req, { cgiParams: params, data: dataStream });
  Object.assign(res, { stderr: errorStream });
}

/** Gives `res` node-fastcgi's Authorizer API; own properties, so a prototype swap (Express) keeps them. */
function makeAuthorizerResponse(res: ServerResponse): void {
  // Spelled as node-fastcgi spells it, so responses stay byte-identical.
  res.setHeader('Content-type', 'text/plain');
  const extra: Pick<AuthorizerResponse, 'setVariable' | 'allow' | 'deny'> = {
    setVariable: (name, value) => void res.setHeader(`Variable-${name}`, value),
    allow: () => {
      res.statusCode = 200;
      res.end();
    },
    deny: () => {
      res.statusCode = 403;
      res.end();
    },
  };
  Object.assign(res, extra);
}

/** The module as node-fastcgi's CommonJS export object, for `import fcgi from 'tsgi/fastcgi'`. */
const fastcgi = { createServer, Server, isService, IncomingMessage, OutgoingMessage, ServerResponse };
export default fastcgi;
