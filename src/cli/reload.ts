/**
 * `tsgi serve --reload`, for development: this process watches the app's directory and runs the server as a
 * child process (the same command without --reload), replacing it when a file changes. A fresh process is the
 * only way to drop every loaded module (ESM has no cache to clear).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';

// Not `import ... from 'node:fs'`: in an ES module that reads every export of fs and loads fs/promises, readline and
// the streams, which a `tsgi serve` master (this module is on its path) need not hold (see serve-plan.ts).
const { readdirSync, watch } = process.getBuiltinModule('node:fs');

/** The environment variable that marks the child: it holds the watching parent's pid. */
export const RELOAD_CHILD_ENV = 'TSGI_RELOAD_CHILD';
/** Changes closer together than this restart the server once. */
export const RELOAD_DEBOUNCE_MS = 100;
/** Directories never watched. */
export const RELOAD_IGNORED_DIRS: ReadonlySet<string> = new Set(['node_modules', '.git', 'dist']);
/** Past this many watched directories the rest are left out (each costs an inotify watch). */
const MAX_WATCHED_DIRS = 4096;
/** How long a stopping child gets beyond its own graceful timeout before SIGKILL. */
const KILL_MARGIN_MS = 2_000;

/**
 * The files whose changes restart the server: code and JSON. Not logs, editors' swap files or anything the
 * server itself writes (an access log under the app's directory would otherwise restart it at every request).
 */
export const RELOAD_FILE_RE = /^(?!\.#).*\.(?:[cm]?[jt]s|[jt]sx|json)$/;

/** Options for runWithReload. */
export interface ReloadOptions {
  /** The child's command line after `node`: the CLI script and its arguments (without --reload). */
  childArgs: string[];
  /** The directory to watch (recursively, minus RELOAD_IGNORED_DIRS). */
  watchDir: string;
  /** How long the child may take to stop (its --graceful-timeout), in ms. */
  stopTimeoutMs: number;
  /** Where the log lines go. */
  stderr: NodeJS.WritableStream;
}

/** True in the server process a reloading parent started (so it must not reload itself). */
export function isReloadChild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[RELOAD_CHILD_ENV] !== undefined && env[RELOAD_CHILD_ENV] === String(process.ppid);
}

/**
 * In a reload child: exit when the watching parent goes away (its IPC channel closes), even if it was killed
 * with SIGKILL, so no server is left orphaned holding the port.
 */
export function followReloadParent(): void {
  if (!isReloadChild() || typeof process.send !== 'function') return;
  process.channel?.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

/**
 * Runs the server as a child and restarts it when a file matching RELOAD_FILE_RE changes under `watchDir`.
 * A child that exits by itself (a crash, a syntax error) is not restarted until the next change: no restart
 * loop. SIGINT/SIGTERM stop the child (SIGTERM, SIGKILL after stopTimeoutMs + KILL_MARGIN_MS) and resolve
 * with 0.
 */
export function runWithReload(options: ReloadOptions): Promise<number> {
  const { stderr, watchDir } = options;
  const log = (text: string): void => void stderr.write(`tsgi: reload: ${text}\n`);
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let restarting = false;
  let timer: NodeJS.Timeout | null = null;
  let changed: string | null = null;

  const start = (): void => {
    const started = spawn(process.execPath, [...process.execArgv, ...options.childArgs], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [RELOAD_CHILD_ENV]: String(process.pid) },
    });
    child = started;
    exited = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        if (child === started) child = null;
        if (!stopping && !restarting) {
          log(`the server exited (${signal ?? `status ${code}`}); waiting for a file change to start it again`);
        }
        resolve();
      });
      started.once('error', (error) => {
        log(`cannot start the server (${error.message})`);
        if (child === started) child = null;
        resolve();
      });
    });
  };

  const stopChild = async (): Promise<void> => {
    const running = child;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    running.kill('SIGTERM');
    const killTimer = setTimeout(() => {
      log(`the server did not stop within ${options.stopTimeoutMs + KILL_MARGIN_MS} ms; killing it`);
      running.kill('SIGKILL');
    }, options.stopTimeoutMs + KILL_MARGIN_MS);
    await exited;
    clearTimeout(killTimer);
  };

  const restart = async (): Promise<void> => {
    if (stopping || restarting) return;
    restarting = true;
    const what = changed ?? 'a file';
    changed = null;
    log(`${what} changed; restarting the server`);
    await stopChild();
    restarting = false;
    if (stopping) return;
    start();
    // A change during the restart: go again.
    if (changed !== null) schedule(changed);
  };

  const schedule = (file: string): void => {
    changed ??= file;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void restart();
    }, RELOAD_DEBOUNCE_MS);
  };

  const watcher = watchTree(watchDir, (path) => schedule(relative(process.cwd(), path) || path), log);
  log(`watching ${relative(process.cwd(), watchDir) || '.'} (${watcher.count()} directories; not ${[...RELOAD_IGNORED_DIRS].join(', ')}) in pid ${process.pid}`);
  start();

  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log(`${signal} received; stopping the server`);
      if (timer) clearTimeout(timer);
      watcher.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      void stopChild().then(() => resolve(0));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

interface TreeWatcher {
  count(): number;
  close(): void;
}

/**
 * Watches `root` and every directory below it (except RELOAD_IGNORED_DIRS) with one non-recursive fs.watch
 * each, adding directories created later. Node 20's recursive fs.watch on Linux would also walk node_modules.
 */
function watchTree(root: string, onChange: (path: string) => void, log: (text: string) => void): TreeWatcher {
  const watchers = new Map<string, FSWatcher>();
  let warned = false;
  const add = (dir: string): void => {
    if (watchers.has(dir)) return;
    if (watchers.size >= MAX_WATCHED_DIRS) {
      if (!warned) log(`more than ${MAX_WATCHED_DIRS} directories; the rest are not watched`);
      warned = true;
      return;
    }
    let entries;
    try {
      // Throws for a file (the event was about a file) and for a directory already gone.
      entries = readdirSync(dir, { withFileTypes: true });
      const watcher = watch(dir, { persistent: true }, (_event, name) => {
        if (name === null) return;
        const base = name.toString();
        if (RELOAD_IGNORED_DIRS.has(base)) return;
        const file = join(dir, base);
        if (RELOAD_FILE_RE.test(base)) {
          onChange(file);
          return;
        }
        // A new directory gets watched too (a 'rename' event is a creation or a removal).
        add(file);
      });
      watcher.on('error', () => {
        watcher.close();
        watchers.delete(dir);
      });
      watchers.set(dir, watcher);
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory() && !RELOAD_IGNORED_DIRS.has(entry.name)) add(join(dir, entry.name));
    }
  };
  add(root);
  return {
    count: () => watchers.size,
    close() {
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
