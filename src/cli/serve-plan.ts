import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ListenTarget, UnixSocketOptions } from '../servers/listen.js';
import type { FlagValues } from './config-file.js';

// `import ... from 'node:fs'` in an ES module reads every export of fs, which loads fs/promises, readline and the
// streams (about 2 MiB of a `tsgi serve` master's RSS); process.getBuiltinModule returns the module as it is.
const { statSync } = process.getBuiltinModule('node:fs');

/** The transports `tsgi serve` can run an app on (CGI is one request per process: see runWithCgi). */
export type ServeTransport = 'http' | 'fastcgi' | 'scgi' | 'uwsgi';

/** Each transport's name in log and startup lines. */
export const TRANSPORT_NAMES: Readonly<Record<ServeTransport, string>> = { http: 'HTTP', fastcgi: 'FastCGI', scgi: 'SCGI', uwsgi: 'uwsgi' };

/**
 * Everything `tsgi serve` decided from its flags, config file and environment: what to load, where to listen,
 * and how to manage processes. Plain data (JSON-serialisable), so a master can hand it to its workers.
 */
export interface ServePlan {
  /** MODULE[:EXPORT] as given (resolved against `cwd` by loadApp); with `cgiBin`, cgiBinModulePath(). */
  reference: string;
  /** What the startup lines call the app: `reference`, or "cgi-bin DIR". Undefined: `reference`. */
  label?: string;
  /** `--cgi-bin DIR`: serve the CGI programs in DIR (cgiBin) instead of an app module. */
  cgiBin?: CgiBinPlan;
  /** The working directory the reference is relative to. */
  cwd: string;
  transport: ServeTransport;
  /** Where to listen: TCP, a unix socket, or an inherited descriptor (fd 0 from a web server, fd 3+ from systemd). */
  target: ListenTarget;
  /** The app's mount point (normalised; "" = site root) or undefined to keep the web server's split. */
  mount?: string;
  /** Unix socket file mode/owner/group. */
  socket: UnixSocketOptions;
  /** Request bodies above this many bytes are refused with 413. Undefined: no limit. */
  maxBodyBytes?: number;
  /** Combined Log Format access log: "-" for stderr, else a file path (appended). Undefined: no access log. */
  accessLog?: string;
  /** The servers' own log (refusals, tsgi.errors, app errors): "-" for stderr, else a file (appended). Undefined: stderr. */
  errorLog?: string;
  /**
   * Worker processes under a master (prefork: src/cli/cluster/). 0 = no master: the app runs in this process (the default
   * when a web server spawned tsgi with a socket on fd 0, since the web server manages processes then).
   */
  workers: number;
  /** Recycle a worker after this many requests (plus a random 0..maxRequestsJitter); 0 = never. */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Recycle a worker (after its in-flight requests) once its RSS exceeds this many MiB; 0 = never. */
  maxRssMiB: number;
  /** A request busy longer than this many seconds: 504 if nothing was sent, stack logged, worker recycled; 0 = off. */
  timeoutSeconds: number;
  /** How long a stopping worker (or single process) waits for in-flight requests before it is cut, in seconds. */
  gracefulTimeoutSeconds: number;
  /** Most connections open at once per server (--max-connections); more are closed at once. */
  maxConnections: number;
  /** Peer timeouts in milliseconds, 0 = off (--header-timeout, --body-timeout, --idle-timeout): see servers/limits.ts. */
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  /** Undefined: each server's default (FastCGI DEFAULT_IDLE_TIMEOUT_MS, HTTP DEFAULT_HTTP_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** Development: restart when a file under cwd changes. */
  reload: boolean;
  /** --ping-path: a path answered `200 pong` before the app (status/endpoints.ts). Undefined: none. */
  pingPath?: string;
  /** --status-path: the status page (text, ?json, ?openmetrics), answered before the app. Undefined: none. */
  statusPath?: string;
  /** --status-allow: who may read the status page (addresses and CIDR networks, "*"). Default 127.0.0.1,::1. */
  statusAllow?: string;
  /** --slow-log: a request still running after this many seconds is logged once (0 = off). */
  slowLogSeconds?: number;
  /** --access-log-format: "combined" (default) or "json". */
  accessLogFormat?: 'combined' | 'json';
  /** --forwarded-allow-ips: whose X-Forwarded-* / Forwarded fields are believed. Undefined: the servers' default (127.0.0.1,::1). */
  forwardedAllowIps?: string;
}

/** Defaults for the process-management fields. */
export const DEFAULT_GRACEFUL_TIMEOUT_SECONDS = 10;

/**
 * What `tsgi serve --cgi-bin DIR` serves, as plain data for cgiBin() (src/host/cgi-bin.ts): the folder
 * (absolute), `--cgi-interpreter .EXT=PATH`, `--cgi-env NAME=VALUE`, `--cgi-read-ahead`, and `--timeout`
 * (the scripts' time to answer; undefined: cgiBin's default, 30 s).
 */
export interface CgiBinPlan {
  folder: string;
  interpreters: Record<string, string>;
  env: Record<string, string>;
  readAhead: boolean;
  timeoutMs?: number;
}

/**
 * The environment variable that carries a CgiBinPlan (JSON) to the module CGI_BIN_MODULE names: workers of
 * `tsgi serve --workers N` load their app by module reference (cluster/worker.ts), and inherit it.
 */
export const CGI_BIN_ENV = 'TSGI_CGI_BIN';

/** The module serving `--cgi-bin` (its default export is cgiBin() of the plan in CGI_BIN_ENV), as a file path. */
export function cgiBinModulePath(): string {
  // Next to this file's build output (dist/host/), or next to its source when run from src/ (tests).
  const extension = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../host/cgi-bin-entry${extension}`, import.meta.url));
}

/**
 * Reads the --cgi-bin flags (or config keys) from `values`; undefined without `cgi-bin`. `--timeout S` is the
 * scripts' time to answer (0 = no limit). Throws an Error with a clear message for a folder that is not one,
 * `--cgi-interpreter` not `.EXT=PATH`, `--cgi-env` not `NAME=VALUE`, a bad --timeout.
 */
export function cgiBinPlanOf(values: FlagValues, cwd: string): CgiBinPlan | undefined {
  const folder = values['cgi-bin'];
  if (typeof folder !== 'string') return undefined;
  const interpreterItems = listOf(values['cgi-interpreter']);
  const envItems = listOf(values['cgi-env']);
  const absolute = resolve(cwd, folder);
  if (!statSync(absolute, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`tsgi serve: --cgi-bin is not a folder (${folder})`);
  const interpreters: Record<string, string> = {};
  for (const item of interpreterItems) {
    const [extension, path] = splitPair(item);
    if (!/^\.[^./\\]+$/.test(extension) || path === undefined || path === '') {
      throw new Error(`tsgi serve: --cgi-interpreter must read .EXT=PATH, like .php=/usr/bin/php-cgi (${item})`);
    }
    interpreters[extension] = path as string;
  }
  const env: Record<string, string> = {};
  for (const item of envItems) {
    const [name, value] = splitPair(item);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || value === undefined) throw new Error(`tsgi serve: --cgi-env must read NAME=VALUE, like GIT_PROJECT_ROOT=/srv/git (${item})`);
    env[name] = value as string;
  }
  const plan: CgiBinPlan = { folder: absolute, interpreters, env, readAhead: values['cgi-read-ahead'] === true };
  const timeout = values.timeout;
  if (typeof timeout === 'string') {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(timeout)) throw new Error(`tsgi serve: --timeout takes seconds, like 30 or 2.5 (${timeout})`);
    // 0 = no limit: the longest a timer can wait.
    plan.timeoutMs = Number(timeout) === 0 ? MAX_TIMER_MS : Math.max(1, Math.round(Number(timeout) * 1000));
  }
  return plan;
}

/** The longest delay setTimeout takes (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

function listOf(value: FlagValues[string]): string[] {
  if (value === undefined || typeof value === 'boolean') return [];
  return typeof value === 'string' ? [value] : value;
}

/** "A=B=C" -> ["A", "B=C"]; without "=", the value is undefined. */
function splitPair(text: string): [string, string | undefined] {
  const equals = text.indexOf('=');
  return equals < 0 ? [text, undefined] : [text.slice(0, equals), text.slice(equals + 1)];
}
