import { DEFAULT_MAX_SCGI_HEADER_BYTES, ScgiHeaderReader } from '../protocol/scgi/netstring.js';
import { addRequestVariable } from '../protocol/request-variables.js';
import { formatCgiHead } from '../response/cgi-head.js';
import type { App } from '../types.js';
import { OneRequestServer, type OneRequestProtocol, type OneRequestServerOptions } from './one-request-server.js';

/** Options for createScgiServer; `maxHeaderBytes` caps the header netstring (default DEFAULT_MAX_SCGI_HEADER_BYTES). */
export type ScgiServerOptions = OneRequestServerOptions;

/** SCGI as a OneRequestProtocol: a netstring of headers in, a CGI response (`Status:` field) out (D5). */
export const SCGI_PROTOCOL: OneRequestProtocol = {
  name: 'scgi',
  defaultMaxHeaderBytes: DEFAULT_MAX_SCGI_HEADER_BYTES,
  createReader: (maxHeaderBytes) => new ScgiHeaderReader(maxHeaderBytes, addRequestVariable),
  formatHead: (code, reason, headers) => formatCgiHead(code, reason, headers),
  cgiHead: {},
};

/**
 * An SCGI server for one tsgi app (the SCGI protocol, Neil Schemenauer 2006): a net.Server (listen on TCP, a
 * unix socket or an inherited socket; see listenOn) that reads one request per connection — the header
 * netstring (CONTENT_LENGTH first, SCGI=1), then exactly CONTENT_LENGTH body bytes, streamed to the app with
 * backpressure — answers CGI-style (`Status: 200 OK`, the headers, the body) and closes the connection.
 */
export class ScgiServer extends OneRequestServer {
  constructor(app: App, options: ScgiServerOptions = {}) {
    super(app, SCGI_PROTOCOL, options);
  }
}

/**
 * Creates an SCGI server for `app`. A malformed header is logged and answered 400; a lost connection fires
 * `tsgi.signal` and runs the body's close(). nginx sends no SCRIPT_NAME/PATH_INFO over SCGI: without a
 * `mount`, PATH_INFO is then the whole request path (conformance D6). Call `listen()` as on any net.Server, or
 * use listenOn().
 */
export function createScgiServer(app: App, options: ScgiServerOptions = {}): ScgiServer {
  return new ScgiServer(app, options);
}
