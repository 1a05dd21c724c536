import type { Socket } from 'node:net';
import { STATUS_TEXT } from '../../helpers/status-text.js';
import { CgiHeadCache, cgiHeadLength, writeCgiHead } from '../../protocol/cgi-head-bytes.js';
import type { Header } from '../../types.js';
import type { OneRequestProtocol } from './protocol.js';

/** A head and a first body chunk that fit in this many bytes leave in one buffer (see writeHeadWith). */
const COMBINE_LIMIT_BYTES = 4 * 1024;

/** The last response head written (any protocol: the cache compares it too), copied when the next is the same. */
const HEAD_CACHE = new CgiHeadCache();

/**
 * Writes a response head and the first body bytes `chunk` (possibly empty) to `socket`, and ends the socket
 * (FIN) when `last`. A small head and chunk leave as one buffer (one plain write is cheaper than a corked
 * writev), the head written straight into it (or copied, when it is the head written last) when the
 * protocol's heads are CGI heads (protocol.cgiHead); else the two are corked.
 */
export function writeHeadWith(
  socket: Socket,
  protocol: OneRequestProtocol,
  code: number,
  reason: string,
  headers: readonly Header[],
  chunk: Uint8Array,
  last: boolean,
): void {
  let bytes = chunk;
  let corked = false;
  const cgiHead = protocol.cgiHead;
  const nph = cgiHead?.nph;
  const cachedLength = cgiHead === undefined ? -1 : HEAD_CACHE.lengthOf(code, reason, headers, nph);
  const headLength = cachedLength >= 0 || cgiHead === undefined ? cachedLength : cgiHeadLength(code, reason, headers, nph);
  if (headLength >= 0 && headLength + chunk.length <= COMBINE_LIMIT_BYTES) {
    bytes = Buffer.allocUnsafe(headLength + chunk.length);
    let end: number;
    if (cachedLength >= 0) end = HEAD_CACHE.copyTo(bytes, 0);
    else {
      end = writeCgiHead(bytes, 0, code, reason, headers, nph);
      HEAD_CACHE.store(code, reason, headers, nph, bytes.subarray(0, end));
    }
    bytes.set(chunk, end);
  } else {
    const head = protocol.formatHead(code, reason, headers);
    if (head.length + chunk.length <= COMBINE_LIMIT_BYTES) {
      bytes = Buffer.allocUnsafe(head.length + chunk.length);
      bytes.set(head, 0);
      bytes.set(chunk, head.length);
    } else {
      socket.cork();
      corked = true;
      socket.write(head);
    }
  }
  if (last) {
    if (bytes.length > 0) socket.end(bytes);
    else socket.end();
  } else if (bytes.length > 0) socket.write(bytes);
  if (corked) socket.uncork();
}

/** A whole plain-text answer the server gives itself (400, 408, 413, 502...): the protocol's head and "CODE Reason\n". */
export function errorPage(protocol: OneRequestProtocol, code: number): Buffer {
  const reason = STATUS_TEXT[code] ?? 'Error';
  const page = Buffer.from(`${code} ${reason}\n`);
  const head = protocol.formatHead(code, reason, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(page.length)],
  ]);
  return Buffer.concat([head, page]);
}
