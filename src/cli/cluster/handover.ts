/**
 * Kept-alive FastCGI connections survive a worker's stop: a worker that is recycled or reloaded hands each of
 * them, between two requests, to its master, which passes it to a worker that stays (FastCgiServer.handover;
 * the bytes the web server sends meanwhile wait in the kernel: see servers/socket-handover.ts). The web server
 * never sees the connection close, so it never has a request to retry: nothing is lost whatever its retry
 * rules (Apache's mod_proxy_fcgi fails a request sent on a pooled connection that closed under it).
 */
import type { ChildProcess } from 'node:child_process';
import type { Server, Socket } from 'node:net';
import { LINGER_MS } from '../../servers/limits.js';
import { stopReading } from '../../servers/socket-handover.js';

/** The message a connection travels with, worker -> master ('handover') and master -> worker ('adopt'). */
export interface HandoverMessage {
  type: 'handover' | 'adopt';
}

/**
 * Worker: sends a connection to the master and calls `sent` once it is on its way (Node sends one socket at a
 * time and queues the others: the process must not exit before); if sending fails, the connection closes.
 */
export function offerToMaster(socket: Socket, sent: () => void): void {
  const closeInstead = (): void => {
    if (!socket.destroyed) socket.destroy();
    sent();
  };
  if (!process.connected || !process.send) {
    closeInstead();
    return;
  }
  try {
    process.send({ type: 'handover' } satisfies HandoverMessage, socket, {}, (error) => {
      if (error) closeInstead();
      else sent();
    });
  } catch {
    closeInstead();
  }
}

/** Worker: serves the connections the master passes on, on `server` (as if it had accepted them). */
export function adoptFromMaster(server: Server): void {
  process.on('message', (message: unknown, handle: unknown) => {
    if ((message as HandoverMessage | null)?.type !== 'adopt' || typeof handle !== 'object' || handle === null) return;
    const socket = handle as Socket;
    // As the FastCGI server's own sockets (it answers after a web server's half-close).
    socket.allowHalfOpen = true;
    server.emit('connection', socket);
  });
}

/** How long the master holds a handed-over connection while no worker can take it (all of them booting). */
export const HOLD_MS = 10_000;

/**
 * Master: passes the connections stopping workers hand over to workers that stay. A connection's reads are
 * stopped as it arrives (a socket that arrives here would start reading on the next turn of the event loop,
 * and what it read would be dropped when it is sent on), so what the web server sends meanwhile waits in the
 * kernel. With no worker to take it (a reload replaces all of them at once), it is held until one is ready,
 * at most HOLD_MS; past that, or when sending fails, the master closes it gracefully (FIN, reads discarded
 * until the peer closes or LINGER_MS).
 */
export class ConnectionRelay {
  readonly #pickTarget: () => ChildProcess | null;
  readonly #held: Array<{ socket: Socket; timer: NodeJS.Timeout }> = [];

  /** `pickTarget`: a worker to pass a connection to now, or null. */
  constructor(pickTarget: () => ChildProcess | null) {
    this.#pickTarget = pickTarget;
  }

  /** A connection a stopping worker handed over. */
  accept(socket: Socket): void {
    socket.on('error', () => {});
    if (!stopReading(socket)) {
      closeGracefully(socket);
      return;
    }
    const target = this.#pickTarget();
    if (target !== null) {
      send(socket, target);
      return;
    }
    const timer = setTimeout(() => {
      const at = this.#held.findIndex((each) => each.socket === socket);
      if (at >= 0) this.#held.splice(at, 1);
      closeGracefully(socket);
    }, HOLD_MS);
    timer.unref();
    this.#held.push({ socket, timer });
  }

  /** A worker became ready: the connections held go to workers now. */
  flush(): void {
    while (this.#held.length > 0) {
      const target = this.#pickTarget();
      if (target === null) return;
      const { socket, timer } = this.#held.shift() as { socket: Socket; timer: NodeJS.Timeout };
      clearTimeout(timer);
      send(socket, target);
    }
  }

  /** The master stops: what is held closes gracefully. */
  closeAll(): void {
    for (const { socket, timer } of this.#held.splice(0)) {
      clearTimeout(timer);
      closeGracefully(socket);
    }
  }
}

function send(socket: Socket, target: ChildProcess): void {
  try {
    target.send({ type: 'adopt' } satisfies HandoverMessage, socket, {}, (error) => {
      if (error) closeGracefully(socket);
    });
  } catch {
    closeGracefully(socket);
  }
}

function closeGracefully(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resume();
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
