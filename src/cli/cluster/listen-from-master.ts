/**
 * A worker's listen step on the public fallback of listen-socket.ts: the master holds a listening net.Server
 * and sends it over the IPC channel (`subprocess.send(message, server)`, documented) when the worker asks.
 */
import type { Server } from 'node:net';
import type { ListenSocketMessage, WorkerMessage } from './messages.js';

/**
 * Asks the master for its listening socket and listens `server` on it (`server.listen(handle)`, documented
 * for a server received this way). Node listens the received copy itself before handing it over; the worker
 * asks only once its own server exists and takes the socket over in the same turn of the event loop, so no
 * connection is accepted by the copy. Rejects when listening fails or the channel is gone.
 */
export function listenFromMaster(server: Server, send: (message: WorkerMessage) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!process.connected) {
      reject(new Error('the master is gone'));
      return;
    }
    const onMessage = (message: unknown, handle: unknown): void => {
      if ((message as ListenSocketMessage | null)?.type !== 'listen-socket' || typeof handle !== 'object' || handle === null) return;
      process.off('message', onMessage);
      const onError = (error: Error): void => reject(error);
      server.once('error', onError);
      server.listen(handle as Server, () => {
        server.off('error', onError);
        resolve();
      });
    };
    process.on('message', onMessage);
    send({ type: 'listen' });
  });
}
