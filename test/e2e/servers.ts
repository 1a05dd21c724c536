/**
 * The harness the e2e tests use to drive real web servers: it builds the cgi-bin/ examples, renders a conf/
 * template into a scratch directory, starts Apache or lighttpd in the foreground on a free 127.0.0.1 port,
 * waits until the port answers, and stops exactly the process it started.
 *
 * Environment:
 * - TSGI_E2E=required: a missing server binary fails the suite instead of skipping it (CI sets this).
 * - TSGI_APACHE2, TSGI_LIGHTTPD: other binaries than Debian's /usr/sbin/apache2 and /usr/sbin/lighttpd.
 * - TSGI_E2E_KEEP=1: keep the scratch directories (logs, rendered confs) for a post-mortem.
 *
 * The web servers run CGI scripts as an unprivileged account (www-data when we are root, else ourselves), so
 * every scratch directory is made world-traversable (0755) and scripts are 0755.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';

/** The repository root. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The Apache binary (Debian's path unless TSGI_APACHE2 says otherwise). */
export const APACHE_BIN = process.env.TSGI_APACHE2 ?? '/usr/sbin/apache2';
/** The lighttpd binary (Debian's path unless TSGI_LIGHTTPD says otherwise). */
export const LIGHTTPD_BIN = process.env.TSGI_LIGHTTPD ?? '/usr/sbin/lighttpd';
/** True when a missing server must fail the run (TSGI_E2E=required). */
export const E2E_REQUIRED = process.env.TSGI_E2E === 'required';
/** How long a server gets to accept connections after it was started. */
export const START_TIMEOUT_MS = 15_000;
/** How long a server gets to exit after SIGTERM before it is sent SIGKILL. */
export const STOP_TIMEOUT_MS = 10_000;
/** The directory of the node binary running the tests: the confs put it in the scripts' PATH. */
export const NODE_DIR = dirname(process.execPath);

/** Whether a server binary can be used, and if not, why. */
export interface Availability {
  available: boolean;
  reason: string;
}

/** Checks that `binary` exists and is executable. Synchronous, so it can gate `describe.skipIf`. */
export function checkBinary(binary: string): Availability {
  try {
    accessSync(binary, constants.X_OK);
    return { available: true, reason: `${binary} found` };
  } catch {
    return { available: false, reason: `${binary} not found (apt-get install ${basename(binary)})` };
  }
}

/**
 * Declares a describe block that needs `availability`: skipped, with the reason in its title, when the binary
 * is missing; or, under TSGI_E2E=required, replaced by a failing test saying what is missing.
 */
export function describeWithServer(title: string, availability: Availability, body: () => void): void {
  if (!availability.available && E2E_REQUIRED) {
    describe(title, () => {
      it('has its web server installed (TSGI_E2E=required)', () => {
        throw new Error(`e2e: ${availability.reason}; TSGI_E2E=required forbids skipping`);
      });
    });
    return;
  }
  const suffix = availability.available ? '' : ` [skipped: ${availability.reason}]`;
  describe.skipIf(!availability.available)(`${title}${suffix}`, body);
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error('e2e: no port assigned'))));
    });
  });
}

/**
 * Replaces each `{{NAME}}` in `template` with `vars.NAME`. Throws when the template names a placeholder that
 * `vars` lacks, so a conf never reaches a server half-rendered.
 */
export function renderConf(template: string, vars: Record<string, string>): string {
  const missing = new Set<string>();
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_match, name: string) => {
    const value = vars[name];
    if (value === undefined) {
      missing.add(name);
      return '';
    }
    return value;
  });
  if (missing.size > 0) throw new Error(`e2e: conf placeholders without a value (${[...missing].join(', ')})`);
  return out;
}

/**
 * Bundles every cgi-bin/*.ts into `<outDir>/<name>.cgi` (0755, `#!/usr/bin/env node`) and returns the
 * names built. `outDir` and its parents up to the temp dir are made traversable for the web server's user.
 */
export async function buildScripts(outDir: string): Promise<string[]> {
  const sourceDir = join(PROJECT_ROOT, 'cgi-bin');
  const names = (await readdir(sourceDir)).filter((file) => file.endsWith('.ts')).map((file) => file.slice(0, -3));
  await mkdir(outDir, { recursive: true });
  await chmod(outDir, 0o755);
  await Promise.all(names.map((name) => buildCgi(join(sourceDir, `${name}.ts`), join(outDir, `${name}.cgi`))));
  return names.sort();
}

/** A scratch directory for one server instance; world-traversable so the server's user can reach it. */
export async function makeScratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tsgi-e2e-${prefix}-`));
  await chmod(dir, 0o755);
  return dir;
}

/** The account CGI scripts run as: www-data (or nobody) when we are root, else ourselves. */
export function serverAccount(): { user: string; group: string; uid: number; gid: number } {
  const me = userInfo();
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((line) => line.split(':'));
  const groups = readFileSync('/etc/group', 'utf8').split('\n').map((line) => line.split(':'));
  const groupName = (gid: number): string => groups.find((g) => g[2] === String(gid))?.[0] ?? String(gid);
  if (me.uid !== 0) return { user: me.username, group: groupName(me.gid), uid: me.uid, gid: me.gid };
  for (const candidate of ['www-data', 'nobody']) {
    const entry = passwd.find((p) => p[0] === candidate);
    if (entry) {
      const uid = Number(entry[2]);
      const gid = Number(entry[3]);
      return { user: candidate, group: groupName(gid), uid, gid };
    }
  }
  throw new Error('e2e: running as root but neither www-data nor nobody exists to run CGI scripts as');
}

/** A running web server started by this harness. */
export interface ServerHandle {
  /** e.g. "http://127.0.0.1:41234" */
  baseUrl: string;
  port: number;
  /** The scratch directory (rendered conf, logs, run files). */
  root: string;
  /** The pid of the server process this harness started. */
  pid: number;
  /**
   * The server's error log so far, followed by what the server process wrote to its own stdout/stderr
   * (lighttpd run with -D leaves its CGI scripts' stderr there: they inherit its fd 2).
   */
  errorLog(): Promise<string>;
  /** Stops the server (SIGTERM, then SIGKILL after STOP_TIMEOUT_MS) and removes the scratch directory. */
  stop(): Promise<void>;
}

/** Options shared by startApache and startLighttpd. */
export interface StartOptions {
  /** The directory of built *.cgi scripts ({{CGI_DIR}}); not every conf has one. */
  cgiDir?: string;
  /** Extra placeholder values (e.g. DOC_ROOT for apache-htaccess.conf). */
  vars?: Record<string, string>;
  /** A name for the scratch directory. */
  label?: string;
}

interface LaunchSpec {
  label: string;
  confTemplate: string;
  confName: string;
  binary: string;
  args: (confFile: string) => string[];
  vars: Record<string, string>;
}

/**
 * Starts Apache (`apache2 -f CONF -DFOREGROUND`) from a conf/ template such as "apache-cgi.conf". The
 * template's placeholders are filled from a fresh scratch directory, a free port and `options.vars`.
 */
export async function startApache(confName: string, options: StartOptions): Promise<ServerHandle> {
  return launch({
    label: options.label ?? 'apache',
    confName,
    confTemplate: await readFile(join(PROJECT_ROOT, 'conf', confName), 'utf8'),
    binary: APACHE_BIN,
    args: (confFile) => ['-f', confFile, '-DFOREGROUND'],
    vars: { ...(options.cgiDir ? { CGI_DIR: options.cgiDir } : {}), ...options.vars },
  });
}

/** Starts lighttpd (`lighttpd -D -f CONF`) from a conf/ template such as "lighttpd-cgi.conf". */
export async function startLighttpd(confName: string, options: StartOptions): Promise<ServerHandle> {
  return launch({
    label: options.label ?? 'lighttpd',
    confName,
    confTemplate: await readFile(join(PROJECT_ROOT, 'conf', confName), 'utf8'),
    binary: LIGHTTPD_BIN,
    args: (confFile) => ['-D', '-f', confFile],
    vars: { ...(options.cgiDir ? { CGI_DIR: options.cgiDir } : {}), ...options.vars },
  });
}

/** Tries a few ports: another process may take the free port between findFreePort and the server's bind. */
async function launch(spec: LaunchSpec): Promise<ServerHandle> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launchOnce(spec);
    } catch (error) {
      lastError = error;
      if (!/in use|could not bind|can't bind|bind\(\)/i.test(String((error as Error).message))) throw error;
    }
  }
  throw lastError;
}

async function launchOnce(spec: LaunchSpec): Promise<ServerHandle> {
  const root = await makeScratchDir(spec.label);
  const logDir = join(root, 'logs');
  const runDir = join(root, 'run');
  const account = serverAccount();
  for (const dir of [logDir, runDir, join(root, 'htdocs'), join(root, 'uploads')]) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
  }
  // lighttpd opens its logs and spools request bodies after dropping privileges.
  if (userInfo().uid === 0) {
    for (const dir of [logDir, join(root, 'uploads')]) await chown(dir, account.uid, account.gid);
  }
  const port = await findFreePort();
  const vars: Record<string, string> = {
    PORT: String(port),
    ROOT: root,
    LOG_DIR: logDir,
    RUN_DIR: runDir,
    PID_FILE: join(runDir, 'server.pid'),
    USER: account.user,
    GROUP: account.group,
    NODE_DIR,
    ...spec.vars,
  };
  const confFile = join(root, spec.confName);
  await writeFile(confFile, renderConf(spec.confTemplate, vars));
  const errorLogFile = join(logDir, 'error.log');
  const readErrorLog = (): Promise<string> => readFile(errorLogFile, 'utf8').catch(() => '');

  // A minimal environment: the conf, not the caller's shell, decides what the scripts see.
  // detached: the server leads its own process group. Apache's prefork MPM signals its whole process group on
  // shutdown (killpg SIGTERM); sharing ours, it would take the test runner down with it.
  const child = spawn(spec.binary, spec.args(confFile), {
    cwd: root,
    detached: true,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | string>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? signal ?? 'unknown'));
    child.once('error', (error) => resolveExit(error.message));
  });

  const cleanup = async (): Promise<void> => {
    await stopChild(child, exited);
    if (process.env.TSGI_E2E_KEEP !== '1') await rm(root, { recursive: true, force: true });
  };

  try {
    await waitForPort(port, exited, START_TIMEOUT_MS);
  } catch (error) {
    const log = await readErrorLog();
    await cleanup();
    throw new Error(
      `e2e: ${basename(spec.binary)} (${spec.confName}) did not start on 127.0.0.1:${port}: ${(error as Error).message}\n` +
        `--- server output ---\n${output}\n--- error log ---\n${log}`,
    );
  }

  let stopped: Promise<void> | null = null;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    root,
    pid: child.pid ?? 0,
    errorLog: async () => `${await readErrorLog()}${output}`,
    stop: () => (stopped ??= cleanup()),
  };
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects when the server exits first or time runs out. */
async function waitForPort(port: number, exited: Promise<number | string>, timeoutMs: number): Promise<void> {
  let exitStatus: number | string | null = null;
  void exited.then((status) => (exitStatus = status));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitStatus !== null) throw new Error(`the server exited (${exitStatus})`);
    if (await canConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`no connection accepted within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => resolveConnect(false));
  });
}

/** Sends SIGTERM to the child this harness started (only that pid), then SIGKILL if it lingers. */
async function stopChild(child: ChildProcess, exited: Promise<number | string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/**
 * Polls `check` every 100 ms until it returns a value other than undefined/false, or throws after
 * `timeoutMs` with `what` and the last value in the message.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`e2e: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Pids of the processes whose command line contains `needle` (read from /proc; Linux only). */
export async function findProcesses(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.replace(/\0/g, ' ').includes(needle)) pids.push(Number(entry));
  }
  return pids;
}
