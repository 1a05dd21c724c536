/**
 * Passing a live connection to another process without losing a byte (a stopping `tsgi serve` worker hands
 * its kept-alive FastCGI connections to a worker that stays; see FastCgiConnection#retire).
 *
 * Node can send a socket to another process (`subprocess.send(message, socket)`, documented), but a socket
 * keeps reading while the message is on its way, and what it reads then is dropped: a request the web server
 * writes at that moment would be lost. The reads must stop at the source first, so that the bytes wait in the
 * kernel for the process that receives the socket. Node has no documented call for that: the socket handle's
 * `readStop()` (node:net's own pause) is one of the private members held in src/node-private/net.ts, probed there.
 * `TSGI_SOCKET_HANDOVER=off` (or `TSGI_NODE_PRIVATE=0`) turns the handover off. Without it, a stopping worker
 * closes its connections instead (a FIN after its last answer, then it reads until the peer closes): nginx
 * retries a request that met such a close, Apache's mod_proxy_fcgi may not.
 */
import type { Socket } from 'node:net';
import { privateMembersAllowed, stopSocketReads } from '../node-private/net.js';

/** Whether connections may be handed to another process at all (decided once; see the module comment). */
export const canStopReading: boolean = process.env.TSGI_SOCKET_HANDOVER !== 'off' && privateMembersAllowed();

/**
 * Stops `socket`'s reads at the source; true when done (the socket may now be sent to another process and must
 * not be used here any more), false when the handover is off or this Node's socket cannot (the caller closes
 * instead).
 */
export function stopReading(socket: Socket): boolean {
  return canStopReading && stopSocketReads(socket);
}
