/**
 * The "bare Node spawn" floor of bench/run.mjs's cgi-bin rows (cgi-node-floor-N, issue 12): about the least any
 * Node FastCGI responder that runs a CGI script per request can do, written for the bench so that tsgi's
 * `serve --cgi-bin` can be compared with what Node's process spawn (libuv forking the whole Node process for
 * every child) costs by itself. One process serves one port; N instances are N processes on N ports, balanced
 * by nginx (as tsgi's N workers).
 *
 * What it does:
 * - decodes FastCGI records whatever their fragmentation across TCP reads (padding skipped), as
 *   minimal-fastcgi.mjs does;
 * - once a request's empty FCGI_STDIN record arrived (after its params), spawns THE script given on the command
 *   line, `child_process.spawn(script, [], { env, stdio: ['ignore', 'pipe', 'ignore'] })`, with one environment
 *   object built at start: GATEWAY_INTERFACE, REQUEST_METHOD GET, SCRIPT_NAME (/cgi-bin/ and the script's file
 *   name), PATH_INFO and QUERY_STRING empty, SERVER_PROTOCOL HTTP/1.1, and PATH;
 * - copies the script's stdout as it comes into FCGI_STDOUT records (one socket write per chunk, split at
 *   65,535 bytes), the script's CGI head included as it is (nginx parses it);
 * - when the script's stdout ends: the empty FCGI_STDOUT and FCGI_END_REQUEST in one write (also when the spawn
 *   fails, out of file descriptors included: nginx then answers 502); keeps the connection for the next request
 *   when FCGI_KEEP_CONN is set, closes it otherwise;
 * - exits with status 1 and one line on stderr when it cannot listen (the port in use).
 *
 * Its FastCGI output is framed whatever the timing: one script per connection at a time (nginx sends the next
 * request only after END_REQUEST), each stdout chunk with its header in one write, END_REQUEST last. (A bench
 * run's "upstream sent unsupported FastCGI protocol version: 72", twice, is what nginx logs when an instance's
 * port is one of nginx's own: the instance cannot listen, nginx sends FastCGI to its own HTTP server, which
 * answers "HTTP/1.1 400", then disables that peer; bench/lib/processes.mjs findFreePort can hand one port out
 * twice in a run.)
 *
 * What it does not do (tsgi does): no FCGI_PARAMS decoding at all (the request's URL, method, query and headers
 * never reach the script: every request runs the same script with the same environment), no script resolution
 * or checks, no request body (the script's stdin is /dev/null), no parsing or checking of the script's CGI head
 * (no Status, Location or nph- handling), no stderr (discarded), no timeouts, no process groups, no killing of
 * scripts, no limits, no backpressure (a slow client lets the output pile up in memory), no multiplexing, no
 * FCGI_ABORT_REQUEST, FCGI_GET_VALUES or FCGI_UNKNOWN_TYPE, no roles but the responder, no exit status of the
 * script. Not for production.
 *
 *   node bench/apps/minimal-cgi-spawn.mjs PORT SCRIPT     prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { basename, resolve } from 'node:path';
import { BEGIN_REQUEST, END_REQUEST, KEEP_CONN, MAX_CONTENT, PARAMS, recordHeader, STDIN, STDOUT } from './floor-fastcgi.mjs';

const [portArgument, scriptArgument] = process.argv.slice(2);
if (!portArgument || !scriptArgument) {
  process.stderr.write('usage: node bench/apps/minimal-cgi-spawn.mjs PORT SCRIPT\n');
  process.exit(2);
}
const port = Number(portArgument);
const scriptPath = resolve(scriptArgument);

/** The one environment of every script run: the minimum of RFC 3875 for a GET without PATH_INFO, and PATH. */
const scriptEnv = {
  GATEWAY_INTERFACE: 'CGI/1.1',
  REQUEST_METHOD: 'GET',
  SCRIPT_NAME: `/cgi-bin/${basename(scriptPath)}`,
  PATH_INFO: '',
  QUERY_STRING: '',
  SERVER_PROTOCOL: 'HTTP/1.1',
  PATH: process.env.PATH ?? '/usr/bin:/bin',
};

/** `chunk` of the script's stdout as FCGI_STDOUT records, one Buffer. */
function stdoutRecords(requestId, chunk) {
  if (chunk.length <= MAX_CONTENT) return Buffer.concat([recordHeader(STDOUT, requestId, chunk.length), chunk]);
  const parts = [];
  for (let at = 0; at < chunk.length; at += MAX_CONTENT) {
    const piece = chunk.subarray(at, Math.min(chunk.length, at + MAX_CONTENT));
    parts.push(recordHeader(STDOUT, requestId, piece.length), piece);
  }
  return Buffer.concat(parts);
}

/** The empty FCGI_STDOUT and FCGI_END_REQUEST (appStatus 0, FCGI_REQUEST_COMPLETE). */
function endRecords(requestId) {
  return Buffer.concat([recordHeader(STDOUT, requestId, 0), recordHeader(END_REQUEST, requestId, 8), Buffer.alloc(8)]);
}

/** Runs the script for request `requestId`, its stdout to `socket`; `done()` once the request is ended. */
function runScript(socket, requestId, done) {
  const child = spawn(scriptPath, [], { env: scriptEnv, stdio: ['ignore', 'pipe', 'ignore'] });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    if (!socket.destroyed) socket.write(endRecords(requestId));
    done();
  };
  // Spawn failed (ENOENT, EACCES, EAGAIN, EMFILE, ENFILE): 'error' on the next tick, an empty response, nginx
  // answers 502. On EMFILE and ENFILE Node sets up no stdio at all: child.stdout is undefined.
  child.on('error', end);
  child.stdout?.on('data', (chunk) => {
    if (!socket.destroyed) socket.write(stdoutRecords(requestId, chunk));
  });
  child.stdout?.on('end', end);
}

function serveConnection(socket) {
  socket.setNoDelay(true);
  let pending = null; // Bytes of an incomplete record.
  let requestId = 0;
  let keepConn = false;
  let paramsDone = false;

  const onRecord = (type, id, content) => {
    if (type === BEGIN_REQUEST) {
      requestId = id;
      keepConn = (content[2] & KEEP_CONN) !== 0;
      paramsDone = false;
    } else if (id !== requestId) {
      // Not the current request (no multiplexing): ignored.
    } else if (type === PARAMS) {
      if (content.length === 0) paramsDone = true; // The params themselves are never decoded.
    } else if (type === STDIN && content.length === 0 && paramsDone) {
      const keep = keepConn;
      runScript(socket, requestId, () => {
        if (!keep) socket.end();
      });
      requestId = 0;
      paramsDone = false;
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

const server = createServer(serveConnection);
server.on('error', (error) => {
  // A port in use (EADDRINUSE) and the like: said and exit 1, not a stack trace.
  process.stderr.write(`minimal-cgi-spawn: cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile); nginx keeps its connections open, so no close().
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
