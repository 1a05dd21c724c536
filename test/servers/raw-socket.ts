/** Raw-socket helpers shared by the SCGI and uwsgi server tests. */
import { connect, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import { parseCgiHead } from '../../src/response/cgi-head-parse.js';
import type { OneRequestServer } from '../../src/servers/one-request-server.js';
import type { App, Header } from '../../src/types.js';

/** What came back on one connection. */
export interface RawReply {
  bytes: Buffer;
  /** How the connection ended: "end" (FIN after the bytes), or the error code (ECONNRESET...). */
  ending: string;
}

/** Opens a connection to 127.0.0.1:port (or a unix socket path). */
export function open(target: number | string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = typeof target === 'number' ? connect(target, '127.0.0.1') : connect(target);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collects everything the server sends on `socket` until it closes. */
export function collect(socket: Socket, timeoutMs = 10_000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ending = 'end';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw-socket: no close within ${timeoutMs} ms (${Buffer.concat(chunks).length} bytes so far)`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => (ending = error.code ?? error.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes: Buffer.concat(chunks), ending });
    });
  });
}

/** Sends `request` (in the pieces given, one write each, a tick apart) and collects the reply. */
export async function exchange(target: number | string, ...pieces: Uint8Array[]): Promise<RawReply> {
  const socket = await open(target);
  const reply = collect(socket);
  for (const piece of pieces) {
    socket.write(piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return reply;
}

/** Parses a reply as a CGI response (`Status:` field) or, with `nph`, an HTTP status line. */
export function parseReply(reply: RawReply, nph = false): { status: number; headers: Header[]; body: Buffer; head: string } {
  const head = parseCgiHead(reply.bytes, { nph });
  return { status: head.status, headers: head.headers, body: reply.bytes.subarray(head.bodyStart), head: reply.bytes.subarray(0, head.bodyStart).toString('latin1') };
}

/** Resolves after `ms` milliseconds. */
export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The servers and client sockets a test file opens, closed after each of its tests (call once, at the top of the
 * file: it registers the afterEach).
 */
export function closedAfterEachTest(): { servers: OneRequestServer[]; sockets: Socket[] } {
  const servers: OneRequestServer[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });
  return { servers, sockets };
}

/** The app the SCGI and uwsgi server tests serve: "hello", text/plain. */
export const hello: App = (_environ, start) => (start('200 OK', [['Content-Type', 'text/plain']]), ['hello']);
