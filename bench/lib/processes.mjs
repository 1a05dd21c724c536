/**
 * Child processes of the bench: each long-running one in its own process group (so that the whole tree of a
 * backend, master and workers, can be signalled and measured at once), all stopped on the way out, also on
 * Ctrl-C, SIGTERM, errors and the run's time limit. Plus small helpers: quick commands, free ports, GETs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';

const KILL_TIMEOUT_MS = 5_000;

/** Every process started by startProcess and not yet stopped. */
const running = new Set();
/** Directories to remove on an abrupt exit (signal, time limit). */
const cleanupDirs = new Set();
let exiting = false;

/**
 * Spawns a long-running child in its own process group; keeps the tail of its output for error messages.
 * Returns { name, child, output, exited (promise), exitCode (undefined while running) }.
 */
export function startProcess(name, command, args, { env = process.env, cwd, outputLimit = 4000 } = {}) {
  const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child, output: '', exited: null, exitCode: undefined };
  const keep = (data) => {
    proc.output = (proc.output + data.toString()).slice(-outputLimit);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  proc.exited = new Promise((resolveExit) => {
    child.on('error', (error) => {
      keep(`spawn failed: ${error.message}\n`);
      proc.exitCode = -1;
      resolveExit();
    });
    child.on('exit', (code, signal) => {
      proc.exitCode = code ?? signal;
      resolveExit();
    });
  });
  running.add(proc);
  return proc;
}

/** Sends `signal` to the process group of `proc`; quiet when it is gone. */
export function signalGroup(proc, signal) {
  if (proc.child.pid === undefined) return;
  try {
    process.kill(-proc.child.pid, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM (or `signal`) to the process group, SIGKILL after KILL_TIMEOUT_MS; resolves once the leader exited. */
export async function stopProcess(proc, signal = 'SIGTERM') {
  running.delete(proc);
  if (proc.child.pid === undefined) return;
  if (proc.exitCode === undefined) {
    signalGroup(proc, signal);
    const timer = new Promise((resolveTimer) => setTimeout(resolveTimer, KILL_TIMEOUT_MS).unref());
    if ((await Promise.race([proc.exited.then(() => 'exited'), timer])) !== 'exited') {
      signalGroup(proc, 'SIGKILL');
      await proc.exited;
    }
  }
  // Workers that outlived their leader (a master killed hard) share its group: make sure none is left.
  signalGroup(proc, 'SIGKILL');
}

/** Stops every running child process (all at once). */
export async function stopAll() {
  await Promise.all([...running].map((proc) => stopProcess(proc)));
}

/** Forgets a process that exited by itself (wrk): nothing to stop. */
export function forget(proc) {
  running.delete(proc);
}

/** Process-group ids of everything running now. */
export function runningGroups() {
  return new Set([...running].map((proc) => proc.child.pid).filter((pid) => pid !== undefined));
}

/** Removes `dir` on an abrupt exit too (unless forgotten with keepDir). */
export function removeOnExit(dir) {
  cleanupDirs.add(dir);
}

export function keepDir(dir) {
  cleanupDirs.delete(dir);
}

/** Kills everything synchronously, removes the temp dirs and exits: for signals and the time limit. */
export function abortRun(message, code) {
  if (exiting) return;
  exiting = true;
  process.stderr.write(`\n${message}\n`);
  for (const proc of running) signalGroup(proc, 'SIGKILL');
  for (const dir of cleanupDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

/** Installs the Ctrl-C / SIGTERM handlers and a last-resort kill on exit. */
export function installExitHandlers(prefix) {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => abortRun(`${prefix}: ${signal}, stopping every child process`, 130));
  }
  process.on('exit', () => {
    for (const proc of running) signalGroup(proc, 'SIGKILL');
  });
}

/** Runs a short command to completion (version strings and the like); never throws. */
export function runQuick(command, args, { timeoutMs = 10_000, env, cwd } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs, env, cwd, maxBuffer: 16 * 1024 * 1024 });
  return {
    code: result.status,
    signal: result.signal,
    error: result.error,
    text: `${result.stdout ?? ''}${result.stderr ?? ''}`.trim(),
  };
}

/**
 * Runs a command to completion with its output going to ours (apt-get, npm run build), killed after
 * `timeoutMs`; resolves with the exit code (or the signal's name).
 */
export function runVisible(command, args, { env = process.env, cwd, timeoutMs }) {
  const proc = startProcess(command, command, args, { env, cwd, outputLimit: 20_000 });
  proc.child.stdout.pipe(process.stderr, { end: false });
  proc.child.stderr.pipe(process.stderr, { end: false });
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), timeoutMs);
  return proc.exited.then(() => {
    clearTimeout(timer);
    running.delete(proc);
    return proc.exitCode;
  });
}

/** Asks the kernel for a free loopback port (released at once; fine for a bench machine), never one it gave before in this run. */
export async function findFreePort() {
  // The kernel may give a port it gave before once that listener closed: a port already handed to another
  // row (nginx's, say) would then be taken twice, and the second server fail to start. So each port is handed
  // out once per run.
  for (let attempt = 0; attempt < MAX_PORT_ATTEMPTS; attempt++) {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address();
    server.close();
    await once(server, 'close');
    if (!handedOutPorts.has(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error(`findFreePort: no port not handed out before in ${MAX_PORT_ATTEMPTS} attempts`);
}

/** Ports findFreePort() gave in this run, and how often it asks the kernel for a new one. */
const handedOutPorts = new Set();
const MAX_PORT_ATTEMPTS = 100;

export const sleep = (ms) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** One GET without keep-alive: resolves with status, headers and body (a Buffer); rejects on errors or after timeoutMs. */
export function httpGet(url, timeoutMs = 2_000) {
  return new Promise((resolveGet, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolveGet({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
