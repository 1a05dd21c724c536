/**
 * How a one-request connection's socket ends once there is nothing more to answer: closed at once when the
 * request was read to its last byte, else after lingering (reading and dropping what the web server still
 * sends, so that the close is a FIN and not a reset that could destroy the answer in flight), and the answer
 * to a head that never completed. Every timer here is bounded by LINGER_MS and cleared when the socket closes.
 */
import type { Socket } from 'node:net';
import { LINGER_MS } from '../limits.js';
import { errorPage } from './response-head.js';
import type { OneRequestProtocol } from './protocol.js';

/** Socket errors that only mean the peer went away: not worth a log line. */
export const PEER_GONE_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * After the answer's FIN: a request read to its last byte (`readAll`) has nothing more coming, so the socket
 * is closed as soon as the answer is written, as node:http does after `Connection: close`. Otherwise (the app
 * answered before its body arrived, or the peer sent more than it announced) the connection lingers.
 */
export function closeAfterAnswer(socket: Socket, readAll: boolean): void {
  if (!readAll) linger(socket);
  else if (socket.writableFinished) socket.destroy();
  // As socket.destroySoon() after the end, with a listener shared by every socket instead of a once() wrapper.
  else socket.on('finish', destroyOnFinish);
}

/** The 'finish' listener of closeAfterAnswer: the answer is out (the FIN included), the socket closes. */
function destroyOnFinish(this: Socket): void {
  this.destroy();
}

/**
 * Keeps reading (and dropping) what the web server still sends until it closes, at most LINGER_MS after the
 * answer is written: resumes the socket (a caller that paused it for backpressure forgets that it did).
 */
export function linger(socket: Socket): void {
  socket.resume();
  if (socket.readableEnded) {
    socket.destroySoon();
    return;
  }
  socket.once('finish', () => {
    if (socket.destroyed) return;
    // Cleared at 'close': a timer left pending would keep the socket alive for LINGER_MS after every request.
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  });
}

/**
 * The answer to a head that did not complete within headerTimeoutMs, when some of it arrived: a web server
 * that began a request waits for an answer. The peer has stopped sending (nothing unread to turn the close
 * into a reset), so no lingering: closed once the 408 page is out, or after LINGER_MS if the peer does not
 * read either.
 */
export function answerHeadTimeout(socket: Socket, protocol: OneRequestProtocol): void {
  socket.end(errorPage(protocol, 408), () => socket.destroy());
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
