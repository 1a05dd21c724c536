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
import { connect, type Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import { freePort, listenerBelongsTo } from '../free-port.js';

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

/** A TCP port on 127.0.0.1 for a server this harness starts (see test/free-port.ts for why not listen(0)). */
export const findFreePort = freePort;

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
    await waitForPort(port, child.pid ?? 0, exited, START_TIMEOUT_MS);
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

/**
 * Resolves once 127.0.0.1:port accepts a connection from a socket that process `pid` (or a child of it) holds;
 * rejects when the server exits first, time runs out, or another process answers on the port.
 */
async function waitForPort(port: number, pid: number, exited: Promise<number | string>, timeoutMs: number): Promise<void> {
  let exitStatus: number | string | null = null;
  void exited.then((status) => (exitStatus = status));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exitStatus !== null) throw new Error(`the server exited (${exitStatus})`);
    if (await canConnect(port)) {
      if (await listenerBelongsTo(port, pid)) return;
      throw new Error(`port ${port} is in use by another process than the server started (pid ${pid})`);
    }
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

// --- FastCGI: nginx, tsgi backends, libfcgi's cgi-fcgi (used by test/e2e/fastcgi-*.test.ts) ---

/** The nginx binary (Debian's path unless TSGI_NGINX says otherwise). */
export const NGINX_BIN = process.env.TSGI_NGINX ?? '/usr/sbin/nginx';
/** libfcgi's cgi-fcgi (Debian package libfcgi-bin), used as an independent FastCGI client. */
export const CGI_FCGI_BIN = process.env.TSGI_CGI_FCGI ?? '/usr/bin/cgi-fcgi';
/** Apache's mod_fcgid (Debian package libapache2-mod-fcgid). */
export const FCGID_MODULE = '/usr/lib/apache2/modules/mod_fcgid.so';
/** Apache's mod_proxy_fcgi (part of apache2 itself on Debian). */
export const PROXY_FCGI_MODULE = '/usr/lib/apache2/modules/mod_proxy_fcgi.so';
/** The CLI the backends run (it loads dist/: run `npm run build` first). */
export const TSGI_BIN = join(PROJECT_ROOT, 'bin', 'tsgi.js');
/** How long a tsgi backend gets to print its startup line (tsx compiles the app on first load). */
export const BACKEND_START_TIMEOUT_MS = 20_000;

/**
 * Checks that every file in `files` exists (executable when `executable`), naming the Debian package to
 * install when one is missing.
 */
export function checkFiles(files: Array<{ path: string; package: string; executable?: boolean }>): Availability {
  for (const file of files) {
    try {
      accessSync(file.path, file.executable === false ? constants.R_OK : constants.X_OK);
    } catch {
      return { available: false, reason: `${file.path} not found (apt-get install ${file.package})` };
    }
  }
  return { available: true, reason: `${files.map((file) => file.path).join(', ')} found` };
}

/** Whether `dist/` (what bin/tsgi.js runs) has the FastCGI transport: it needs `npm run build`. */
export function checkFastCgiBuild(): Availability {
  try {
    accessSync(join(PROJECT_ROOT, 'dist', 'servers', 'fastcgi.js'), constants.R_OK);
    return { available: true, reason: 'dist/servers/fastcgi.js found' };
  } catch {
    return { available: false, reason: 'dist/servers/fastcgi.js not found (npm run build)' };
  }
}

/** The first unavailable of `list`, else an available one. */
export function allAvailable(...list: Availability[]): Availability {
  return list.find((item) => !item.available) ?? { available: true, reason: list.map((item) => item.reason).join('; ') };
}

/**
 * Starts nginx (`nginx -p ROOT -e LOG -c CONF -g 'daemon off;'`) from a conf/ template such as
 * "nginx-fastcgi.conf". `-e` points nginx's startup log at the scratch directory too, so it never touches
 * /var/log/nginx.
 */
export async function startNginx(confName: string, options: StartOptions): Promise<ServerHandle> {
  return launch({
    label: options.label ?? 'nginx',
    confName,
    confTemplate: await readFile(join(PROJECT_ROOT, 'conf', confName), 'utf8'),
    binary: NGINX_BIN,
    args: (confFile) => {
      const root = dirname(confFile);
      return ['-p', `${root}/`, '-e', join(root, 'logs', 'error.log'), '-c', confFile, '-g', 'daemon off;'];
    },
    vars: { ...options.vars },
  });
}

/**
 * Starts nginx from a configuration template the test wrote itself (same placeholders as the conf/ files),
 * for setups no shipped recipe covers (an upstream with a small keepalive pool, proxy_pass to HTTP workers).
 */
export async function startNginxWithTemplate(template: string, options: StartOptions): Promise<ServerHandle> {
  return launch({
    label: options.label ?? 'nginx',
    confName: 'nginx.conf',
    confTemplate: template,
    binary: NGINX_BIN,
    args: (confFile) => {
      const root = dirname(confFile);
      return ['-p', `${root}/`, '-e', join(root, 'logs', 'error.log'), '-c', confFile, '-g', 'daemon off;'];
    },
    vars: { ...options.vars },
  });
}

/** Where a tsgi FastCGI backend listens: TCP on 127.0.0.1 (a free port) or a unix socket in a scratch dir. */
export type BackendTransport = 'tcp' | 'unix';

/** A `tsgi serve --fastcgi` process started by this harness. */
export interface BackendHandle {
  /** The address as passed to --fastcgi: "127.0.0.1:PORT" or "unix:/path". */
  address: string;
  /** The same address in nginx's `server` syntax: "127.0.0.1:PORT" or "unix:/path". */
  nginxAddress: string;
  /** TCP port (0 for a unix socket). */
  port: number;
  /** The unix socket path ("" for TCP). */
  socketPath: string;
  /** The pid the startup line announced. */
  pid: number;
  /** The startup line, e.g. "tsgi: serving app.ts over FastCGI at 127.0.0.1:9001 (pid 123)". */
  startupLine: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_MS; removes the scratch directory. */
  stop(): Promise<void>;
}

/** Options for startBackend. */
export interface BackendOptions {
  /** --mount PREFIX. */
  mount?: string;
  /** Extra CLI arguments. */
  args?: string[];
  /** Extra environment variables for the backend. */
  env?: Record<string, string>;
  /** SCGI / uwsgi (issue 4): the protocol the backend serves (`--fastcgi`, `--scgi` or `--uwsgi`). Default 'fastcgi'. */
  protocol?: 'fastcgi' | 'scgi' | 'uwsgi' | 'http';
}

/**
 * Spawns `node bin/tsgi.js serve MODULE --fastcgi ADDR [--mount M]` detached (its own process group, so a
 * stop takes any children with it), waits for its startup line `tsgi: serving ... over FastCGI at ADDR (pid
 * N)`, and returns the pid it announced. A unix socket gets `--socket-mode 666`, so that a web server worker
 * running as another user can connect.
 */
export async function startBackend(module: string, transport: BackendTransport, options: BackendOptions = {}): Promise<BackendHandle> {
  const dir = await makeScratchDir('backend');
  const port = transport === 'tcp' ? await findFreePort() : 0;
  const socketPath = transport === 'unix' ? join(dir, 'tsgi.sock') : '';
  const address = transport === 'tcp' ? `127.0.0.1:${port}` : `unix:${socketPath}`;
  const args = [TSGI_BIN, 'serve', module, `--${options.protocol ?? 'fastcgi'}`, address];
  if (options.mount !== undefined) args.push('--mount', options.mount);
  // The web server's worker runs as another account (www-data): it needs write permission to connect.
  if (socketPath) args.push('--socket-mode', '666');
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    detached: true,
    env: { PATH: `${NODE_DIR}:/usr/local/bin:/usr/bin:/bin`, LANG: 'C', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | string>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? signal ?? 'unknown'));
    child.once('error', (error) => resolveExit(error.message));
  });
  let exitStatus: number | string | null = null;
  void exited.then((status) => (exitStatus = status));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
      if (timedOut) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
        await exited;
      }
    }
    if (process.env.TSGI_E2E_KEEP !== '1') await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + BACKEND_START_TIMEOUT_MS;
  let match: RegExpExecArray | null = null;
  while (!(match = /^tsgi: serving .* over (?:FastCGI|SCGI|uwsgi|HTTP) at .* \(pid (\d+)\)$/m.exec(output))) {
    if (exitStatus !== null || Date.now() > deadline) {
      await stop();
      const why = exitStatus !== null ? `exited (${exitStatus})` : `printed no startup line within ${BACKEND_START_TIMEOUT_MS} ms`;
      throw new Error(`e2e: tsgi backend ${args.slice(1).join(' ')} ${why}\n--- output ---\n${output}`);
    }
    await sleep(25);
  }
  let stopped: Promise<void> | null = null;
  return {
    address,
    nginxAddress: transport === 'tcp' ? address : `unix:${socketPath}`,
    port,
    socketPath,
    pid: Number(match[1]),
    startupLine: match[0],
    output: () => output,
    stop: () => (stopped ??= stop()),
  };
}

/** The number of open file descriptors of process `pid` (entries of /proc/PID/fd; Linux only). */
export async function countFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** The parent pid of `pid` (from /proc/PID/stat), or null when it is gone. */
async function parentOf(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  // The command name (field 2) is in parentheses and may hold spaces: read after the last ")".
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields?.[1] !== undefined ? Number(fields[1]) : null;
}

/**
 * Pids of the descendants of `ancestor` whose command line contains `needle`: the processes a web server
 * spawned (mod_fcgid, lighttpd bin-path), told apart from those of other servers running the same command.
 */
export async function findDescendants(ancestor: number, needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await findProcesses(needle)) {
    let current: number | null = pid;
    for (let depth = 0; current !== null && current > 1 && depth < 16; depth++) {
      current = await parentOf(current);
      if (current === ancestor) {
        found.push(pid);
        break;
      }
    }
  }
  return found;
}

/**
 * How many TCP connections to or from 127.0.0.1:`port` are in TIME_WAIT (from /proc/net/tcp; Linux only).
 * Each connection closed in the last minute leaves one: a count that grows with the requests shows a
 * connection per request.
 */
export async function countTimeWait(port: number): Promise<number> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const [, local = '', remote = '', state = ''] = line.trim().split(/\s+/);
      if (state === '06' && (local.endsWith(`:${hexPort}`) || remote.endsWith(`:${hexPort}`))) count++;
    }
  }
  return count;
}
