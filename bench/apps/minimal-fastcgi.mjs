/**
 * The "minimal Node FastCGI responder" row of bench/run.mjs: about the least a correct-enough FastCGI
 * responder in plain Node does for nginx, written for the bench as the floor tsgi FastCGI is compared to.
 * "Hello, World!" at /, the 64 KiB body of payload.mjs at /64k, text/plain with a Content-Length.
 *
 * What it does:
 * - decodes FastCGI records whatever their fragmentation across TCP reads (a record split over several
 *   reads, several records in one read; padding skipped);
 * - decodes every FCGI_PARAMS name-value pair (1- and 4-byte lengths, the stream possibly split over
 *   several PARAMS records) into a fresh object per request, as latin1 strings;
 * - answers once the request's empty FCGI_STDIN record arrived (the body, if any, is read and dropped):
 *   the CGI head and body in FCGI_STDOUT records (split at 65,535 bytes), the empty FCGI_STDOUT and
 *   FCGI_END_REQUEST, all in ONE socket write per response;
 * - keeps the connection open when FCGI_KEEP_CONN is set (nginx's fastcgi_keep_conn on), closes it after
 *   the response otherwise.
 *
 * What it does not do (tsgi does): no multiplexing (one request at a time per connection, which is all
 * nginx sends), no FCGI_STDERR, no FCGI_ABORT_REQUEST handling (ignored), no FCGI_GET_VALUES answer, no
 * FCGI_UNKNOWN_TYPE, no roles but the responder, no limits on params or body sizes, no timeouts, no
 * backpressure, no request body for the app, no environ or app interface: the response is chosen from
 * REQUEST_URI in the handler below. Not for production.
 *
 *   node bench/apps/minimal-fastcgi.mjs PORT       prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createServer } from 'node:net';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';
import { BEGIN_REQUEST, decodeParams, END_REQUEST, KEEP_CONN, MAX_CONTENT, PARAMS, STDIN, STDOUT, VERSION } from './floor-fastcgi.mjs';

/** The whole response of one request as one Buffer: FCGI_STDOUT records, the empty one, FCGI_END_REQUEST. */
function encodeResponse(requestId, head, body) {
  const payload = head.length + body.length;
  const records = Math.max(1, Math.ceil(payload / MAX_CONTENT));
  const out = Buffer.allocUnsafe(payload + records * 8 + 8 + 16);
  let at = 0;
  let sent = 0;
  const header = (type, contentLength) => {
    out[at] = VERSION;
    out[at + 1] = type;
    out.writeUInt16BE(requestId, at + 2);
    out.writeUInt16BE(contentLength, at + 4);
    out[at + 6] = 0;
    out[at + 7] = 0;
    at += 8;
  };
  while (sent < payload) {
    const size = Math.min(MAX_CONTENT, payload - sent);
    header(STDOUT, size);
    // Copy [sent, sent + size) of head + body.
    let from = sent;
    const end = sent + size;
    if (from < head.length) {
      const upto = Math.min(end, head.length);
      head.copy(out, at, from, upto);
      at += upto - from;
      from = upto;
    }
    if (from < end) {
      body.copy(out, at, from - head.length, end - head.length);
      at += end - from;
    }
    sent = end;
  }
  header(STDOUT, 0);
  header(END_REQUEST, 8);
  out.fill(0, at, at + 8); // appStatus 0, FCGI_REQUEST_COMPLETE, reserved
  at += 8;
  return out.subarray(0, at);
}

/** The application: the response for one request's params. */
function handle(params) {
  const body = params.REQUEST_URI === BIG_PATH ? BIG_BODY : HELLO_BODY;
  const head = Buffer.from(`Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1');
  return { head, body };
}

function serveConnection(socket) {
  socket.setNoDelay(true);
  let pending = null; // Bytes of an incomplete record.
  let requestId = 0;
  let keepConn = false;
  let paramChunks = [];
  let params = null;

  const onRecord = (type, id, content) => {
    if (type === BEGIN_REQUEST) {
      requestId = id;
      keepConn = (content[2] & KEEP_CONN) !== 0;
      paramChunks = [];
      params = null;
    } else if (id !== requestId) {
      // Not the current request (no multiplexing): ignored.
    } else if (type === PARAMS) {
      if (content.length > 0) paramChunks.push(Buffer.from(content)); // copied: the read buffer is reused below
      else params = decodeParams(paramChunks.length === 1 ? paramChunks[0] : Buffer.concat(paramChunks));
    } else if (type === STDIN && content.length === 0 && params) {
      const { head, body } = handle(params);
      socket.write(encodeResponse(requestId, head, body));
      requestId = 0;
      params = null;
      paramChunks = [];
      if (!keepConn) socket.end();
    }
    // FCGI_STDIN data, FCGI_ABORT_REQUEST and anything else: ignored.
  };

  socket.on('data', (chunk) => {
    let buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (buffer.length - at >= 8) {
      const contentLength = buffer.readUInt16BE(at + 4);
      const total = 8 + contentLength + buffer[at + 6];
      if (buffer.length - at < total) break;
      onRecord(buffer[at + 1], buffer.readUInt16BE(at + 2), buffer.subarray(at + 8, at + 8 + contentLength));
      at += total;
    }
    pending = at < buffer.length ? Buffer.from(buffer.subarray(at)) : null;
    buffer = null;
  });
  socket.on('error', () => socket.destroy());
}

const port = Number(process.argv[2] ?? 9002);
const server = createServer(serveConnection);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile); nginx keeps its connections open, so no close().
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
