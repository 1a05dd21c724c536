import { MAX_UWSGI_VARS_BYTES, UwsgiRequestReader } from '../protocol/uwsgi/packet.js';
import { addRequestVariable } from '../protocol/request-variables.js';
import { formatCgiHead } from '../response/cgi-head.js';
import type { App } from '../types.js';
import { OneRequestServer, type OneRequestProtocol, type OneRequestServerOptions } from './one-request-server.js';

/** Options for createUwsgiServer; `maxHeaderBytes` caps the vars block (at most and by default 65535). */
export type UwsgiServerOptions = OneRequestServerOptions;

/** The status line uwsgi responses start with (E5: Apache mod_proxy_uwsgi requires one; nginx accepts it). */
const RESPONSE_PROTOCOL = { protocol: 'HTTP/1.1' };

/** uwsgi as a OneRequestProtocol: a modifier1=0 packet of vars in, an HTTP status line and headers out. */
export const UWSGI_PROTOCOL: OneRequestProtocol = {
  name: 'uwsgi',
  defaultMaxHeaderBytes: MAX_UWSGI_VARS_BYTES,
  maxHeaderBytesLimit: MAX_UWSGI_VARS_BYTES,
  createReader: (maxHeaderBytes) => new UwsgiRequestReader(maxHeaderBytes, addRequestVariable),
  formatHead: (code, reason, headers) => formatCgiHead(code, reason, headers, RESPONSE_PROTOCOL),
  cgiHead: { nph: RESPONSE_PROTOCOL.protocol },
};

/**
 * A uwsgi-protocol server for one tsgi app (the binary protocol of uWSGI, as nginx's uwsgi_pass and Apache's
 * mod_proxy_uwsgi speak it): a net.Server (TCP, unix socket or inherited socket; see listenOn) that reads one
 * request per connection — a packet {modifier1=0, datasize u16 LE, modifier2=0} with its vars block, then the
 * CONTENT_LENGTH body bytes ("" or absent: none), streamed to the app with backpressure — answers with an
 * HTTP status line (`HTTP/1.1 200 OK`), the headers and the body, and closes the connection.
 */
export class UwsgiServer extends OneRequestServer {
  constructor(app: App, options: UwsgiServerOptions = {}) {
    super(app, UWSGI_PROTOCOL, options);
  }
}

/**
 * Creates a uwsgi server for `app`. Other modifiers and malformed vars are logged and answered 400; a lost
 * connection fires `tsgi.signal` and runs the body's close(). The scheme comes from HTTPS, REQUEST_SCHEME or
 * UWSGI_SCHEME. Call `listen()` as on any net.Server, or use listenOn().
 */
export function createUwsgiServer(app: App, options: UwsgiServerOptions = {}): UwsgiServer {
  return new UwsgiServer(app, options);
}
