/**
 * The floor of the streaming figures of bench/run.mjs (issue 11, goal 4): about the least a correct FastCGI
 * responder in plain Node does to serve bench/apps/stream.ts's two routes through nginx with buffering off,
 * in one process. Its peak RSS over the same 1 GiB up and down is what Node itself costs that transfer; tsgi's
 * `serve` tree against it is what tsgi adds.
 *   POST .../upload              hashes the body as it arrives, answers {"bytes": N, "sha256": "..."} as JSON
 *   GET  .../download?bytes=N    answers N bytes of generatePattern (bench/apps/pattern.mjs), with a Content-Length
 *
 * What it does:
 * - decodes FastCGI records whatever their fragmentation across TCP reads, as a state machine over each read
 *   (a header split over reads is gathered in 8 bytes; content is handled piece by piece as it arrives, never
 *   gathered; padding skipped);
 * - decodes every FCGI_PARAMS name-value pair (1- and 4-byte lengths, the stream possibly split over several
 *   PARAMS records, copied since each piece is a view of a read) into a fresh object per request, as latin1;
 * - hashes each piece of FCGI_STDIN content where it lies in the socket read (a view: nothing copied, nothing
 *   kept), so reading never waits and needs no pausing; answers on the empty FCGI_STDIN record;
 * - writes the download as FCGI_STDOUT records (split at 65,535 bytes: a 64 KiB chunk is two records), header
 *   and content in one corked write, and waits for 'drain' whenever socket.write returns false (backpressure);
 *   stops generating when the socket goes;
 * - ends each response with the empty FCGI_STDOUT and FCGI_END_REQUEST; keeps the connection open when
 *   FCGI_KEEP_CONN is set (nginx's fastcgi_keep_conn on), closes it after the response otherwise.
 *
 * What it does not do (tsgi does): no multiplexing (one request at a time per connection, which is all nginx
 * sends), no FCGI_STDERR, no FCGI_ABORT_REQUEST handling (ignored; a gone socket stops a download), no
 * FCGI_GET_VALUES answer, no FCGI_UNKNOWN_TYPE, no roles but the responder, no limits on params size, no
 * timeouts, no environ, no app interface and no input stream for an app (the two routes are handled inline,
 * chosen from DOCUMENT_URI), no early answer before the body ended. Not for production.
 *
 *   node bench/apps/minimal-fastcgi-stream.mjs PORT       prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { generatePattern } from './pattern.mjs';
import { BEGIN_REQUEST, decodeParams, END_REQUEST, KEEP_CONN, MAX_CONTENT, PARAMS, recordHeader, STDIN, STDOUT } from './floor-fastcgi.mjs';

const HEADER_BYTES = 8;
const MAX_DOWNLOAD_BYTES = 2 ** 40;

/** Writes `bytes` as FCGI_STDOUT records of at most 65,535 bytes, corked into one write; false when the socket is full. */
function writeStdout(socket, requestId, bytes) {
  socket.cork();
  let ok = true;
  for (let at = 0; at < bytes.length; at += MAX_CONTENT) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + MAX_CONTENT));
    ok = socket.write(recordHeader(STDOUT, requestId, piece.length)) && ok;
    ok = socket.write(piece) && ok;
  }
  socket.uncork();
  return ok;
}

/** The empty FCGI_STDOUT and FCGI_END_REQUEST (appStatus 0, FCGI_REQUEST_COMPLETE); closes unless kept alive. */
function endResponse(socket, requestId, keepConn) {
  const end = Buffer.alloc(HEADER_BYTES * 3);
  recordHeader(STDOUT, requestId, 0).copy(end, 0);
  recordHeader(END_REQUEST, requestId, 8).copy(end, HEADER_BYTES);
  socket.write(end);
  if (!keepConn) socket.end();
}

const cgiHead = (status, type, extra = '') => Buffer.from(`Status: ${status}\r\nContent-Type: ${type}\r\n${extra}\r\n`, 'latin1');

/** Sends a whole small response. */
function respond(socket, requestId, keepConn, status, type, body) {
  writeStdout(socket, requestId, Buffer.concat([cgiHead(status, type, `Content-Length: ${Buffer.byteLength(body)}\r\n`), Buffer.from(body)]));
  endResponse(socket, requestId, keepConn);
}

/** Resolves on the socket's next 'drain' or its 'close', whichever comes first; leaves no listener behind. */
function drainedOrClosed(socket) {
  return new Promise((resolveWait) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolveWait();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** Streams `total` pattern bytes, waiting for 'drain' when the socket is full; stops if the socket goes. */
async function sendDownload(socket, requestId, keepConn, total) {
  writeStdout(socket, requestId, cgiHead('200 OK', 'application/octet-stream', `Content-Length: ${total}\r\n`));
  for (const chunk of generatePattern(total)) {
    if (socket.destroyed) return;
    if (!writeStdout(socket, requestId, chunk)) await drainedOrClosed(socket);
  }
  if (!socket.destroyed) endResponse(socket, requestId, keepConn);
}

function serveConnection(socket) {
  socket.setNoDelay(true);
  // Decoder state: the header being gathered (possibly over several reads), then the content and padding left.
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  let headerHave = 0;
  let type = 0;
  let recordId = 0;
  let contentLength = 0;
  let contentLeft = 0;
  let paddingLeft = 0;
  // The current request.
  let requestId = 0;
  let keepConn = false;
  let pieces = []; // Copies of the pieces of FCGI_BEGIN_REQUEST or FCGI_PARAMS content so far.
  let params = null;
  let upload = null; // { hash, bytes } for a POST .../upload

  const gathered = () => {
    const whole = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
    pieces = [];
    return whole;
  };

  const onRequestReady = () => {
    const id = requestId;
    const path = params.DOCUMENT_URI ?? '';
    requestId = 0;
    if (upload) {
      const body = `${JSON.stringify({ bytes: upload.bytes, sha256: upload.hash.digest('hex') })}\n`;
      upload = null;
      respond(socket, id, keepConn, '200 OK', 'application/json', body);
    } else if (path.endsWith('/download') && params.REQUEST_METHOD === 'GET') {
      const wanted = /(?:^|&)bytes=([0-9]{1,15})(?:&|$)/.exec(params.QUERY_STRING ?? '')?.[1];
      const total = wanted === undefined ? Number.NaN : Number(wanted);
      if (!Number.isSafeInteger(total) || total > MAX_DOWNLOAD_BYTES) {
        respond(socket, id, keepConn, '400 Bad Request', 'text/plain', 'stream: expected ?bytes=N\n');
      } else {
        // nginx sends nothing more on this connection until the response ends; pausing keeps it that way.
        socket.pause();
        sendDownload(socket, id, keepConn, total).then(
          () => socket.destroyed || socket.resume(),
          () => socket.destroy(),
        );
      }
    } else {
      respond(socket, id, keepConn, '404 Not Found', 'text/plain', `stream: no route for ${params.REQUEST_METHOD} ${path}\n`);
    }
    params = null;
  };

  /** A piece of the current record's content, a view of the socket read. */
  const onContent = (piece) => {
    if (type === BEGIN_REQUEST || (type === PARAMS && recordId === requestId)) {
      pieces.push(Buffer.from(piece)); // Copied: a view would keep its whole read alive.
    } else if (type === STDIN && recordId === requestId && upload) {
      upload.hash.update(piece); // Hashed where it lies: nothing copied, nothing kept.
      upload.bytes += piece.length;
    }
    // STDIN of a request that is not an upload (dropped), other ids, FCGI_ABORT_REQUEST, anything else: ignored.
  };

  /** The current record's content is complete. */
  const onRecordEnd = () => {
    if (type === BEGIN_REQUEST) {
      const body = gathered();
      requestId = recordId;
      keepConn = (body[2] & KEEP_CONN) !== 0;
      params = null;
      upload = null;
    } else if (recordId !== requestId || requestId === 0 || contentLength !== 0) {
      // Only the empty PARAMS and the empty STDIN (the ends of their streams) do anything.
    } else if (type === PARAMS) {
      params = decodeParams(gathered());
      if ((params.DOCUMENT_URI ?? '').endsWith('/upload') && params.REQUEST_METHOD === 'POST') upload = { hash: createHash('sha256'), bytes: 0 };
    } else if (type === STDIN && params) {
      onRequestReady();
    }
  };

  socket.on('data', (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (headerHave < HEADER_BYTES) {
        const take = Math.min(HEADER_BYTES - headerHave, chunk.length - at);
        chunk.copy(header, headerHave, at, at + take);
        headerHave += take;
        at += take;
        if (headerHave < HEADER_BYTES) break;
        type = header[1];
        recordId = header.readUInt16BE(2);
        contentLength = contentLeft = header.readUInt16BE(4);
        paddingLeft = header[6];
        if (contentLeft === 0) onRecordEnd();
      } else if (contentLeft > 0) {
        const take = Math.min(contentLeft, chunk.length - at);
        onContent(chunk.subarray(at, at + take));
        contentLeft -= take;
        at += take;
        if (contentLeft === 0) onRecordEnd();
      } else {
        const skip = Math.min(paddingLeft, chunk.length - at);
        paddingLeft -= skip;
        at += skip;
      }
      if (headerHave === HEADER_BYTES && contentLeft === 0 && paddingLeft === 0) headerHave = 0;
    }
  });
  socket.on('error', () => socket.destroy());
}

const port = Number(process.argv[2] ?? 9003);
const server = createServer(serveConnection);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile); nginx keeps its connections open, so no close().
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
