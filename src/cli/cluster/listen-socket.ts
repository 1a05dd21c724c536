import { lookup } from 'node:dns/promises';
import { fstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { applyUnixSocketOptions, describeListenTarget, isSocketAlive, type ListenTarget, type UnixSocketOptions } from '../../servers/listen.js';

/**
 * The master's listening socket. It lives in the master for the master's whole life and is handed to every
 * worker as a plain descriptor: workers listen on it and accept connections themselves (the master is never
 * in the request path), and the socket survives any worker's death, so connections queue in its backlog
 * while a worker is being replaced instead of being refused.
 */
export interface ListenSocket {
  /** The descriptor to give each worker (duplicated into the child by spawn). */
  fd: number;
  /** Releases the socket: closes what the master created and removes its unix socket file. Idempotent. */
  close(): void;
}

/** A bound, not yet listening, socket handle from node:net (TCP or Pipe). Only the members used here. */
interface ServerHandle {
  readonly fd: number;
  close(): void;
}

type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => ServerHandle | number;

/**
 * Binds the socket for `target` in this process without accepting on it.
 *
 * node:net has no public way to own a listening socket without also accepting connections on it (any
 * net.Server that listens is polled by this process's event loop, so the master would take a share of the
 * connections). `net._createServerHandle` — the function node:cluster's primary uses for the same purpose —
 * creates and binds the socket and nothing else; the workers call listen() on their copies. The first
 * worker's listen() puts the socket in the listening state for good: it stays there, with its backlog, as
 * long as the master holds its descriptor.
 *
 * - tcp: the host is resolved (first address), bound with SO_REUSEADDR (port 0: the kernel picks one).
 * - unix: a stale socket file (nobody listening) is replaced; a live one is an error. The file gets
 *   `unix.mode`/`owner`/`group` and is removed when the socket is closed and when the master exits.
 * - fd: an inherited descriptor (fd 0 from a web server, fd 3+ from systemd) is used as is and never closed.
 * Throws an Error with a clear message when the socket cannot be had.
 */
export async function openListenSocket(target: ListenTarget, unix: UnixSocketOptions = {}): Promise<ListenSocket> {
  if (target.kind === 'fd') {
    let isSocket = false;
    try {
      isSocket = fstatSync(target.fd).isSocket();
    } catch (error) {
      throw new Error(`tsgi serve: fd:${target.fd} is not open (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    if (!isSocket) throw new Error(`tsgi serve: fd:${target.fd} is not a socket`);
    return { fd: target.fd, close: () => {} };
  }
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  if (typeof create !== 'function') throw new Error('tsgi serve: this Node.js has no net._createServerHandle; run with --workers 0');
  if (target.kind === 'tcp') {
    let resolved: { address: string; family: number };
    try {
      resolved = await lookup(target.host);
    } catch (error) {
      throw new Error(`tsgi serve: cannot resolve ${target.host} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const handle = create(resolved.address, target.port, resolved.family === 6 ? 6 : 4);
    if (typeof handle === 'number') throw new Error(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${errorName(handle)})`);
    return closable(handle, () => {});
  }
  const path = target.path;
  let handle = create(path, -1, -1);
  if (typeof handle === 'number' && errorName(handle) === 'EADDRINUSE') {
    if (await isSocketAlive(path)) throw new Error(`tsgi serve: unix socket in use by another server (${path})`);
    try {
      unlinkSync(path);
    } catch {
      // Gone meanwhile.
    }
    handle = create(path, -1, -1);
  }
  if (typeof handle === 'number') throw new Error(`tsgi serve: cannot listen on unix:${path} (${errorName(handle)})`);
  const removeFile = (): void => {
    try {
      unlinkSync(path);
    } catch {
      // Already gone.
    }
  };
  process.once('exit', removeFile);
  try {
    await applyUnixSocketOptions(path, unix);
  } catch (error) {
    handle.close();
    removeFile();
    throw new Error(`tsgi serve: cannot set up unix:${path} (${(error as Error).message})`);
  }
  return closable(handle, removeFile);
}

function closable(handle: ServerHandle, after: () => void): ListenSocket {
  let closed = false;
  return {
    fd: handle.fd,
    close: () => {
      if (closed) return;
      closed = true;
      handle.close();
      after();
    },
  };
}

function errorName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return `error ${code}`;
  }
}
