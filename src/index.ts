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
export { toNodeListener, buildVariables, HOP_BY_HOP_HEADERS, type NodeListener, type NodeListenerOptions } from './bridges/node-listener.js';
export { createHttpServer, type HttpServerOptions } from './servers/http.js';
export { serveHttp, SHUTDOWN_TIMEOUT_MS, type ServeHttpOptions, type HttpServing } from './servers/http-serve.js';
