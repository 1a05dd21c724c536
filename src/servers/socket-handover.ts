/**
 * Passing a live connection to another process without losing a byte (a stopping `tsgi serve` worker hands
 * its kept-alive FastCGI connections to a worker that stays; see FastCgiConnection#retire).
 *
 * Node can send a socket to another process (`subprocess.send(message, socket)`, documented), but a socket
 * keeps reading while the message is on its way, and what it reads then is dropped: a request the web server
 * writes at that moment would be lost. The reads must stop at the source first, so that the bytes wait in the
 * kernel for the process that receives the socket. Node has no documented call for that: the socket's handle
 * has `readStop()`, which node:net itself uses to pause a socket. This module is the only place tsgi uses it;
 * `canStopReading` says whether this Node has it (probed once), and `TSGI_SOCKET_HANDOVER=off` turns it off.
 * Without it, a stopping worker closes its connections instead (a FIN after its last answer, then it reads
 * until the peer closes): nginx retries a request that met such a close, Apache's mod_proxy_fcgi may not.
 */
import type { Socket } from 'node:net';

interface ReadableHandle {
  readStop(): number;
  reading?: boolean;
}

function handleOf(socket: Socket): ReadableHandle | null {
  const handle = (socket as unknown as { _handle?: unknown })._handle;
  if (typeof handle !== 'object' || handle === null) return null;
  return typeof (handle as { readStop?: unknown }).readStop === 'function' ? (handle as ReadableHandle) : null;
}

/**
 * Off when TSGI_SOCKET_HANDOVER=off; otherwise each socket is probed as it is handed over (its handle must have
 * readStop), so a Node without it falls back per socket, never fails.
 */
function probe(): boolean {
  return process.env.TSGI_SOCKET_HANDOVER !== 'off';
}

/** Whether connections can be handed to another process (decided once; see the module comment). */
export const canStopReading: boolean = probe();

/**
 * Stops `socket`'s reads at the source; true when done (the socket may now be sent to another process and must
 * not be used here any more), false when this Node's socket has no such handle (the caller closes instead).
 */
export function stopReading(socket: Socket): boolean {
  if (!canStopReading) return false;
  const handle = handleOf(socket);
  if (handle === null) return false;
  if (handle.readStop() !== 0) return false;
  handle.reading = false;
  return socket.readableLength === 0;
}
