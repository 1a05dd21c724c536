/**
 * Every private Node.js member tsgi's servers and CLI use, and nothing else: no other file of src/servers or
 * src/cli touches a private member. src/node-private/ is the one home of private use: this file for node:net
 * (the listening socket and its trip to the listen helper, the handover), http.ts for the Node-handler
 * bridge's request/response objects (kept apart so that the `tsgi serve` master, which needs this file, never
 * loads node:http).
 *
 * A Node release may drop or change a private member, so each one is probed once, the first time it is asked
 * for (a function that checks the member exists and behaves, and never throws), and every caller has a
 * documented public fallback that it uses when the probe fails:
 *
 * | member                          | used for                                      | fallback (public API)                    |
 * | ------------------------------- | --------------------------------------------- | ---------------------------------------- |
 * | `net._createServerHandle`       | the `tsgi serve` master binds the listening   | the master listens with a net.Server     |
 * |                                 | socket without accepting on it; workers       | (pauseOnConnect) and sends it to workers |
 * |                                 | inherit its descriptor (cli/cluster/          | with subprocess.send(message, server);   |
 * |                                 | listen-socket.ts)                             | what the master accepts goes to a worker |
 * |                                 |                                               | with subprocess.send(message, socket)    |
 * | that handle sent over IPC       | the `tsgi serve` master has a short-lived     | none needed: the first worker's listen() |
 * | (`subprocess.send(msg, handle)` | helper process put the socket in the          | does it (bound, not listening, while     |
 * | takes it; not documented)       | listening state at once (cli/cluster/         | that worker starts). Not probed apart:   |
 * |                                 | listen-socket.ts)                             | a failed send is its own answer          |
 * | `socket._handle.readStop()`     | a stopping worker hands a kept-alive FastCGI  | no handover: the connection closes       |
 * | (and `_handle.reading`)         | connection to another process without losing  | gracefully (FIN after its last answer,   |
 * |                                 | a byte (servers/socket-handover.ts)           | then read until the peer closes)         |
 *
 * `TSGI_NODE_PRIVATE=0` makes every probe fail, forcing the public fallbacks (for tests, and for a Node where
 * a private member misbehaves without the probe noticing).
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** The environment variable that forces the public fallbacks when set to "0". */
export const NODE_PRIVATE_ENV = 'TSGI_NODE_PRIVATE';

/** False when TSGI_NODE_PRIVATE=0: every probe fails. */
export function privateMembersAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[NODE_PRIVATE_ENV] !== '0';
}

/** A bound, not yet listening, socket handle (TCP or Pipe) as `net._createServerHandle` returns it. */
export interface ServerHandle {
  readonly fd: number;
  close(): void;
}

/**
 * `net._createServerHandle(address, port, addressType)`: a socket bound to (address, port) — addressType 4 or 6
 * for TCP; a path with port and addressType -1 for a unix socket — and not listening; a negative errno (a
 * number) when binding fails.
 */
export type CreateServerHandle = (address: string | null, port: number, addressType: number) => ServerHandle | number;

let createServerHandleProbe: CreateServerHandle | null | undefined;

/**
 * `net._createServerHandle` bound to node:net, or null (absent, misbehaving, or TSGI_NODE_PRIVATE=0). Probed
 * once: it must bind an ephemeral port on 127.0.0.1 and give a handle with a descriptor and close(), or
 * answer a bind failure with an errno number (a host without IPv4 loopback).
 */
export function probeCreateServerHandle(): CreateServerHandle | null {
  if (createServerHandleProbe !== undefined) return createServerHandleProbe;
  createServerHandleProbe = null;
  if (!privateMembersAllowed()) return null;
  try {
    const member = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
    if (typeof member !== 'function') return null;
    const create = member.bind(net) as CreateServerHandle;
    const handle: unknown = create('127.0.0.1', 0, 4);
    if (typeof handle === 'number') {
      if (handle < 0) createServerHandleProbe = create;
      return createServerHandleProbe;
    }
    if (typeof handle !== 'object' || handle === null) return null;
    const { fd, close } = handle as Partial<ServerHandle>;
    if (typeof close !== 'function') return null;
    close.call(handle);
    if (typeof fd === 'number' && fd >= 0) createServerHandleProbe = create;
  } catch {
    createServerHandleProbe = null;
  }
  return createServerHandleProbe;
}

/**
 * Sends `handle` (from `net._createServerHandle`) with `message` over `child`'s IPC channel: node:child_process
 * passes a raw TCP or Pipe handle as it passes a net.Server's (the descriptor travels, the child gets a handle
 * of its own on a copy), which its documentation does not list. `done` gets null once the message is written,
 * or the error; it is called once, never synchronously. Nothing is sent when TSGI_NODE_PRIVATE=0.
 */
export function sendServerHandle(child: ChildProcess, message: object, handle: ServerHandle, done: (error: Error | null) => void): void {
  let called = false;
  const finish = (error: Error | null): void => {
    if (called) return;
    called = true;
    setImmediate(done, error);
  };
  if (!privateMembersAllowed()) return finish(new Error(`${NODE_PRIVATE_ENV}=0`));
  if (!child.connected) return finish(new Error('the channel is closed'));
  try {
    child.send(message, handle as unknown as net.Server, {}, (error) => finish(error ?? null));
  } catch (error) {
    finish(error instanceof Error ? error : new Error(String(error)));
  }
}

/** The members of a connected socket's handle that stopping its reads needs. */
interface ReadableHandle {
  readStop(): number;
  reading: boolean;
}

let readStopProbe: boolean | undefined;

function readableHandleOf(socket: net.Socket): ReadableHandle | null {
  const handle = (socket as unknown as { _handle?: unknown })._handle;
  if (typeof handle !== 'object' || handle === null) return null;
  const { readStop, reading } = handle as Partial<ReadableHandle>;
  return typeof readStop === 'function' && typeof reading === 'boolean' ? (handle as ReadableHandle) : null;
}

/**
 * Whether a connected socket's `_handle` has `readStop()` and a boolean `reading` (node:net's own pause).
 * Probed once, on the first connected socket asked about; false for good when TSGI_NODE_PRIVATE=0 or when that
 * socket's handle lacks them.
 */
export function probeReadStop(socket: net.Socket): boolean {
  if (readStopProbe !== undefined) return readStopProbe;
  if (!privateMembersAllowed()) return (readStopProbe = false);
  try {
    const handle = (socket as unknown as { _handle?: unknown })._handle;
    // A socket without a handle (closed, not connected) proves nothing: ask again with the next one.
    if (typeof handle !== 'object' || handle === null) return false;
    readStopProbe = readableHandleOf(socket) !== null;
  } catch {
    readStopProbe = false;
  }
  return readStopProbe;
}

/**
 * Stops `socket`'s reads at the source (the bytes that arrive stay in the kernel, for whichever process gets
 * the socket next): true when done and nothing was read past what the caller consumed; false when it cannot
 * (the probe failed, the handle is gone, readStop reported an error, or bytes wait in the socket's buffer).
 * Never throws.
 */
export function stopSocketReads(socket: net.Socket): boolean {
  if (!probeReadStop(socket)) return false;
  try {
    const handle = readableHandleOf(socket);
    if (handle === null || handle.readStop() !== 0) return false;
    handle.reading = false;
  } catch {
    return false;
  }
  return socket.readableLength === 0;
}
