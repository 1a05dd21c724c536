import { spawn, type ChildProcess } from 'node:child_process';
import { sendServerHandle, type ServerHandle } from '../../node-private/net.js';
import { inheritedBacklog } from '../../servers/listen.js';

/*
 * The listen helper of listen-socket.ts: a short-lived `node -e` process that puts the master's bound socket
 * in the listening state without the master's event loop ever polling it (see openListenSocket there).
 */

/** How long the listen helper may take to start, and then to listen, before the master goes on without it. */
export const LISTEN_HELPER_TIMEOUT_MS = 10_000;

/** The message that carries the bound socket to the listen helper. */
const LISTEN_MESSAGE = { type: 'tsgi-listen' } as const;

/**
 * The listen helper's program (CommonJS, `node -e`; argv[1]: the backlog; argv[2]: "fd3" to listen on its
 * fd 3 at once, else it says it is ready and waits for the socket on its IPC channel). It listens on its copy
 * of the socket and exits in the same turn of its event loop: its loop never polls the socket, so it accepts
 * nothing, and the socket stays listening after it exits. Exit status 1 with the error's code on stderr when
 * listen(2) fails (EADDRINUSE: another socket listens on the address); 2 for anything else.
 */
const LISTEN_HELPER_SOURCE = `'use strict';
const net = require('node:net');
const listen = (fd) => {
  const server = net.createServer();
  server.on('error', (error) => { process.stderr.write(String(error.code || error.message)); process.exit(1); });
  try {
    server.listen({ fd, backlog: Number(process.argv[1]) });
  } catch (error) {
    process.stderr.write(String(error.code || error.message));
    process.exit(1);
  }
  if (server.listening) process.exit(0);
};
if (process.argv[2] === 'fd3') {
  listen(3);
} else {
  process.on('disconnect', () => process.exit(2));
  process.on('message', (message, handle) => {
    if (!message || message.type !== ${JSON.stringify(LISTEN_MESSAGE.type)} || !handle || typeof handle.fd !== 'number') process.exit(2);
    listen(handle.fd);
  });
  process.send({ type: 'ready' });
}
`;

/** What the listen helper made of the socket. */
export type ListenOutcome =
  | { kind: 'listening' }
  /** listen(2) failed (`why`: the error's code): the socket cannot be had. */
  | { kind: 'failed'; why: string }
  /** The helper could not do it (did not start, timed out, crashed): the first worker will listen. */
  | { kind: 'unavailable'; why: string };

/** A running listen helper process. */
interface HelperProcess {
  child: ChildProcess;
  /** Resolves with the outcome once it has exited (killed after LISTEN_HELPER_TIMEOUT_MS from `deadline()`). */
  outcome: Promise<ListenOutcome>;
  /** Starts (again) the clock of LISTEN_HELPER_TIMEOUT_MS to `what` ("listen"), after which it is killed; null stops it. */
  deadline(what: string | null): void;
  /** Kills it (if it still runs), and its outcome says `why`. */
  kill(why: string): void;
}

/**
 * Spawns `node -e LISTEN_HELPER_SOURCE` with `stdio` (its fds 0-2 ignored but stderr), without NODE_OPTIONS
 * (a --require or --import there would only slow it).
 */
function spawnHelper(mode: 'ipc' | 'fd3', stdio: Array<'ignore' | 'pipe' | 'ipc' | number>): HelperProcess {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  let killedBecause: string | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stderr = '';
  const child = spawn(process.execPath, ['-e', LISTEN_HELPER_SOURCE, String(inheritedBacklog()), mode], { env, stdio });
  const kill = (why: string): void => {
    killedBecause ??= why;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  child.stderr?.on('data', (chunk: Buffer) => void (stderr.length < 200 && (stderr += chunk.toString())));
  const outcome = new Promise<ListenOutcome>((resolve) => {
    const ended = (why: string | null, code: number | null): void => {
      clearTimeout(timer);
      if (killedBecause === null && code === 0) resolve({ kind: 'listening' });
      else if (killedBecause === null && code === 1) resolve({ kind: 'failed', why: stderr.trim() || 'listen failed' });
      else resolve({ kind: 'unavailable', why: killedBecause ?? why ?? `the listen helper exited (status ${code})` });
    };
    // A spawn that fails emits 'error' (and no 'exit' when there was no process).
    child.once('error', (error) => ended(`the listen helper failed (${error.message})`, null));
    child.once('exit', (code, signal) => ended(signal !== null ? `the listen helper was killed (${signal})` : null, code));
  });
  return {
    child,
    outcome,
    deadline: (what) => {
      clearTimeout(timer);
      if (what === null) return;
      timer = setTimeout(() => kill(`the listen helper did not ${what} within ${LISTEN_HELPER_TIMEOUT_MS} ms`), LISTEN_HELPER_TIMEOUT_MS);
    },
    kill,
  };
}

/** A helper that waits on its IPC channel for the socket (bound after it is ready, so the window is the message's trip). */
export interface ListenHelper {
  /** Resolves once the helper waits for the socket, or has failed (then listen() answers 'unavailable'). */
  readonly ready: Promise<void>;
  /** Sends the bound socket to the helper; resolves once it has listened and exited, or why not. */
  listen(handle: ServerHandle): Promise<ListenOutcome>;
  /** Ends the helper if it still runs. Idempotent. */
  stop(): void;
}

export function startListenHelper(): ListenHelper {
  let helper: HelperProcess;
  try {
    helper = spawnHelper('ipc', ['ignore', 'ignore', 'pipe', 'ipc']);
  } catch (error) {
    const why = `the listen helper could not start (${(error as Error).message})`;
    return { ready: Promise.resolve(), listen: async () => ({ kind: 'unavailable', why }), stop: () => {} };
  }
  helper.deadline('start');
  const child = helper.child;
  const ready = Promise.race([new Promise<void>((resolve) => child.once('message', () => resolve())), helper.outcome.then(() => {})]);
  void ready.then(() => helper.deadline(null));
  return {
    ready,
    listen: async (handle) => {
      await ready;
      if (helper.child.exitCode !== null || helper.child.signalCode !== null || !helper.child.connected) {
        helper.kill('the listen helper is gone');
        return helper.outcome;
      }
      helper.deadline('listen');
      const sent = await new Promise<Error | null>((resolve) => sendServerHandle(helper.child, LISTEN_MESSAGE, handle, resolve));
      if (sent !== null) helper.kill(`cannot send the socket to the listen helper (${sent.message})`);
      return helper.outcome;
    },
    stop: () => helper.kill('stopped'),
  };
}

/**
 * Puts an inherited socket (fd:N) that is bound but not listening in the listening state, with a helper that
 * gets it on its fd 3 (the caller leaves one that listens already, systemd's or a web server's, as it is).
 */
export async function listenInherited(fd: number): Promise<ListenOutcome> {
  let helper: HelperProcess;
  try {
    helper = spawnHelper('fd3', ['ignore', 'ignore', 'pipe', fd]);
  } catch (error) {
    return { kind: 'unavailable', why: `the listen helper could not start (${(error as Error).message})` };
  }
  helper.deadline('listen');
  return helper.outcome;
}
