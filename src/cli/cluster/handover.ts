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

/**
 * Worker: serves the connections the master passes on, on `server` (as if it had accepted them:
 * `server.emit('connection', socket)`), and keeps them until they close; `drained(graceMs)` resolves once every
 * one of them is closed, or after graceMs (a server's own close() counts only what it accepted itself).
 * Node applies `server.maxConnections` only to what the server accepts itself, so it is applied here to the
 * adopted ones (counted apart from those): one more is closed at once and the server's 'drop' event fires, which
 * each tsgi server logs, rate-limited, as it does for its own refusals.
 */
export function adoptFromMaster(server: Server): { drained(graceMs: number): Promise<void> } {
  const adopted = new Set<Socket>();
  process.on('message', (message: unknown, handle: unknown) => {
    if ((message as HandoverMessage | null)?.type !== 'adopt' || typeof handle !== 'object' || handle === null) return;
    const socket = handle as Socket;
    if (adopted.size >= server.maxConnections) {
      socket.destroy();
      server.emit('drop', { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, remoteFamily: socket.remoteFamily });
      return;
    }
    // As tsgi's servers' own sockets: they answer after a peer's half-close, and write small answers at once.
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    adopted.add(socket);
    socket.once('close', () => adopted.delete(socket));
    server.emit('connection', socket);
  });
  return {
    drained: async (graceMs) => {
      if (adopted.size === 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        timer.unref();
        const check = (): void => {
          if (adopted.size > 0) return;
          clearTimeout(timer);
          resolve();
        };
        for (const socket of adopted) socket.once('close', () => setImmediate(check));
      });
    },
  };
}

/** How long the master holds a connection while no worker can take it (all of them booting). */
export const HOLD_MS = 10_000;

/** At most this many connections are held at once; more are closed (with a rate-limited log line). */
export const MAX_HELD = 1_024;

/**
 * Master: passes connections to workers: those stopping workers hand over (to workers that stay), and, on
 * the public fallback of listen-socket.ts, those the master accepts itself (pauseOnConnect: never read here).
 * A handed-over connection's reads are stopped as it arrives (a socket that arrives here would start reading
 * on the next turn of the event loop, and what it read would be dropped when it is sent on), so what the web
 * server sends meanwhile waits in the kernel. With no worker to take it (a reload replaces all of them at
 * once, the only worker died), a connection is held until one is ready, at most HOLD_MS and MAX_HELD at once;
 * past that, or when sending fails, the master closes it gracefully (FIN, reads discarded until the peer
 * closes or LINGER_MS).
 */
export class ConnectionRelay {
  readonly #pickTarget: () => ChildProcess | null;
  readonly #onFull: () => void;
  readonly #held: Array<{ socket: Socket; timer: NodeJS.Timeout }> = [];

  /**
   * `pickTarget`: a worker to pass a connection to now, or null. `onFull`: called for each connection closed
   * because MAX_HELD are held already (the caller logs it, rate-limited).
   */
  constructor(pickTarget: () => ChildProcess | null, onFull: () => void = () => {}) {
    this.#pickTarget = pickTarget;
    this.#onFull = onFull;
  }

  /** A connection a stopping worker handed over: its reads are stopped first (see the class comment). */
  accept(socket: Socket): void {
    socket.on('error', () => {});
    if (!stopReading(socket)) {
      closeGracefully(socket);
      return;
    }
    this.#pass(socket);
  }

  /**
   * A connection the master accepted itself on its pauseOnConnect listening server (the public fallback of
   * listen-socket.ts): it has read nothing, so it goes to a worker as it is.
   */
  acceptPaused(socket: Socket): void {
    socket.on('error', () => {});
    this.#pass(socket);
  }

  #pass(socket: Socket): void {
    const target = this.#pickTarget();
    if (target !== null) {
      send(socket, target);
      return;
    }
    if (this.#held.length >= MAX_HELD) {
      this.#onFull();
      closeGracefully(socket);
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
