/**
 * The "minimal Node SCGI responder" and "minimal Node uwsgi responder" rows of bench/run.mjs: about the least
 * a correct-enough SCGI or uwsgi server in plain Node does for nginx (scgi_pass, uwsgi_pass), written for the
 * bench as the floor tsgi SCGI and uwsgi are compared to. "Hello, World!" at /, the 64 KiB body of
 * payload.mjs at /64k, text/plain with a Content-Length. One request per connection, as both protocols have.
 *
 * What it does:
 * - decodes the request head whatever its fragmentation across TCP reads (a head split over several reads,
 *   the head and body bytes in one read): SCGI's netstring (`LENGTH:` then name NUL value NUL pairs, then
 *   ","); uwsgi's 4-byte packet header (modifier1, datasize u16 LE, modifier2) then its vars (u16 LE sizes);
 * - decodes every variable into a fresh object per request, as latin1 strings;
 * - reads the CONTENT_LENGTH body bytes and drops them, then answers: the head (SCGI: a CGI `Status:` field;
 *   uwsgi: an `HTTP/1.1` status line, as tsgi sends) and the body in ONE socket write, with the FIN
 *   (socket.end(bytes)); the socket closes once nginx closes its side.
 *
 * What it does not do (tsgi does): no checks of the head (malformed input destroys the connection without an
 * answer; SCGI's CONTENT_LENGTH-first and SCGI=1 rules, uwsgi's modifiers are not checked), no limits on head
 * or body sizes, no timeouts, no backpressure, no lingering close, no request body for the app, no mount
 * (SCRIPT_NAME / PATH_INFO), no environ or app interface: the response is chosen from REQUEST_URI in the
 * handler below. Not for production.
 *
 *   node bench/apps/minimal-scgi-uwsgi.mjs scgi|uwsgi PORT    prints "listening on 127.0.0.1:PORT (pid N)"
 */
import { createServer } from 'node:net';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './payload.mjs';

const COLON = 0x3a;
const UWSGI_HEADER_BYTES = 4;

/**
 * SCGI: the head in `buffer` if it is complete, as { variables, end } (`end`: the offset after the ","),
 * else null. Throws on a malformed netstring.
 */
function decodeScgiHead(buffer) {
  const colon = buffer.indexOf(COLON);
  if (colon < 0) {
    if (buffer.length > 20) throw new Error('scgi: no netstring length');
    return null;
  }
  const length = Number(buffer.toString('latin1', 0, colon));
  if (!Number.isInteger(length)) throw new Error('scgi: bad netstring length');
  const start = colon + 1;
  const end = start + length + 1; // the payload and ","
  if (buffer.length < end) return null;
  const variables = {};
  let at = start;
  while (at < end - 1) {
    const nameEnd = buffer.indexOf(0, at);
    const valueEnd = buffer.indexOf(0, nameEnd + 1);
    if (nameEnd < 0 || valueEnd < 0 || valueEnd >= end) throw new Error('scgi: bad header pair');
    variables[buffer.toString('latin1', at, nameEnd)] = buffer.toString('latin1', nameEnd + 1, valueEnd);
    at = valueEnd + 1;
  }
  return { variables, end };
}

/** uwsgi: the head in `buffer` if it is complete, as { variables, end }, else null. Throws on a malformed block. */
function decodeUwsgiHead(buffer) {
  if (buffer.length < UWSGI_HEADER_BYTES) return null;
  const end = UWSGI_HEADER_BYTES + buffer.readUInt16LE(1);
  if (buffer.length < end) return null;
  const variables = {};
  let at = UWSGI_HEADER_BYTES;
  while (at < end) {
    const nameLength = buffer.readUInt16LE(at);
    const nameStart = at + 2;
    const valueLength = buffer.readUInt16LE(nameStart + nameLength);
    const valueStart = nameStart + nameLength + 2;
    if (valueStart + valueLength > end) throw new Error('uwsgi: bad var');
    variables[buffer.toString('latin1', nameStart, nameStart + nameLength)] = buffer.toString('latin1', valueStart, valueStart + valueLength);
    at = valueStart + valueLength;
  }
  return { variables, end };
}

/** The protocols: how a head is decoded and how a response's status is written. */
const PROTOCOLS = {
  scgi: { decodeHead: decodeScgiHead, status: 'Status: 200 OK' },
  uwsgi: { decodeHead: decodeUwsgiHead, status: 'HTTP/1.1 200 OK' },
};

/** The application: the whole response (head and body, one Buffer) for one request's variables. */
function respond(protocol, variables) {
  const body = variables.REQUEST_URI === BIG_PATH ? BIG_BODY : HELLO_BODY;
  const head = `${protocol.status}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`;
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.latin1Write(head, 0);
  body.copy(out, head.length);
  return out;
}

function serveConnection(protocol, socket) {
  let pending = null; // The bytes of an incomplete head.
  let variables = null; // The request's variables, once its head is complete.
  let remaining = 0; // Body bytes still to read (and drop).

  const answer = () => socket.end(respond(protocol, variables));

  socket.on('data', (chunk) => {
    if (variables !== null) {
      // Body bytes (or bytes past it): dropped.
      if (remaining > 0) {
        remaining -= chunk.length;
        if (remaining <= 0) answer();
      }
      return;
    }
    const buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
    let head;
    try {
      head = protocol.decodeHead(buffer);
    } catch {
      socket.destroy();
      return;
    }
    if (head === null) {
      pending = buffer;
      return;
    }
    pending = null;
    variables = head.variables;
    remaining = Number(variables.CONTENT_LENGTH || 0) - (buffer.length - head.end);
    if (remaining <= 0) answer();
  });
  socket.on('error', () => socket.destroy());
}

const protocol = PROTOCOLS[process.argv[2]];
if (!protocol) {
  process.stderr.write('usage: node bench/apps/minimal-scgi-uwsgi.mjs scgi|uwsgi PORT\n');
  process.exit(2);
}
const port = Number(process.argv[3] ?? 9003);
const server = createServer({ noDelay: true }, (socket) => serveConnection(protocol, socket));
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on 127.0.0.1:${port} (pid ${process.pid})\n`);
});
// A normal exit (so that --cpu-prof writes its profile).
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
