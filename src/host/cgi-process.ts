/**
 * Starts a CGI child and owns its process group (field-notes T25): the child leads a group of its own (POSIX),
 * every kill goes to the whole group, so helpers a script started (a `sleep`, a pipeline) die with it and can't
 * hold the pipes open; groups still running when this process exits are killed.
 *
 * Spawned with node:child_process directly: this is the hot path of every CGI request, and a wrapper such as
 * execa more than doubled the CPU this process spends per spawn (measured: about 2,000 µs against 900 µs for
 * a shell hello script; see docs/SPEC.md, "The CGI host").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import type { StderrLog } from './cgi-log.js';

/** Time between SIGTERM and SIGKILL when the host kills a script. */
export const KILL_TIMEOUT_MS = 2_000;
/** After stdout ends, how long the body waits for the exit to tell a clean end from a death by signal. */
export const EXIT_GRACE_MS = 1_000;

/** How a script ended. */
export interface CgiExit {
  /** The exit code, or null when the script was killed by a signal or never started. */
  exitCode: number | null;
  /** The signal that killed the script ("SIGTERM"...), or null. */
  signal: string | null;
  /** The script's stderr (capped at maxStderrBytes) followed by the host's log lines. */
  stderr: string;
}

/** The exit of the script's own process, or why it never started. */
export interface ExitInfo {
  exitCode: number | null;
  signal: string | null;
  spawnError?: string;
}

/** What to run: the program, its arguments, its whole environment and its working directory. */
export interface ChildCommand {
  file: string;
  args: readonly string[];
  env: Record<string, string>;
  cwd: string;
}

/** A running child: its pipes, how it ended, and a way to kill it with everything it started. */
export interface CgiChild {
  stdin: Writable;
  stdout: Readable;
  /** Resolves at the exit of the script's own process (or its failure to start). */
  exited: Promise<ExitInfo>;
  /** Resolves once the script exited and its stderr is read (or a grace period passed). Never rejects. */
  done: Promise<CgiExit>;
  /** SIGTERM to the process group, then SIGKILL after KILL_TIMEOUT_MS. Idempotent; nothing once all is over. */
  terminate(): void;
}

const POSIX = process.platform !== 'win32';

/** Starts `command` with three pipes, in a process group of its own; its stderr goes to `log` as it comes. */
export function startChild(command: ChildCommand, log: StderrLog): CgiChild {
  let subprocess: ChildProcess;
  try {
    subprocess = spawn(command.file, command.args as string[], {
      env: command.env,
      cwd: command.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      // A group of its own lets one kill reach whatever the script started (T25).
      detached: POSIX,
      windowsHide: true,
    });
  } catch (error) {
    // EACCES and the like are thrown at once (ENOENT arrives as an 'error' event).
    return failedChild((error as NodeJS.ErrnoException).code ?? (error as Error).message, log);
  }
  const pid = subprocess.pid;
  trackGroup(pid);
  const stdin = subprocess.stdin as Writable;
  const stdout = subprocess.stdout as Readable;
  const stderr = subprocess.stderr as Readable;
  // EPIPE when a script exits without reading its body is normal (§4.2 lets it ignore the body).
  stdin.on('error', ignore);
  stdout.on('error', ignore);
  stderr.on('error', ignore);

  const exited = new Promise<ExitInfo>((resolveExit) => {
    subprocess.once('exit', (exitCode, signal) => resolveExit({ exitCode, signal }));
    subprocess.once('error', (error: NodeJS.ErrnoException) => {
      resolveExit({ exitCode: null, signal: null, spawnError: error.code ?? error.message });
      // Nothing will ever arrive on the pipes of a process that never started.
      stdin.destroy();
      stdout.destroy();
      stderr.destroy();
    });
  });

  stderr.setEncoding('utf8');
  stderr.on('data', (text: string) => log.write(text));
  const stderrClosed = closeOf(stderr);
  const stdoutClosed = closeOf(stdout);

  let killTimer: NodeJS.Timeout | undefined;
  let terminating = false;
  let finished = false;
  // Once the script exited and both pipes closed, nothing of the group can still hold them: no kill is due.
  void Promise.all([exited, stdoutClosed, stderrClosed]).then(() => {
    finished = true;
    clearTimeout(killTimer);
    if (pid !== undefined) liveGroups.delete(pid);
  });
  const signalGroup = (name: NodeJS.Signals): void => {
    try {
      if (POSIX && pid !== undefined) process.kill(-pid, name);
      else subprocess.kill(name);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const terminate = (): void => {
    if (terminating || finished) return;
    terminating = true;
    signalGroup('SIGTERM');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_TIMEOUT_MS);
  };

  const done = exited.then(async (exit) => {
    await Promise.race([stderrClosed, delay(EXIT_GRACE_MS)]);
    return describeExit(exit, log);
  });
  return { stdin, stdout, exited, done, terminate };
}

/** A child that could not be spawned at all: empty pipes, and an exit that says why. */
function failedChild(reason: string, log: StderrLog): CgiChild {
  const exited = Promise.resolve<ExitInfo>({ exitCode: null, signal: null, spawnError: reason });
  const stdout = new Readable({ read() {} });
  stdout.push(null);
  const stdin = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  return { stdin, stdout, exited, done: exited.then((exit) => describeExit(exit, log)), terminate: () => {} };
}

function describeExit(exit: ExitInfo, log: StderrLog): CgiExit {
  if (exit.spawnError) log.line(`cgi-host: cannot start the script (${exit.spawnError})`);
  else if (exit.signal) log.line(`cgi-host: script killed by ${exit.signal}`);
  else if (exit.exitCode !== 0) log.line(`cgi-host: script exited with code ${exit.exitCode}`);
  return { exitCode: exit.exitCode, signal: exit.signal, stderr: log.text() };
}

/** Process groups of scripts still running, killed if this process exits first (they are detached). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number | undefined): void {
  if (pid === undefined || !POSIX) return;
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of liveGroups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

function closeOf(stream: Readable): Promise<void> {
  return new Promise<void>((resolveClosed) => stream.once('close', () => resolveClosed()));
}

function ignore(): void {}

/** Resolves with undefined after `ms`, without keeping the process alive. */
export function delay(ms: number): Promise<undefined> {
  return new Promise((resolveDelay) => setTimeout(() => resolveDelay(undefined), ms).unref());
}
