/**
 * The "objects" engine: what Node's http.Server does between parsing a request head and emitting 'request'
 * (parserOnIncoming), at the end of the response (resOnFinish) and of the connection (abortIncoming), done by
 * the bridge itself with Node's own IncomingMessage and ServerResponse over a BridgeSocket. A socket whose
 * response finished cleanly is kept, as a kept-alive connection is, for a later request of the same handler.
 * Node's undocumented members are reached only through src/node-private/http.ts.
 */
import type { IncomingMessage } from 'node:http';
import { BridgeSocket } from './bridge-socket.js';
import { connectionReset, createRequest, createResponse, endRequest, onRequestRead, relayDrain, responseOnSocket } from '../../node-private/http.js';
import { dressRequest } from './request-line.js';
import type { ExchangeSide, RequestHead, Settings } from './settings.js';

/**
 * How many idle sockets a handler keeps, and how many requests one carries before it is closed (as a web
 * server closes a kept-alive connection after so many requests, so that listeners an app leaves on
 * `req.socket` do not pile up forever).
 */
export const MAX_POOLED_SOCKETS = 64;
export const MAX_REQUESTS_PER_SOCKET = 100;

const CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;

/** A socket for a new request: an idle one of the pool, else a new one. */
export function takeSocket(settings: Settings, https: boolean): BridgeSocket {
  const pool = settings.pools[https ? 1 : 0];
  let socket: BridgeSocket | undefined;
  do socket = pool.pop();
  // (An app may still destroy a pooled socket: through an old request it destroys, say.)
  while (socket !== undefined && socket.destroyed);
  if (socket !== undefined) return socket;
  socket = new BridgeSocket(https);
  // As Node's server, once per connection: a socket 'drain' is the response's 'drain' when a res.write()
  // returned false; socket errors (a request destroyed with an error destroys its socket with it) are dropped.
  // (A socket destroyed under a request in flight tells its exchange itself: Exchange.socketClosed.)
  socket.on('drain', relayDrain);
  socket.on('error', ignoreError);
  return socket;
}

/**
 * Gives back the socket of a finished exchange: into the pool when its response finished cleanly and nothing is
 * left on it (as a kept-alive connection waits for the next request), else closed.
 */
export function releaseSocket(settings: Settings, socket: BridgeSocket, clean: boolean): void {
  const pool = settings.pools[(socket as { encrypted?: boolean }).encrypted ? 1 : 0];
  const reusable =
    clean &&
    socket.writableLength === 0 &&
    !socket.writableEnded &&
    responseOnSocket(socket) === null &&
    socket.requests < MAX_REQUESTS_PER_SOCKET &&
    pool.length < MAX_POOLED_SOCKETS;
  if (reusable) {
    socket.detach();
    pool.push(socket);
  } else {
    socket.destroy();
  }
}

/** Builds the pair for an exchange and runs the handler on it. */
export function startObjects(exchange: ExchangeSide, head: RequestHead): void {
  const socket = exchange.socket;
  const environ = exchange.environ;
  const req = createRequest(socket, head.raw);
  dressRequest(req, environ, exchange.settings.urlMode);
  const expectContinue = req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && head.expect !== undefined && CONTINUE_RE.test(head.expect);
  const res = createResponse(req, socket, expectContinue);
  if (head.bodyMode !== 'none') onRequestRead(req, () => exchange.bodyWanted());
  exchange.run(req, res);
  // A bodyless request is complete as soon as its head is: Node ends it right after the handler returns.
  if (head.bodyMode === 'none' && !req.destroyed) endRequest(req);
}

/** Destroys a request still in flight as Node does when its connection goes away ('aborted', then 'close'). */
export function abortRequest(req: IncomingMessage): void {
  if (!req.destroyed) req.destroy(connectionReset());
}

function ignoreError(): void {}
