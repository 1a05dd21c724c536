import type { ListenTarget, UnixSocketOptions } from '../servers/listen.js';

/** The transports `tsgi serve` can run an app on (CGI is one request per process: see runWithCgi). */
export type ServeTransport = 'http' | 'fastcgi' | 'scgi' | 'uwsgi';

/**
 * Everything `tsgi serve` decided from its flags, config file and environment: what to load, where to listen,
 * and how to manage processes. Plain data (JSON-serialisable), so a master can hand it to its workers.
 */
export interface ServePlan {
  /** MODULE[:EXPORT] as given (resolved against `cwd` by loadApp). */
  reference: string;
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
}

/** Defaults for the process-management fields. */
export const DEFAULT_GRACEFUL_TIMEOUT_SECONDS = 10;
