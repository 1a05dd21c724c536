// First, before any other module of the package or of the script importing it: loading servers/httpoxy.js drops
// HTTP_PROXY (under CGI, the client's `Proxy:` header) from process.env (httpoxy). A re-export rather than a
// bare import, which bundlers drop in a package marked "sideEffects": false.
export { dropHttpoxy } from './servers/httpoxy.js';
export type * from './types.js';
export * from './errors.js';
export { createEnviron, schemeOf, type EnvironSource } from './environ/create-environ.js';
export { createInput, type InputSource } from './environ/input.js';
export {
  bytesToByteString,
  byteStringToBytes,
  decodeLatin1Utf8,
  encodeUtf8Latin1,
  percentDecodeToByteString,
  decodeProcessEnv,
} from './environ/byte-policy.js';
export { runApp, sendErrorPage, chunkToBytes, type ResponseSink, type RunResult, type RunOptions } from './response/run-app.js';
export { formatCgiHead } from './response/cgi-head.js';
export { runWithCgi, type CgiIo, type CgiOptions } from './servers/cgi.js';
export * from './middleware/index.js';
export * from './helpers/index.js';
export { toNodeListener, type NodeListener, type NodeListenerOptions } from './bridges/node-listener.js';
export { buildVariables } from './environ/node-request-variables.js';
// The fields a response may not carry: every server and bridge drops them, the validator refuses them (F14).
export { HOP_BY_HOP_HEADERS } from './response/hop-by-hop.js';
export { fromNodeHandler, environOf, DEFAULT_MAX_HEADER_BYTES, type NodeHandler, type NodeHandlerOptions, type NodeHandlerEngine } from './bridges/node-handler.js';
export { fromFetch, toFetch, FETCH_RESPONSE_HIGH_WATER_BYTES, type FetchHandler, type FromFetchOptions, type ToFetchOptions } from './bridges/fetch.js';
export { createHttpServer, type HttpServerOptions } from './servers/http.js';
export { serveHttp, SHUTDOWN_TIMEOUT_MS, type ServeHttpOptions, type HttpServing } from './servers/http-serve.js';
// The SCGI and uwsgi servers, and the one-request-per-connection server both are built on (README "As an SCGI or
// uwsgi server").
export { createScgiServer, ScgiServer, SCGI_PROTOCOL, type ScgiServerOptions } from './servers/scgi.js';
export { createUwsgiServer, UwsgiServer, UWSGI_PROTOCOL, type UwsgiServerOptions } from './servers/uwsgi.js';
export { OneRequestServer, LINGER_MS, type OneRequestServerOptions, type OneRequestProtocol, type OneRequestHead } from './servers/one-request-server.js';
export { cgiBin, type CgiBinOptions } from './host/cgi-bin.js';
// The FastCGI server, and the listener of every gateway server (README "As a FastCGI server").
export { createFastCgiServer, FastCgiServer, type FastCgiServerOptions } from './servers/fastcgi.js';
export { listenOn, parseListenTarget, type ListenTarget, type UnixSocketOptions } from './servers/listen.js';
// The defaults of cgiBin's options that docs/SPEC.md 9.2 names.
export { DEFAULT_MAX_REDIRECTS } from './host/cgi-bin.js';
export { DEFAULT_TIMEOUT_MS, MAX_UNSIZED_BODY_BYTES } from './host/run-cgi.js';
export { MAX_HEAD_BYTES } from './response/cgi-head-parse.js';
