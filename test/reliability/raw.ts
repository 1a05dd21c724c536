/**
 * Misbehaving clients on raw sockets, for the fault tests: one that leaves halfway through an upload, and one
 * that sends its request a byte at a time.
 */
import { connect, type Socket } from 'node:net';
import { sleep } from '../e2e/servers.js';

/** Writes `data` and resolves once the socket took it (waits for 'drain' under backpressure). */
function writeAll(socket: Socket, data: Uint8Array | string): Promise<void> {
  return new Promise((resolveWrite, reject) => {
    if (socket.destroyed) return reject(new Error('socket closed'));
    if (socket.write(data)) return resolveWrite();
    const onDrain = (): void => {
      socket.off('close', onClose);
      resolveWrite();
    };
    const onClose = (): void => {
      socket.off('drain', onDrain);
      reject(new Error('socket closed while writing'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolveSocket, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => resolveSocket(socket));
    socket.once('error', reject);
  });
}

export interface AbortedUpload {
  /** Body bytes written before the socket was destroyed. */
  sent: number;
  /** Response bytes that arrived before that (a client leaving mid-upload expects none). */
  received: number;
}

/**
 * POSTs to `path` declaring `contentLength` bytes, writes the first `sendBytes` of them, waits for `before`
 * (e.g. "the app has started reading"), then destroys the socket: a client that leaves mid-upload.
 */
export async function abortUploadMidway(
  port: number,
  path: string,
  options: { contentLength: number; sendBytes: number; before(): Promise<unknown> },
): Promise<AbortedUpload> {
  const socket = await connected(port);
  let received = 0;
  socket.on('data', (data: Buffer) => (received += data.length));
  socket.on('error', () => undefined);
  try {
    await writeAll(socket, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${options.contentLength}\r\n\r\n`);
    const piece = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    while (sent < options.sendBytes) {
      const size = Math.min(piece.length, options.sendBytes - sent);
      await writeAll(socket, piece.subarray(0, size));
      sent += size;
    }
    await options.before();
    return { sent, received };
  } finally {
    socket.destroy();
  }
}

/** A client trickling its request one byte at a time. */
export interface Trickler {
  /** Bytes of the request written so far. */
  sent(): number;
  /** Everything the server answered so far. */
  received(): Buffer;
  /** Whether the server closed (or reset) the connection. */
  closedByServer(): boolean;
  /**
   * Resolves once the whole request was written and the server either closed the connection or sent
   * `expectBytes` bytes; rejects after `timeoutMs`.
   */
  finished(expectBytes: number, timeoutMs: number): Promise<Buffer>;
  /** Stops trickling and closes the socket. */
  stop(): void;
}

/**
 * Opens a connection and writes `request` one byte every `intervalMs` (a slowloris client when the bytes
 * are a header that never ends; a slow upload when they are a body after a complete head). The first
 * `headBytes` bytes go at once.
 */
export async function trickle(port: number, request: Buffer, intervalMs: number, headBytes = 0): Promise<Trickler> {
  const socket = await connected(port);
  const parts: Buffer[] = [];
  let closed = false;
  let stopped = false;
  let sent = 0;
  socket.on('data', (data: Buffer) => parts.push(data));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  const writer = (async () => {
    if (headBytes > 0) {
      await writeAll(socket, request.subarray(0, headBytes));
      sent = headBytes;
    }
    while (sent < request.length && !stopped && !closed) {
      await sleep(intervalMs);
      if (stopped || closed) break;
      await writeAll(socket, request.subarray(sent, sent + 1)).catch(() => undefined);
      sent++;
    }
  })();
  return {
    sent: () => sent,
    received: () => Buffer.concat(parts),
    closedByServer: () => closed && !stopped,
    finished: async (expectBytes, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      await writer;
      while (!closed && Buffer.concat(parts).length < expectBytes) {
        if (Date.now() > deadline) throw new Error(`trickle: ${Buffer.concat(parts).length} of ${expectBytes} bytes after ${timeoutMs} ms`);
        await sleep(50);
      }
      return Buffer.concat(parts);
    },
    stop: () => {
      stopped = true;
      socket.destroy();
    },
  };
}
