/**
 * The one list of the fields a response from an app (or a CGI script, or a Node handler) may not carry: each
 * speaks for one connection or for the framing of the message, and the server that frames the response owns
 * them. Every tsgi path that frames a response drops them alike (the HTTP server, the Fetch and Node bridges,
 * the CGI host, an NPH script's head); behind FastCGI, SCGI, uwsgi and CGI the web server frames it, and tsgi
 * passes them on but for Transfer-Encoding (response/cgi-head.ts). The validator refuses them (F14,
 * docs/validator-rules.md). Names are lower case.
 *
 * Why each one:
 * - connection: names the options of this one connection (RFC 9110 §7.6.1); the framing server sets its own.
 * - keep-alive: the persistence parameters of a connection (RFC 9110 §7.6.1, from RFC 2068 §19.7.1).
 * - proxy-connection: old clients' non-standard Connection (RFC 9110 §7.6.1, RFC 9112 Appendix C.2.2).
 * - te: the transfer codings a connection accepts (RFC 9110 §10.1.4, §7.6.1); a request field, and hop-by-hop.
 * - transfer-encoding: the framing itself, set by whoever frames the message (RFC 9112 §6.1, RFC 9110 §7.6.1).
 *   An app's `Transfer-Encoding: chunked` only asks that no Content-Length be computed (docs/SPEC.md section 3).
 * - upgrade: switches the connection to another protocol (RFC 9110 §7.8): only the connection's owner can.
 * - trailer: announces fields of a trailer section (RFC 9110 §6.6.2); tsgi's transports send none, so it would
 *   announce fields that never come.
 * - trailers: RFC 2616 §13.5.1's spelling of Trailer, in PEP 3333's list of hop-by-hop headers: an app written
 *   to that list may send it.
 * - proxy-authenticate, proxy-authorization: hop-by-hop in RFC 2616 §13.5.1 and PEP 3333; they speak to and
 *   for the next proxy (RFC 9110 §11.7.1-11.7.2), which an app behind a gateway is not (docs/SPEC.md section 3).
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'trailers',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** The lengths of the names above: most names are passed by their length alone, without lowercasing them. */
const LENGTHS: ReadonlySet<number> = new Set([...HOP_BY_HOP_HEADERS].map((name) => name.length));

/** True when a response may not carry the field `name` (any case): see HOP_BY_HOP_HEADERS. */
export function isHopByHop(name: string): boolean {
  return LENGTHS.has(name.length) && HOP_BY_HOP_HEADERS.has(name.toLowerCase());
}
