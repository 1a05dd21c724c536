/**
 * The "http-server" engine: each request gets a BridgeSocket handed to a private, never-listening
 * `http.Server` through its documented 'connection' event; the socket carries a request head serialized from
 * the environ and then the body; Node's parser creates the pair and emits 'request'. Only documented behaviour
 * of Node is used, at several times the objects engine's CPU cost.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { BridgeSocket } from './bridge-socket.js';
import { onFirstRequestRead } from '../../node-private/http.js';
import { dressRequest } from './request-line.js';
import { serializeRequestHead } from './request-head.js';
import type { ExchangeSide, RequestHead } from './settings.js';

const exchanges = new WeakMap<Duplex, ExchangeSide>();

/** The private http.Server: never listens (so none of its timers run), only parses what exchanges feed it. */
export function createHiddenServer(maxHeaderSize: number): Server {
  const server = createServer({ maxHeaderSize, requireHostHeader: false, requestTimeout: 0, joinDuplicateHeaders: false });
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const exchange = exchanges.get(req.socket as Duplex);
    if (!exchange) return;
    dressRequest(req, exchange.environ, exchange.settings.urlMode);
    // The body is pulled from tsgi.input only once the handler reads (Readable calls _read then): a body the
    // handler never reads is never requested, so `100 Continue` goes out only when it is wanted (SPEC 5.4).
    onFirstRequestRead(req, () => exchange.openBodyGate());
    exchange.run(req, res);
  };
  server.on('request', onRequest);
  // With these listeners Node neither answers `100 Continue` nor `417` itself: the handler decides, as it
  // would behind a proxy, and the tsgi server sends 100 when the body is first read.
  server.on('checkContinue', onRequest);
  server.on('checkExpectation', onRequest);
  server.on('clientError', (error: Error, socket: Duplex) => {
    const exchange = exchanges.get(socket);
    if (exchange) exchange.refuse(error);
    else socket.destroy();
  });
  return server;
}

/** A fresh socket for an exchange of this engine (one per request). */
export function socketFor(exchange: ExchangeSide, https: boolean): BridgeSocket {
  const socket = new BridgeSocket(https);
  exchanges.set(socket, exchange);
  return socket;
}

/** Hands the exchange's socket to the server and writes the request head into it: Node parses it. */
export function startThroughServer(exchange: ExchangeSide, server: Server, head: RequestHead): void {
  server.emit('connection', exchange.socket);
  exchange.socket.feed(Buffer.from(serializeRequestHead(exchange.environ.REQUEST_METHOD, head), 'latin1'));
}
