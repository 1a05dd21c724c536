/**
 * What every part of fromNodeHandler shares: the settings of one bridged handler, and the request head as the
 * environ describes it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Environ } from '../../types.js';
import type { BridgeSocket } from './bridge-socket.js';

/** A Node request handler: what `http.createServer()` takes, an Express app, Koa's `app.callback()`... */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** One bridged handler's settings (fromNodeHandler's options, resolved). */
export interface Settings {
  handler: NodeHandler;
  urlMode: 'path-info' | 'request-uri';
  maxHeaderSize: number;
  /** True for the objects engine, false for the http-server one. */
  objects: boolean;
  /** Objects engine: idle sockets of finished requests, [plain, https], reused as kept-alive connections are. */
  pools: [BridgeSocket[], BridgeSocket[]];
}

/** How the request body is framed: none, a Content-Length, or chunks of unknown total length. */
export type BodyMode = 'none' | 'length' | 'chunked';

/** The request head as the environ describes it: raw header list (name, value, ...) and how the body is framed. */
export interface RequestHead {
  raw: string[];
  bodyMode: BodyMode;
  /** Its size as HTTP/1.1 text, for maxHeaderSize. */
  bytes: number;
  /** The `Expect` header's value, when the list has one. */
  expect: string | undefined;
}

/** Where a request built by this bridge keeps its environ (a symbol: invisible to apps, kept by prototype swaps). */
export const ENVIRON = Symbol('tsgi.environ');

/** What the engines and the body pump use of an exchange (exchange.ts implements it). */
export interface ExchangeSide {
  readonly environ: Environ;
  readonly settings: Settings;
  readonly socket: BridgeSocket;
  /** The request, once the pair exists. */
  readonly req: IncomingMessage | null;
  readonly bodyMode: BodyMode;
  /** Runs the handler on the pair. */
  run(req: IncomingMessage, res: ServerResponse): void;
  /** The handler read the body for the first time (http-server engine). */
  openBodyGate(): void;
  /** Objects engine: the handler reads the body. */
  bodyWanted(): void;
  /** The request failed before the handler could answer (a parser refusal, a broken body). */
  refuse(error: Error): void;
}
