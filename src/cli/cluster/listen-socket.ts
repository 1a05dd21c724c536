import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { probeCreateServerHandle, type CreateServerHandle, type ServerHandle } from '../../node-private/net.js';
import { applyUnixSocketOptions, describeListenTarget, inspectDescriptor, isSocketAlive, listenOn, type ListenTarget, type UnixSocketOptions } from '../../servers/listen.js';
import { listenInherited, startListenHelper, type ListenHelper } from './listen-helper.js';
import type { ListenSocketMessage, WorkerConfig } from './messages.js';

// Not ES imports of node:fs, node:util, node:dns/promises: those read every export of the module and load what
// its getters load (about 3 MiB of the master's RSS in all; see servers/listen.ts).
const { fstatSync, unlinkSync } = process.getBuiltinModule('node:fs');
const { getSystemErrorName } = process.getBuiltinModule('node:util');

/**
 * The master's listening socket. It lives in the master for the master's whole life and survives any worker's
 * death, so connections wait (in its backlog, or held by the master) while a worker is being replaced instead
 * of being refused. Two kinds, by what this Node allows (see src/node-private/net.ts):
 *
 * - `descriptor` (the default, and any fd:N target): a socket bound with `net._createServerHandle` (or
 *   inherited), put in the listening state by a short-lived helper process (see openListenSocket), and never
 *   accepted on by the master. Each worker inherits it as a plain descriptor (fd 3), listens on it and
 *   accepts connections itself: the master is never in the request path and spends nothing per connection.
 * - `server` (the public fallback for tcp and unix: the probe failed, or TSGI_NODE_PRIVATE=0): a listening
 *   net.Server with pauseOnConnect. Each worker gets it with `subprocess.send(message, server)` and accepts on
 *   it too; the connections the master itself accepts (it is woken as the workers are) are passed, unread, to
 *   a ready worker with `subprocess.send(message, socket)` (ConnectionRelay), as node:cluster's round robin does.
 *   A unix socket's server is not sent (a worker in Node 20 cannot listen on it: it opens the path again and
 *   fails with EEXIST): the master accepts every connection on it and passes each one on, round robin.
 */
export type ListenSocket =
  | {
      kind: 'descriptor';
      /** The descriptor to give each worker (duplicated into the child by spawn). */
      fd: number;
      /**
       * Set when the socket is bound but could not be put in the listening state at once (the helper process
       * failed): why, for the log. The first worker's listen() does it then, as it would without the helper.
       */
      notListening?: string;
      /** Releases the socket: closes what the master created and removes its unix socket file. Idempotent. */
      close(): void;
    }
  | {
      kind: 'server';
      /** Listening, pauseOnConnect: its 'connection' sockets are passed to workers unread. */
      server: net.Server;
      /** Stops listening (removes a unix socket file). Idempotent. */
      close(): void;
    };

/**
 * Binds the socket for `target` in this process and puts it in the listening state without accepting on it
 * where this Node allows (`net._createServerHandle` and a listen helper: see below), else listens with a
 * pauseOnConnect net.Server. Either way the socket is listening when this resolves: another process can no
 * longer bind the address, and a client that connects waits in the backlog until a worker accepts.
 *
 * node:net has no public way to own a listening socket without also accepting connections on it (any
 * net.Server that listens is polled by this process's event loop). `net._createServerHandle` — the function
 * node:cluster's primary uses for the same purpose — creates and binds the socket and nothing else. Bound and
 * not listening, a TCP socket does not hold its port: libuv binds with SO_REUSEADDR, and Linux lets another
 * SO_REUSEADDR socket bind the same address, then listen, as long as nobody listens on it; the workers would
 * fail with EADDRINUSE. So the listen(2) happens at once, in another process: a helper (`node -e`, started
 * before the bind and waiting on its IPC channel) is sent the socket, listens on its copy and exits within
 * the same turn of its event loop, before it could accept anything (LISTEN_HELPER_SOURCE). The state belongs
 * to the socket, not to a descriptor: it stays listening, with its backlog, as long as the master holds its
 * descriptor. What is left of the window is the message's trip to the helper (2-9 ms measured on a loaded
 * machine), against the time the first worker took to load the app; the price is one `node -e` start before
 * the bind (start-up only). Should the helper fail, the first worker's listen() does it, as before
 * (`notListening` says why).
 *
 * - tcp: the host is resolved (first address), bound with SO_REUSEADDR (port 0: the kernel picks one).
 * - unix: a stale socket file (nobody listening) is replaced; a live one is an error. The file gets
 *   `unix.mode`/`owner`/`group` and is removed when the socket is closed and when the master exits.
 * - fd: an inherited descriptor (fd 0 from a web server, fd 3+ from systemd) is a `descriptor` ListenSocket
 *   whatever this Node allows (no private member is needed to pass on a descriptor the master already has,
 *   and a master that listened on it would accept connections its workers do not adopt), never closed. One
 *   that listens already (systemd, mod_fcgid, lighttpd listen before passing it) is used as is; one that is
 *   only bound is listened on at once by a helper that inherits it (listenInherited).
 * A unix socket's path cannot be bound twice, but it listens at once too, after its mode and owner are set,
 * so that a client connecting early waits instead of being refused.
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
    return inheritedSocket(target);
  }
  const create = probeCreateServerHandle();
  if (create === null) return openListeningServer(target, unix);
  const helper = startListenHelper();
  try {
    return await bindAndListen(create, target, unix, helper);
  } finally {
    helper.stop();
  }
}

/**
 * An inherited descriptor (never closed here), listening: as it came, or by the listen helper when /proc does
 * not show it listening (a TCP socket that is only bound is in no /proc/net table: 'socket', unclassified).
 */
async function inheritedSocket(target: { kind: 'fd'; fd: number }): Promise<ListenSocket> {
  const socket: ListenSocket = { kind: 'descriptor', fd: target.fd, close: () => {} };
  if (inspectDescriptor(target.fd).kind === 'listening') return socket;
  const outcome = await listenInherited(target.fd);
  if (outcome.kind === 'failed') throw new Error(`tsgi serve: cannot listen on fd:${target.fd} (${outcome.why})`);
  return outcome.kind === 'unavailable' ? { ...socket, notListening: outcome.why } : socket;
}

/** openListenSocket for a tcp or unix target with the private handle: binds once `helper` waits, then listens. */
async function bindAndListen(
  create: CreateServerHandle,
  target: Exclude<ListenTarget, { kind: 'fd' }>,
  unix: UnixSocketOptions,
  helper: ListenHelper,
): Promise<ListenSocket> {
  if (target.kind === 'tcp') {
    let resolved: { address: string; family: number };
    try {
      [resolved] = await Promise.all([process.getBuiltinModule('node:dns').promises.lookup(target.host), helper.ready]);
    } catch (error) {
      throw new Error(`tsgi serve: cannot resolve ${target.host} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
    const handle = create(resolved.address, target.port, resolved.family === 6 ? 6 : 4);
    if (typeof handle === 'number') throw new Error(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${errorName(handle)})`);
    return listening(handle, () => {}, helper, target);
  }
  const path = target.path;
  await helper.ready;
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
  return listening(handle, removeFile, helper, target);
}

/** The bound `handle` as a descriptor ListenSocket, once `helper` has put it in the listening state. */
async function listening(handle: ServerHandle, after: () => void, helper: ListenHelper, target: ListenTarget): Promise<ListenSocket> {
  const socket = closable(handle, after);
  const outcome = await helper.listen(handle);
  if (outcome.kind === 'failed') {
    socket.close();
    throw new Error(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${outcome.why})`);
  }
  return outcome.kind === 'unavailable' ? { ...socket, notListening: outcome.why } : socket;
}

/** The public fallback: a listening net.Server that reads nothing from what it accepts. */
async function openListeningServer(target: ListenTarget, unix: UnixSocketOptions): Promise<ListenSocket> {
  const server = net.createServer({ pauseOnConnect: true });
  try {
    await listenOn(server, target, unix);
  } catch (error) {
    server.close();
    const message = (error as Error).message.replace(/^tsgi: /, '');
    throw new Error(`tsgi serve: cannot listen on ${describeListenTarget(target)} (${message})`);
  }
  let closed = false;
  return {
    kind: 'server',
    server,
    close: () => {
      if (closed) return;
      closed = true;
      server.close();
    },
  };
}


function closable(handle: ServerHandle, after: () => void): Extract<ListenSocket, { kind: 'descriptor' }> {
  let closed = false;
  return {
    kind: 'descriptor',
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

/**
 * How a worker gets its connections (WorkerConfig.listen): by listening on fd 3 (a `descriptor` socket: the
 * private handle's descriptor, or an inherited fd); on the public fallback, by listening on the master's
 * net.Server sent over IPC (TCP), or not at all, every connection relayed by the master (a unix socket).
 */
export function workerListenVia(socket: ListenSocket, target: ListenTarget): WorkerConfig['listen'] {
  if (socket.kind === 'descriptor') return 'inherited';
  return target.kind === 'unix' ? 'relayed' : 'from-master';
}

/** The descriptor a worker gets as WORKER_LISTEN_FD, or 'ignore' when it gets its socket another way. */
export function workerListenFd(socket: ListenSocket): number | 'ignore' {
  return socket.kind === 'descriptor' ? socket.fd : 'ignore';
}

/**
 * The public fallback over TCP: sends the master's listening net.Server to a booting worker that asked for it
 * (its 'listen' message); `failed` gets the reason when it cannot be sent. Nothing for another kind of socket.
 */
export function sendListenSocket(socket: ListenSocket, child: ChildProcess, failed: (why: string) => void): void {
  if (socket.kind !== 'server' || !child.connected) return;
  try {
    child.send({ type: 'listen-socket' } satisfies ListenSocketMessage, socket.server, {}, (error) => {
      if (error) failed(`cannot send the listening socket (${error.message})`);
    });
  } catch (error) {
    failed(`cannot send the listening socket (${(error as Error).message})`);
  }
}
