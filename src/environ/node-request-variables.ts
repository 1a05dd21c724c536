/**
 * The CGI variables of a request Node's HTTP parser read (toNodeListener's transport side, as
 * protocol/request-variables.ts is the FastCGI, SCGI and uwsgi servers'). What it refuses, it refuses with the
 * status the client gets (505, 400, 501, 404 outside the mount).
 *
 * Paths. PATH_INFO is the request path percent-decoded into a byte string (one char per byte), as every CGI
 * server does: "%C3%A9" becomes "\u00c3\u00a9", and "%2F" becomes "/" (it can't be told apart from a real slash
 * afterwards; REQUEST_URI keeps the raw, still-encoded form for apps that care). Dot segments are passed as they
 * are: PATH_INFO is not a safe file system path.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { RequestError } from '../errors.js';
import { readVersion } from '../version.js';
import { percentDecodeToByteString } from './byte-policy.js';
import { createVariables } from './create-environ.js';
import { addHeaderVariable, headerVariableName } from './header-variables.js';
import { HOST_RE, hostWithoutPort } from './host.js';
import { isUnderMount } from './mount.js';

/** An absolute-form request target ("http://host/path"). */
const ABSOLUTE_FORM_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * Builds the CGI variables (RFC 3875 §4.1) of a Node request, as byte strings. Node decodes the request line
 * and header values as latin-1, so they are byte strings already.
 * - SCRIPT_NAME is the mount prefix; PATH_INFO the percent-decoded rest of the path; QUERY_STRING and
 *   REQUEST_URI are raw. An absolute-form target ("GET http://host/path") must name the Host it was sent with.
 * - SERVER_NAME comes from Host (else the local address), SERVER_PORT is the local port, REMOTE_ADDR has no
 *   port and no "::ffff:" prefix for IPv4 clients, HTTPS is "on" over TLS.
 * - One HTTP_* per request header name; repeated headers are joined with ", " (Cookie with "; ", RFC 6265
 *   §5.4). Names holding anything but letters, digits and "-" are dropped, so `X-Forwarded_For` can't pose as
 *   `X-Forwarded-For` (field-notes T32). Content-Type and Content-Length become CONTENT_TYPE and CONTENT_LENGTH
 *   only; `Proxy:` is never passed (httpoxy).
 * Throws RequestError: 505 for an HTTP major version other than 1 ("HTTP/2.0", "GET /"); 400 for zero
 * (HTTP/1.1) or several Host headers, a Host that isn't `host[:port]` (T33: "a.com@evil.com"), an
 * absolute-form target naming another host, a Transfer-Encoding whose last coding isn't chunked; 501 for any
 * coding besides chunked; 404 for a path outside the mount.
 */
export function buildVariables(req: IncomingMessage, scriptName = ''): Record<string, string | undefined> {
  // RFC 9110 §15.6.6: "HTTP/2.0" or an HTTP/0.9-style line ("GET /") is not a version this server speaks.
  if (req.httpVersionMajor !== 1) {
    throw new RequestError(`http: HTTP version not supported (HTTP/${req.httpVersion})`, 505);
  }
  const raw = req.rawHeaders;
  // The same variables as headersToVariables(pairs, { passAuthorization: true }), without the pairs.
  const variables = createVariables();
  let hosts = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = headerVariableName(raw[i] as string, true);
    if (key === null) continue;
    if (key === 'HTTP_HOST') hosts++;
    addHeaderVariable(variables, key, raw[i + 1] as string);
  }
  // RFC 9112 §3.2: a request with no Host (HTTP/1.1) or several Host fields gets a 400.
  if (hosts > 1) throw new RequestError(`http: more than one Host header (${hosts})`);
  if (hosts === 0 && req.httpVersion === '1.1') throw new RequestError('http: HTTP/1.1 request without Host (0)');
  let host = variables.HTTP_HOST;
  // Clients send the same Host over and over: the last one that passed is not checked again.
  if (host !== undefined && host !== '' && host !== lastGoodHost) {
    if (!HOST_RE.test(host)) throw new RequestError(`http: bad Host header (${JSON.stringify(host).slice(0, 80)})`);
    lastGoodHost = host;
    lastGoodHostName = hostWithoutPort(host);
  }

  let target = req.url ?? '/';
  // An origin-form target ("/path") is the rule; only another one can be absolute-form.
  if (target.charCodeAt(0) !== 0x2f && ABSOLUTE_FORM_RE.test(target)) {
    const afterScheme = target.indexOf('//') + 2;
    let end = target.slice(afterScheme).search(/[/?#]/);
    end = end < 0 ? target.length : afterScheme + end;
    const authority = target.slice(afterScheme, end);
    // RFC 9112 §3.2.2 lets the target's authority override Host; refusing a mismatch keeps one answer (T33).
    if (!HOST_RE.test(authority) || (host !== undefined && authority.toLowerCase() !== host.toLowerCase())) {
      throw new RequestError(`http: request target names another host than Host (${JSON.stringify(target).slice(0, 80)})`);
    }
    if (host === undefined) variables.HTTP_HOST = host = authority;
    target = target.slice(end);
    if (!target.startsWith('/')) target = `/${target}`;
  }

  const question = target.indexOf('?');
  const rawPath = question < 0 ? target : target.slice(0, question);
  // OPTIONS * names the server, not a resource: it has no path.
  const path = rawPath === '*' ? '' : percentDecodeToByteString(rawPath);
  let pathInfo = path;
  if (scriptName !== '') {
    if (!isUnderMount(path, scriptName)) {
      throw new RequestError(`http: path is outside the mount ${scriptName} (${JSON.stringify(path).slice(0, 80)})`, 404);
    }
    pathInfo = path.slice(scriptName.length);
  }

  const transferEncoding = req.headers['transfer-encoding'];
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim()).filter((c) => c !== '');
    // RFC 9112 §6.3: without chunked last the body length is unknowable (400); other codings are not ours (501).
    if (codings.at(-1) !== 'chunked') {
      throw new RequestError(`http: Transfer-Encoding must end with chunked (${JSON.stringify(transferEncoding)})`);
    }
    if (codings.length > 1) {
      throw new RequestError(`http: unsupported Transfer-Encoding (${JSON.stringify(transferEncoding)})`, 501);
    }
  }

  const connection = connectionOf(req.socket);
  variables.REQUEST_METHOD = req.method ?? 'GET';
  variables.SCRIPT_NAME = scriptName;
  variables.PATH_INFO = pathInfo;
  variables.QUERY_STRING = question < 0 ? '' : target.slice(question + 1);
  variables.REQUEST_URI = target;
  variables.SERVER_NAME = (host === lastGoodHost ? lastGoodHostName : hostWithoutPort(host)) ?? connection.serverName;
  // Keys whose value is unknown are left out (not set to undefined): the environ has no such key.
  if (connection.serverPort !== undefined) variables.SERVER_PORT = connection.serverPort;
  variables.SERVER_PROTOCOL = req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`;
  variables.SERVER_SOFTWARE = (serverSoftware ??= `tsgi/${readVersion()}`);
  variables.GATEWAY_INTERFACE = 'CGI/1.1';
  if (connection.remoteAddress !== undefined) variables.REMOTE_ADDR = connection.remoteAddress;
  if (connection.remotePort !== undefined) variables.REMOTE_PORT = connection.remotePort;
  if (connection.https) variables.HTTPS = 'on';
  return variables;
}

/** The last Host header that passed HOST_RE, and its name without the port (null when none has yet). */
let lastGoodHost: string | null = null;
let lastGoodHostName: string | undefined;
let serverSoftware: string | undefined;

/** What the variables of every request on one connection share, worked out once per connection. */
interface ConnectionVariables {
  /** SERVER_NAME when the request has no usable Host: the local address ("[::1]" for IPv6), else "localhost". */
  serverName: string;
  serverPort: string | undefined;
  remoteAddress: string | undefined;
  remotePort: string | undefined;
  https: boolean;
}

/** Where a socket keeps its ConnectionVariables: a property of its own (one load; a WeakMap costs a hash lookup). */
const CONNECTION: unique symbol = Symbol('tsgi.connectionVariables');
type KnownSocket = IncomingMessage['socket'] & { [CONNECTION]?: ConnectionVariables };

function connectionOf(socket: IncomingMessage['socket']): ConnectionVariables {
  let known = (socket as KnownSocket)[CONNECTION];
  if (known === undefined) {
    const localAddress = unmapIpv4(socket.localAddress);
    known = {
      serverName: (localAddress?.includes(':') ? `[${localAddress}]` : localAddress) ?? 'localhost',
      serverPort: socket.localPort === undefined ? undefined : String(socket.localPort),
      // As node:http gives it: an IPv4 client of a dual-stack listener is "::ffff:127.0.0.1" (what
      // `req.socket.remoteAddress` and Express's `req.ip` show there).
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort === undefined ? undefined : String(socket.remotePort),
      https: (socket as Partial<TLSSocket>).encrypted === true,
    };
    // Not remembered before the socket knows its addresses (a socket that is closing may not yet or no more).
    if (socket.remoteAddress !== undefined && socket.localAddress !== undefined) (socket as KnownSocket)[CONNECTION] = known;
  }
  return known;
}

/** "::ffff:127.0.0.1" (an IPv4 client on a dual-stack socket) -> "127.0.0.1". */
function unmapIpv4(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
