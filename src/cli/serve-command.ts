import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { normalizeMount } from '../environ/mount.js';
import { createForwardedPolicy, DEFAULT_FORWARDED_ALLOW_IPS } from '../environ/forwarded-policy.js';
import { DEFAULT_STATUS_ALLOW } from './status/snapshot.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import { dropHttpoxy } from '../servers/httpoxy.js';
import { DEFAULT_MAX_CONNECTIONS } from '../servers/fastcgi/options.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from '../servers/limits.js';
import { describeListenTarget, hasInheritedListenSocket, parseListenTarget, socketActivationTarget, type ListenTarget } from '../servers/listen.js';
import type { App } from '../types.js';
// Loaded when used, so the supervising master loads only what it needs: the config file (--config), the app
// and its server (with no master, or under CGI).
import type { FlagValues } from './config-file.js';
import { parseAppReference } from './load-app.js';
import { followReloadParent, isReloadChild, runWithReload } from './reload.js';
import { CGI_BIN_ENV, cgiBinModulePath, cgiBinPlanOf, DEFAULT_GRACEFUL_TIMEOUT_SECONDS, TRANSPORT_NAMES, type CgiBinPlan, type ServePlan } from './serve-plan.js';
import type { RunningServer } from './start-server.js';

/**
 * Every flag `tsgi serve` accepts, as parseArgs takes them. The help text, the config file's keys and the
 * test that checks the help documents every flag all derive from this table.
 */
export const SERVE_OPTIONS = {
  http: { type: 'string' },
  fastcgi: { type: 'string' },
  scgi: { type: 'string' },
  uwsgi: { type: 'string' },
  cgi: { type: 'boolean' },
  config: { type: 'string', short: 'c' },
  mount: { type: 'string' },
  'socket-mode': { type: 'string' },
  'socket-owner': { type: 'string' },
  'socket-group': { type: 'string' },
  workers: { type: 'string', short: 'w' },
  'max-requests': { type: 'string' },
  'max-requests-jitter': { type: 'string' },
  'max-rss': { type: 'string' },
  timeout: { type: 'string', short: 't' },
  'graceful-timeout': { type: 'string' },
  'max-body': { type: 'string' },
  'max-connections': { type: 'string' },
  'header-timeout': { type: 'string' },
  'body-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'access-log': { type: 'string' },
  'access-log-format': { type: 'string' },
  'error-log': { type: 'string' },
  'slow-log': { type: 'string' },
  'ping-path': { type: 'string' },
  'status-path': { type: 'string' },
  'status-allow': { type: 'string' },
  'forwarded-allow-ips': { type: 'string' },
  'cgi-bin': { type: 'string' },
  'cgi-interpreter': { type: 'string', multiple: true },
  'cgi-env': { type: 'string', multiple: true },
  'cgi-read-ahead': { type: 'boolean' },
  reload: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags that choose a transport: one at most. */
const TRANSPORT_FLAGS = ['http', 'fastcgi', 'scgi', 'uwsgi', 'cgi'] as const;

export const SERVE_USAGE = `usage: tsgi serve [MODULE[:EXPORT]] [options]
       tsgi serve --cgi-bin DIR [options]

Loads the app MODULE exports and serves it until SIGINT or SIGTERM. MODULE is TypeScript or JavaScript
(TypeScript loads without a build step); the app is EXPORT, else the default export, else the export "app".
With --cgi-bin, serves the CGI programs in DIR instead (no MODULE then), over any transport below.

Transports (one at most; ADDR is HOST:PORT, :PORT or PORT (host 127.0.0.1), [V6]:PORT, unix:PATH, fd:N,
or "systemd" / "systemd:NAME" for the socket systemd passed):
  --http ADDR               HTTP/1.1, the embedded server
  --fastcgi ADDR            FastCGI, for nginx fastcgi_pass, Apache mod_proxy_fcgi, lighttpd, mod_fcgid
  --scgi ADDR               SCGI (one request per connection)
  --uwsgi ADDR              the uwsgi protocol (one request per connection)
  --cgi                     answer one CGI request (environment + stdin -> stdout), then exit
  Without one, from how tsgi was started: CGI when GATEWAY_INTERFACE is set (a web server ran it as a CGI
  script); FastCGI on fd 0 when fd 0 is a listening socket (mod_fcgid, lighttpd bin-path, spawn-fcgi); HTTP
  on the socket systemd passed (socket activation); else HTTP on 127.0.0.1:8000.

App:
  MODULE[:EXPORT]           the app to serve (or "app" in the config file)
  --mount PREFIX            the app's mount point: SCRIPT_NAME = PREFIX, PATH_INFO = the rest of the path
                            (FastCGI, SCGI, uwsgi: rebuilt from REQUEST_URI whatever split the web server
                            made); "/" for an app at the root of a site
  -c, --config FILE         read options from FILE: JSON, or a .js/.mjs/.ts module whose default export is
                            the same object; keys are the long flag names plus "app"; flags given here win

CGI programs (cgiBin: what fcgiwrap does for nginx, what ScriptAlias does for Apache):
  --cgi-bin DIR             serve the executables in DIR: /s.cgi/a?x runs DIR/s.cgi with PATH_INFO=/a; a
                            folder URL runs its index.cgi; the mount defaults to "/" here (--mount /cgi-bin
                            puts DIR there); -t, --timeout S is the time a script has to answer (default 30:
                            then 504 and its process group killed; 0 = no limit)
  --cgi-interpreter .EXT=PATH
                            run scripts ending in .EXT as "PATH SCRIPT" (they need not be executable), and
                            try index.EXT for folders too; repeatable (.php=/usr/bin/php-cgi)
  --cgi-env NAME=VALUE      add a variable to every script's environment (GIT_PROJECT_ROOT=/srv/git);
                            repeatable; the rest of this environment reaches scripts only through an
                            allow-list (PATH, LANG, TZ...)
  --cgi-read-ahead          count a request body without a length (chunked) before the script starts, so
                            it gets CONTENT_LENGTH; over 1 MiB: 411 (default: streamed to the script, to EOF
                            on its stdin, without CONTENT_LENGTH, as Apache does)

Processes:
  -w, --workers N           worker processes under a master; "auto" = one per core; 0 = no master, the
                            app runs in this process (default: 1; started on fd 0 by a web server: 0)
  --max-requests N          recycle a worker after N requests (default 0 = never)
  --max-requests-jitter J   add a random 0..J to --max-requests per worker, so workers recycle apart
  --max-rss MIB             recycle a worker, after its in-flight requests, once its RSS passes MIB
  -t, --timeout S           a request busy for S seconds: its stack is logged, it gets 504 if nothing was
                            sent yet, and its worker is replaced (default 0 = no limit)
  --graceful-timeout S      how long stopping workers wait for in-flight requests (default ${DEFAULT_GRACEFUL_TIMEOUT_SECONDS})
  --reload                  development: run the server in a child process and restart it when a file
                            under the app's directory changes (not node_modules, .git, dist)

Limits:
  --max-body SIZE           refuse request bodies over SIZE bytes (suffix k, m or g: 512k, 10m) with 413:
                            a larger declared length before the app runs; a body that grows past SIZE (chunked,
                            or any body over FastCGI) when the app reads past SIZE (default: no limit)
  --max-connections N       connections open at once; more are closed at once (default ${DEFAULT_MAX_CONNECTIONS})
  --header-timeout S        a connection must send a whole request head within S seconds of connecting, else
                            it is closed (408 if it began one) (default ${DEFAULT_HEADER_TIMEOUT_MS / 1000})
  --body-timeout S          a request body that stops arriving for S seconds fails the app's read (408) and
                            its connection closes; an app reading slowly does not count (default ${DEFAULT_BODY_TIMEOUT_MS / 1000})
  --idle-timeout S          FastCGI and HTTP: a kept-alive connection with no request for S seconds is closed
                            (default ${DEFAULT_IDLE_TIMEOUT_MS / 1000}; HTTP: 5, Node's keepAliveTimeout)
  A timeout of 0 is off. Each refusal at a limit is logged, at most a line per limit every 10 s, with the
  flag that changes it.

Logging:
  --access-log FILE         one Combined Log Format line per request, appended to FILE ("-" = stderr)
  --access-log-format F     "combined" (default) or "json": one JSON object a line (time, remote, method,
                            uri, status, bytes, duration_ms, pid...)
  --slow-log S              log a request still running after S seconds, once, and let it go on; with the
                            JavaScript stack when it holds the event loop (default 0 = off)
  --error-log FILE          the servers' log (refused requests, the app's tsgi.errors and errors), appended
                            to FILE, as well as FastCGI's STDERR records (default "-" = stderr)
  Startup lines go to stdout, errors and the app's tsgi.errors to stderr (or --error-log).

Health checks, metrics, proxies:
  --ping-path PATH          answer 200 "pong" at PATH, before the app (with --mount, PATH includes it)
  --status-path PATH        the status page at PATH, before the app: the process tree, requests, refusals,
                            slow requests, requests in flight; ?json, ?openmetrics (Prometheus)
  --status-allow LIST       who may read the status page, by REMOTE_ADDR: addresses and CIDR networks,
                            "*" for all (default ${DEFAULT_STATUS_ALLOW}); others get 403
  --forwarded-allow-ips LIST
                            peers whose X-Forwarded-For/-Proto/-Host and Forwarded fields set the client's
                            address, scheme and host (default ${DEFAULT_FORWARDED_ALLOW_IPS}; "*" any; "" none)

Unix sockets (for unix:PATH addresses):
  --socket-mode MODE        the socket file's mode, octal (660: the web server's group may connect)
  --socket-owner USER       its owner (name or uid)
  --socket-group GROUP      its group (name or gid)

  -h, --help                this help

Signals:
  SIGINT, SIGTERM           stop accepting, let in-flight requests finish (up to --graceful-timeout), exit 0;
                            a second one exits at once
  SIGHUP                    (with workers) reload the app: new workers start, old ones stop once the new
                            ones accept, no request is lost
  SIGTTIN, SIGTTOU          (with workers) one worker more, one fewer
  Under CGI the process serves one request; SIGTERM from the web server aborts it.

Config file example (tsgi.json; relative paths in it are relative to the file):
  { "app": "app.ts", "fastcgi": "unix:/run/app.sock", "socket-mode": "660", "workers": 4,
    "max-requests": 1000, "max-requests-jitter": 100, "max-body": "10m", "access-log": "logs/access.log" }
  { "cgi-bin": "cgi-bin", "fastcgi": "127.0.0.1:9000", "mount": "/cgi-bin",
    "cgi-interpreter": { ".php": "/usr/bin/php-cgi" }, "cgi-env": { "GIT_PROJECT_ROOT": "/srv/git" } }
  (repeatable flags take a list of strings, or an object of NAME: VALUE)

Examples:
  tsgi serve app.ts                                    HTTP on http://127.0.0.1:8000/
  tsgi serve app.ts:api --http 0.0.0.0:8080 -w auto    a named export, every interface, one worker per core
  tsgi serve app.ts --fastcgi 127.0.0.1:9000 --mount /app
  tsgi serve app.ts --fastcgi unix:/run/app.sock --socket-mode 660 --socket-group www-data
  tsgi serve app.ts --reload --access-log -            development
  tsgi serve -c tsgi.json --workers 2                  options from a file, one overridden
  tsgi serve --cgi-bin cgi-bin --mount /cgi-bin        http://127.0.0.1:8000/cgi-bin/hello.cgi
  tsgi serve --cgi-bin /srv/cgi --fastcgi unix:/run/cgi.sock -w 4 --cgi-interpreter .php=/usr/bin/php-cgi
`;

export type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** A usage error: reported with a hint to --help and exit status 2. */
class UsageError extends Error {}

/**
 * The `tsgi serve` verb. Resolves with the exit status on a usage error (2), a failure to start (1) or after
 * `--help` (0); otherwise it serves until a signal ends the process. Under CGI it answers one request and
 * exits the process itself (once stdout and the access log are flushed).
 */
export async function runServeCommand(args: string[], io: Io = process): Promise<number> {
  let values: FlagValues;
  let reference: string | undefined;
  let configFile: typeof import('./config-file.js') | null = null;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: SERVE_OPTIONS });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (parsed.values.help) {
      io.stdout.write(SERVE_USAGE);
      return 0;
    }
    const [positional, ...rest] = parsed.positionals;
    if (rest.length > 0) throw new UsageError(`expected one MODULE[:EXPORT] (got ${parsed.positionals.join(' ')})`);
    values = parsed.values;
    reference = positional;
    // httpoxy: loading servers/httpoxy.js dropped HTTP_PROXY if GATEWAY_INTERFACE is set; `--cgi` says CGI too,
    // before a config module runs.
    if (values.cgi === true) dropHttpoxy(process.env, true);
    if (typeof values.config === 'string') {
      configFile = await import('./config-file.js');
      const config = await configFile.loadConfigFile(values.config, SERVE_OPTIONS);
      values = configFile.mergeConfig(config.values, values, TRANSPORT_FLAGS);
      reference ??= config.app;
    }
    const transports = TRANSPORT_FLAGS.filter((flag) => values[flag] !== undefined && values[flag] !== false);
    if (transports.length > 1) throw new UsageError(`${transports.map((flag) => `--${flag}`).join(' and ')} exclude each other`);
    if (values['cgi-bin'] !== undefined) {
      if (reference !== undefined) throw new UsageError(`--cgi-bin DIR serves CGI programs, not an app: give one or the other (got ${reference})`);
      // Every process that loads the app (this one, workers, a --reload child) gets cgiBin() from this plan.
      const cgiBinPlan = cgiBinPlanOf(values, process.cwd()) as CgiBinPlan;
      process.env[CGI_BIN_ENV] = JSON.stringify(cgiBinPlan);
      reference = cgiBinModulePath();
    } else {
      const stray = ['cgi-interpreter', 'cgi-env', 'cgi-read-ahead'].filter((flag) => values[flag] !== undefined);
      if (stray.length > 0) throw new UsageError(`${stray.map((flag) => `--${flag}`).join(' and ')} need${stray.length === 1 ? 's' : ''} --cgi-bin DIR`);
    }
    if (reference === undefined) throw new UsageError('expected MODULE[:EXPORT] (or "app" in the config file), or --cgi-bin DIR');
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`tsgi serve: ${error.message}\nRun "tsgi serve --help" for the options.\n`);
      return 2;
    }
    io.stderr.write(`${(error as Error).message}\n`);
    return configFile !== null && error instanceof configFile.ConfigError ? 2 : 1;
  }

  // CGI first: a web server that runs tsgi as a CGI script sets GATEWAY_INTERFACE (RFC 3875 §4.1.4), and
  // stdin is then a pipe (or, under mod_cgid, a socket that is not listening).
  const explicitTransport = TRANSPORT_FLAGS.some((flag) => values[flag] !== undefined && values[flag] !== false);
  if (values.cgi === true || (!explicitTransport && process.env.GATEWAY_INTERFACE)) {
    return serveCgi(reference, values, io);
  }

  let plan: ServePlan;
  try {
    plan = buildPlan(reference, values);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  if (plan.reload) {
    if (plan.target.kind === 'fd') {
      io.stderr.write(`tsgi serve: --reload needs an address of its own (not ${describeListenTarget(plan.target)}): it restarts the server\n`);
      return 1;
    }
    const { modulePath } = parseAppReference(plan.reference);
    return runWithReload({
      childArgs: [process.argv[1] ?? 'tsgi', 'serve', ...args.filter((arg) => arg !== '--reload')],
      watchDir: plan.cgiBin?.folder ?? dirname(resolve(plan.cwd, modulePath)),
      stopTimeoutMs: plan.gracefulTimeoutSeconds * 1000,
      stderr: io.stderr,
    });
  }
  followReloadParent();
  if (plan.workers > 0) return (await import('./cluster/master.js')).runMaster(plan, io);
  return serveInProcess(plan, io);
}

/**
 * Turns the merged flag values into a ServePlan. Throws an Error with a clear message for a bad value. With
 * --cgi-bin: the plan's `cgiBin` and label; the mount defaults to the site root ("/": the path is rebuilt from
 * REQUEST_URI on every transport, as a cgi-bin needs; --mount /cgi-bin puts the folder there), and --timeout
 * is the scripts' time to answer (cgiBin's timeoutMs), not the workers' (scripts run in processes of their
 * own: a slow one blocks no worker).
 */
export function buildPlan(reference: string, values: FlagValues): ServePlan {
  const text = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };
  let transport: ServePlan['transport'];
  let target: ListenTarget;
  let inherited = false;
  const http = text('http');
  const fastcgi = text('fastcgi');
  const scgi = text('scgi');
  const uwsgi = text('uwsgi');
  // ADDR "systemd" (or "systemd:NAME", a name from the .socket unit's FileDescriptorName=) = the socket systemd
  // passed (socket activation); with no transport flag, a socket-activated tsgi serves HTTP on it. When an ADDR
  // asks for it and it is missing, the error says why (a wrapper's pid, no variables, LISTEN_FDS=0).
  const isSystemd = (address: string | undefined): address is string => address === 'systemd' || (address?.startsWith('systemd:') ?? false);
  const wanted = [http, fastcgi, scgi, uwsgi].find(isSystemd);
  const activated = socketActivationTarget(process.env, process.pid, {
    required: wanted !== undefined,
    ...(wanted?.startsWith('systemd:') ? { name: wanted.slice('systemd:'.length) } : {}),
  });
  const addressOf = (address: string): ListenTarget => (isSystemd(address) && activated ? activated : parseListenTarget(address));
  if (fastcgi !== undefined) {
    transport = 'fastcgi';
    target = addressOf(fastcgi);
  } else if (scgi !== undefined) {
    transport = 'scgi';
    target = addressOf(scgi);
  } else if (uwsgi !== undefined) {
    transport = 'uwsgi';
    target = addressOf(uwsgi);
  } else if (http !== undefined) {
    transport = 'http';
    target = addressOf(http);
  } else if (activated) {
    transport = 'http';
    target = activated;
  } else if (hasInheritedListenSocket()) {
    transport = 'fastcgi';
    target = { kind: 'fd', fd: 0 };
    inherited = true;
  } else {
    transport = 'http';
    target = parseListenTarget('127.0.0.1:8000');
  }
  let mode: number | undefined;
  const socketMode = text('socket-mode');
  if (socketMode !== undefined) {
    if (!/^[0-7]{3,4}$/.test(socketMode)) throw new Error(`tsgi serve: --socket-mode is octal, like 660 (${socketMode})`);
    mode = Number.parseInt(socketMode, 8);
  }
  const mount = text('mount');
  const maxBody = text('max-body');
  const accessLog = text('access-log');
  const errorLog = text('error-log');
  const workers = text('workers');
  const cgiBinPlan = cgiBinPlanOf(values, process.cwd());
  return {
    reference,
    ...(cgiBinPlan !== undefined ? { cgiBin: cgiBinPlan, label: `cgi-bin ${cgiBinPlan.folder}` } : {}),
    cwd: process.cwd(),
    transport,
    target,
    ...(mount !== undefined ? { mount: normalizeMount(mount) } : cgiBinPlan !== undefined ? { mount: '' } : {}),
    socket: {
      ...(mode !== undefined ? { mode } : {}),
      ...(text('socket-owner') !== undefined ? { owner: text('socket-owner') as string } : {}),
      ...(text('socket-group') !== undefined ? { group: text('socket-group') as string } : {}),
    },
    ...(maxBody !== undefined ? { maxBodyBytes: parseSize(maxBody, '--max-body') } : {}),
    ...(accessLog !== undefined ? { accessLog } : {}),
    ...(errorLog !== undefined ? { errorLog } : {}),
    // Started by a web server on fd 0: it manages the processes, so no master of our own unless asked.
    workers: workers !== undefined ? parseWorkers(workers) : inherited ? 0 : DEFAULT_WORKERS,
    maxRequests: parseCount(text('max-requests'), '--max-requests', 0),
    maxRequestsJitter: parseCount(text('max-requests-jitter'), '--max-requests-jitter', 0),
    maxRssMiB: parseCount(text('max-rss'), '--max-rss', 0),
    timeoutSeconds: cgiBinPlan !== undefined ? 0 : parseSeconds(text('timeout'), '--timeout', 0),
    gracefulTimeoutSeconds: parseSeconds(text('graceful-timeout'), '--graceful-timeout', DEFAULT_GRACEFUL_TIMEOUT_SECONDS),
    maxConnections: parseMaxConnections(text('max-connections')),
    headerTimeoutMs: parseTimeoutMs(text('header-timeout'), '--header-timeout', DEFAULT_HEADER_TIMEOUT_MS),
    bodyTimeoutMs: parseTimeoutMs(text('body-timeout'), '--body-timeout', DEFAULT_BODY_TIMEOUT_MS),
    // Unset: each server's own default (FastCGI 30 s, HTTP 5 s: Node's keepAliveTimeout).
    ...(text('idle-timeout') !== undefined ? { idleTimeoutMs: parseTimeoutMs(text('idle-timeout'), '--idle-timeout', DEFAULT_IDLE_TIMEOUT_MS) } : {}),
    // The server a reloading parent runs must not reload itself (the flag may come from a config file).
    reload: values.reload === true && !isReloadChild(),
    ...healthPlan(text),
  };
}

/** The health, metrics and proxy flags, checked (a bad value fails at start-up, naming the flag). */
function healthPlan(text: (name: string) => string | undefined): Partial<ServePlan> {
  const plan: Partial<ServePlan> = {};
  for (const [flag, key] of [['ping-path', 'pingPath'], ['status-path', 'statusPath']] as const) {
    const path = text(flag);
    if (path === undefined) continue;
    if (!path.startsWith('/') || /[?#\s]/.test(path)) throw new Error(`tsgi serve: --${flag} is a path starting with "/", without "?" or spaces (${path})`);
    plan[key] = path;
  }
  if (plan.pingPath !== undefined && plan.pingPath === plan.statusPath) throw new Error('tsgi serve: --ping-path and --status-path must differ');
  for (const [flag, key] of [['status-allow', 'statusAllow'], ['forwarded-allow-ips', 'forwardedAllowIps']] as const) {
    const list = text(flag);
    if (list === undefined) continue;
    try {
      createForwardedPolicy(list);
    } catch (error) {
      throw new Error(`tsgi serve: --${flag}: ${(error as Error).message.replace(/^forwarded-allow-ips: /, '')}`);
    }
    plan[key] = list;
  }
  const slow = text('slow-log');
  if (slow !== undefined) plan.slowLogSeconds = parseSeconds(slow, '--slow-log', 0);
  const format = text('access-log-format');
  if (format !== undefined) {
    if (format !== 'combined' && format !== 'json') throw new Error(`tsgi serve: --access-log-format is "combined" or "json" (${format})`);
    plan.accessLogFormat = format;
  }
  return plan;
}

/** Workers when --workers is not given: a master and one worker (src/cli/cluster/). */
const DEFAULT_WORKERS = 1;

function parseWorkers(text: string): number {
  if (text === 'auto') return availableParallelism();
  return parseCount(text, '--workers', 1);
}

function parseCount(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+$/.test(text)) throw new Error(`tsgi serve: ${flag} takes a whole number (${text})`);
  return Number(text);
}

function parseSeconds(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new Error(`tsgi serve: ${flag} takes seconds, like 30 or 2.5 (${text})`);
  return Number(text);
}

/** A peer timeout flag in seconds (0 = off) as milliseconds; at most a day (a larger one is surely a typo). */
function parseTimeoutMs(text: string | undefined, flag: string, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const seconds = parseSeconds(text, flag, 0);
  if (seconds > MAX_TIMEOUT_SECONDS) throw new Error(`tsgi serve: ${flag} takes at most ${MAX_TIMEOUT_SECONDS} seconds, 0 = off (${text})`);
  return Math.round(seconds * 1000);
}

const MAX_TIMEOUT_SECONDS = 86_400;

function parseMaxConnections(text: string | undefined): number {
  const count = parseCount(text, '--max-connections', DEFAULT_MAX_CONNECTIONS);
  if (count < 1) throw new Error(`tsgi serve: --max-connections takes a whole number of 1 or more (${text})`);
  return count;
}

/** "1048576", "512k", "10m", "1g" (binary multiples). */
function parseSize(text: string, flag: string): number {
  const match = /^([0-9]+)([kmg]?)$/i.exec(text);
  if (!match) throw new Error(`tsgi serve: ${flag} takes a size in bytes, like 10m (${text})`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] as string).toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}

/**
 * Answers the one CGI request in this process's environment (runWithCgi), with --max-body, --access-log and
 * --error-log (instead of stderr) applied; the process-management and socket flags mean nothing here and are ignored. A module that fails to
 * load still gets the web server a 500 response (not "premature end of script headers"), the reason on stderr.
 */
async function serveCgi(reference: string, values: FlagValues, io: Io): Promise<never> {
  const { runWithCgi } = await import('../servers/cgi.js');
  const { loadApp } = await import('./load-app.js');
  const { accessLog } = await import('../middleware/access-log.js');
  const { openAccessLogFile } = await import('./access-log-file.js');
  // httpoxy: HTTP_PROXY is the client's `Proxy:` header here; gone before the app module's code runs.
  dropHttpoxy(process.env, true);
  let app: App;
  let log: { write(line: string): void; close(): Promise<void> } | null = null;
  let stderr: Writable | undefined;
  try {
    const maxBody = typeof values['max-body'] === 'string' ? parseSize(values['max-body'], '--max-body') : undefined;
    const target = values['access-log'];
    if (typeof target === 'string') log = openAccessLogFile(target, io.stderr);
    if (typeof values['error-log'] === 'string') {
      const errorLog = (await import('./error-log-file.js')).openErrorLog(values['error-log']);
      stderr = new Writable({
        write: (chunk: Buffer, _encoding, done) => {
          errorLog.write(chunk.toString());
          done();
        },
      });
    }
    // One request per process: TypeScript is compiled here, sooner than in a helper process.
    const loaded = await loadApp(reference, process.cwd(), { inProcess: true });
    app = maxBody === undefined ? loaded : limitCgiBody(loaded, maxBody);
  } catch (error) {
    app = answerWith(500, (error as Error).message);
  }
  if (log) app = accessLog(app, log);
  const status = await runWithCgi(app, { exit: false, ...(stderr ? { stderr } : {}) });
  await log?.close();
  process.exit(status);
}

/** Refuses a CONTENT_LENGTH over `maxBodyBytes` with 413 before the app runs. */
function limitCgiBody(app: App, maxBodyBytes: number): App {
  return (environ, startResponse) => {
    const length = environ.CONTENT_LENGTH;
    if (typeof length === 'string' && /^[0-9]+$/.test(length) && Number(length) > maxBodyBytes) {
      return answerWith(413, `tsgi: cgi: request body exceeds --max-body (${length} > ${maxBodyBytes})`)(environ, startResponse);
    }
    return app(environ, startResponse);
  };
}

/** An app that logs `message` (one line, no stack) to tsgi.errors and answers a plain `code` page. */
function answerWith(code: number, message: string): App {
  return (environ, startResponse) => {
    environ['tsgi.errors'].write(`${message}\n`);
    const reason = STATUS_TEXT[code] ?? 'Error';
    startResponse(`${code} ${reason}`, [['Content-Type', 'text/plain; charset=utf-8']]);
    return environ.REQUEST_METHOD === 'HEAD' ? [] : [`${code} ${reason}\n`];
  };
}


/** Loads the app and serves it in this process (no master); SIGINT/SIGTERM drain and exit. */
async function serveInProcess(plan: ServePlan, io: Io): Promise<number> {
  const [{ loadApp }, { startServer }] = await Promise.all([import('./load-app.js'), import('./start-server.js')]);
  let app: App;
  try {
    app = await loadApp(plan.reference, plan.cwd);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const health =
    plan.pingPath !== undefined || plan.statusPath !== undefined || (plan.slowLogSeconds ?? 0) > 0
      ? (await import('./status/single-process.js')).withHealth(
          app,
          plan,
          () => ({ transport: TRANSPORT_NAMES[plan.transport], address: running === undefined ? describeListenTarget(plan.target) : running.address }),
          (line) => void io.stderr.write(`${line}\n`),
        )
      : null;
  let running: RunningServer | undefined;
  try {
    running = await startServer(plan, health?.app ?? app);
  } catch (error) {
    const message = (error as Error).message;
    io.stderr.write(message.startsWith('tsgi serve:') ? `${message}\n` : `tsgi serve: cannot listen on ${describeListenTarget(plan.target)} (${message})\n`);
    return 1;
  }
  health?.watch(running.server);
  const where = plan.transport === 'http' && plan.target.kind === 'tcp' ? `http://${running.address}/` : running.address;
  const startup = `tsgi: serving ${plan.label ?? plan.reference} over ${running.transportName} at ${where} with no workers: single process (pid ${process.pid})\n`;
  const interpreters = Object.entries(plan.cgiBin?.interpreters ?? {}).map(([extension, path]) => `${extension}=${path}`);
  const settings = [
    plan.mount !== undefined ? `mount ${plan.mount || '/'}` : null,
    interpreters.length > 0 ? `interpreters ${interpreters.join(' ')}` : null,
    plan.cgiBin?.readAhead ? 'bodies without a length read ahead' : null,
    plan.maxBodyBytes !== undefined ? `bodies up to ${plan.maxBodyBytes} bytes` : null,
    plan.accessLog !== undefined ? `access log ${plan.accessLog === '-' ? 'to stderr' : plan.accessLog}` : null,
  ].filter((item) => item !== null);
  // One write: whoever waits for the startup line has the settings line with it.
  io.stdout.write(settings.length > 0 ? `${startup}tsgi: ${settings.join('; ')}\n` : startup);
  const onSignal = (signal: NodeJS.Signals): void => {
    process.once(signal, () => process.exit(1));
    io.stderr.write(`tsgi: ${signal} received, finishing in-flight requests (at most ${plan.gracefulTimeoutSeconds} s)\n`);
    void (running as RunningServer).close().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return new Promise<number>(() => {});
}
