import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { normalizeMount } from '../environ/mount.js';
import { SHUTDOWN_TIMEOUT_MS } from '../servers/http-serve.js';
import { describeListenTarget, hasInheritedListenSocket, parseListenTarget, socketActivationTarget, type ListenTarget } from '../servers/listen.js';
import type { App } from '../types.js';
import { loadApp } from './load-app.js';
import { DEFAULT_GRACEFUL_TIMEOUT_SECONDS, type ServePlan } from './serve-plan.js';
import { startServer, type RunningServer } from './start-server.js';

const USAGE = `usage: tsgi serve MODULE[:EXPORT] [--http ADDR | --fastcgi ADDR | --scgi ADDR | --uwsgi ADDR] [options]

Loads the app exported by MODULE (TypeScript or JavaScript; the default export, else "app", else EXPORT)
and serves it. The transport is the flag given; without one: FastCGI when started by a web server with a
listening socket on fd 0 (mod_fcgid, lighttpd bin-path, spawn-fcgi), else HTTP on 127.0.0.1:8000.

  --http ADDR           serve HTTP on HOST:PORT (":8080" or "8080" keep host 127.0.0.1)
  --fastcgi ADDR        serve FastCGI on HOST:PORT, unix:/path/app.sock, or fd:0 (an inherited socket)
  --scgi ADDR           serve SCGI (one request per connection) on HOST:PORT, unix:/path/app.sock, or fd:0
  --uwsgi ADDR          serve the uwsgi protocol (one request per connection) on HOST:PORT, unix:PATH, or fd:0
  --mount PREFIX        the app's mount point: SCRIPT_NAME = PREFIX, PATH_INFO = the rest of the request path
                        (FastCGI, SCGI, uwsgi: rebuilt from REQUEST_URI whatever split the web server made;
                        use "/" for an app at the root of a site)
  --socket-mode MODE    unix socket file mode, octal (e.g. 660)
  --socket-owner USER   unix socket owner (name or uid)
  --socket-group GROUP  unix socket group (name or gid)
  -w, --workers N       worker processes under a master; "auto" = one per core (default 1; 0 = no master;
                        started by a web server on fd 0: no master unless --workers is given)
  --max-requests N      recycle a worker after N requests (0 = never)
  --max-requests-jitter J  add a random 0..J to --max-requests per worker
  --max-rss MIB         recycle a worker once its RSS passes MIB (after its in-flight requests)
  -t, --timeout S       a request busy S seconds: 504 if nothing was sent, stack logged, worker recycled (0 = off)
  --graceful-timeout S  how long stopping workers wait for in-flight requests (default ${DEFAULT_GRACEFUL_TIMEOUT_SECONDS})
  --max-body SIZE       refuse request bodies larger than SIZE bytes (k/m/g suffixes) with 413
  --access-log FILE     Combined Log Format access log to FILE ("-" = stderr)
  --reload              development: restart when a file changes
  -h, --help            this help

SIGINT/SIGTERM stop accepting connections and exit once in-flight requests finish (at most ${SHUTDOWN_TIMEOUT_MS / 1000} s).
`;

export type Io = { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream };

/** The `tsgi serve` verb. Resolves with the exit status on a usage error or failure to start; else serves. */
export async function runServeCommand(args: string[], io: Io = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        http: { type: 'string' },
        fastcgi: { type: 'string' },
        scgi: { type: 'string' },
        uwsgi: { type: 'string' },
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
        'access-log': { type: 'string' },
        reload: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`tsgi serve: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const values = parsed.values;
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [reference, ...rest] = parsed.positionals;
  if (!reference || rest.length > 0) {
    io.stderr.write(`tsgi serve: expected one MODULE[:EXPORT]\n${USAGE}`);
    return 2;
  }
  if (values.http !== undefined && values.fastcgi !== undefined) {
    io.stderr.write(`tsgi serve: --http and --fastcgi exclude each other\n${USAGE}`);
    return 2;
  }
  // SCGI / uwsgi (issue 4): one transport flag at most.
  const gatewayFlags = (['http', 'fastcgi', 'scgi', 'uwsgi'] as const).filter((flag) => values[flag] !== undefined);
  if (gatewayFlags.length > 1) {
    io.stderr.write(`tsgi serve: ${gatewayFlags.map((flag) => `--${flag}`).join(' and ')} exclude each other\n${USAGE}`);
    return 2;
  }
  let plan: ServePlan;
  try {
    let transport: ServePlan['transport'];
    let target: ListenTarget;
    let inherited = false;
    // ADDR "systemd" = the socket systemd passed (socket activation); with no transport flag, a
    // socket-activated tsgi serves HTTP on it.
    const activated = socketActivationTarget();
    const addressOf = (text: string): ListenTarget => {
      if (text !== 'systemd') return parseListenTarget(text);
      if (!activated) throw new Error('tsgi serve: ADDR "systemd" needs socket activation (LISTEN_FDS/LISTEN_PID for this process)');
      return activated;
    };
    if (values.fastcgi !== undefined) {
      transport = 'fastcgi';
      target = addressOf(values.fastcgi);
    } else if (values.scgi !== undefined) {
      transport = 'scgi';
      target = addressOf(values.scgi);
    } else if (values.uwsgi !== undefined) {
      transport = 'uwsgi';
      target = addressOf(values.uwsgi);
    } else if (values.http !== undefined) {
      transport = 'http';
      target = addressOf(values.http);
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
    if (values['socket-mode'] !== undefined) {
      if (!/^[0-7]{3,4}$/.test(values['socket-mode'])) throw new Error(`tsgi serve: --socket-mode is octal, like 660 (${values['socket-mode']})`);
      mode = Number.parseInt(values['socket-mode'], 8);
    }
    plan = {
      reference,
      cwd: process.cwd(),
      transport,
      target,
      ...(values.mount !== undefined ? { mount: normalizeMount(values.mount) } : {}),
      socket: {
        ...(mode !== undefined ? { mode } : {}),
        ...(values['socket-owner'] !== undefined ? { owner: values['socket-owner'] } : {}),
        ...(values['socket-group'] !== undefined ? { group: values['socket-group'] } : {}),
      },
      ...(values['max-body'] !== undefined ? { maxBodyBytes: parseSize(values['max-body'], '--max-body') } : {}),
      ...(values['access-log'] !== undefined ? { accessLog: values['access-log'] } : {}),
      // Started by a web server on fd 0: it manages the processes, so no master of our own unless asked.
      workers: values.workers !== undefined ? parseWorkers(values.workers) : inherited ? 0 : DEFAULT_WORKERS,
      maxRequests: parseCount(values['max-requests'], '--max-requests', 0),
      maxRequestsJitter: parseCount(values['max-requests-jitter'], '--max-requests-jitter', 0),
      maxRssMiB: parseCount(values['max-rss'], '--max-rss', 0),
      timeoutSeconds: parseSeconds(values.timeout, '--timeout', 0),
      gracefulTimeoutSeconds: parseSeconds(values['graceful-timeout'], '--graceful-timeout', DEFAULT_GRACEFUL_TIMEOUT_SECONDS),
      reload: values.reload === true,
    };
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  if (plan.workers > 0) return (await import('./cluster/master.js')).runMaster(plan, io);
  return serveInProcess(plan, io);
}

/** Workers when --workers is not given. 0 until the process manager (src/cli/cluster/) lands. */
const DEFAULT_WORKERS = 0;

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

/** "1048576", "512k", "10m", "1g" (binary multiples). */
function parseSize(text: string, flag: string): number {
  const match = /^([0-9]+)([kmg]?)$/i.exec(text);
  if (!match) throw new Error(`tsgi serve: ${flag} takes a size in bytes, like 10m (${text})`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] as string).toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}

/** Loads the app and serves it in this process (no master); SIGINT/SIGTERM drain and exit. */
async function serveInProcess(plan: ServePlan, io: Io): Promise<number> {
  let app: App;
  try {
    app = await loadApp(plan.reference, plan.cwd);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  let running: RunningServer;
  try {
    running = await startServer(plan, app);
  } catch (error) {
    io.stderr.write(`tsgi serve: cannot listen on ${describeListenTarget(plan.target)} (${(error as Error).message})\n`);
    return 1;
  }
  const where = plan.transport === 'http' && plan.target.kind === 'tcp' ? `http://${running.address}/` : running.address;
  io.stdout.write(`tsgi: serving ${plan.reference} over ${running.transportName} at ${where} (pid ${process.pid})\n`);
  const onSignal = (signal: NodeJS.Signals): void => {
    process.once(signal, () => process.exit(1));
    io.stderr.write(`tsgi: ${signal} received, finishing in-flight requests\n`);
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return new Promise<number>(() => {});
}
