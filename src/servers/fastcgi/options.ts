import type { ForwardedPolicy } from '../../environ/forwarded-policy.js';
import type { App, ErrorStream } from '../../types.js';
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADER_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  type PeerTimeoutOptions,
} from '../limits.js';
import {
  checkApp,
  checkByteLimit,
  checkErrors,
  checkFlag,
  checkForwardedAllowIps,
  checkMount,
  checkTimeout,
  checkWhole,
} from '../option-checks.js';
import { checkWebServerAddrs } from '../web-server-addrs.js';

/** Default cap on the PARAMS of one request: far above what web servers send (a few KiB). */
export const DEFAULT_MAX_PARAMS_BYTES = 1024 * 1024;
/** Default cap on requests in progress in one server; more get END_REQUEST{OVERLOADED}. */
export const DEFAULT_MAX_REQUESTS = 1024;
/** Default cap on connections, reported to GET_VALUES as FCGI_MAX_CONNS. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** STDIN bytes buffered for one request before the connection stops reading from the socket. */
export const DEFAULT_INPUT_HIGH_WATER_BYTES = 1024 * 1024;
/**
 * Default cap on requests in progress on one connection; more get END_REQUEST{OVERLOADED}. Web servers send one
 * request at a time per connection (nginx, Apache, Caddy never multiplex), so this only stops one peer from
 * taking every maxRequests slot.
 */
export const DEFAULT_MAX_REQUESTS_PER_CONNECTION = 64;
/**
 * Default cap on the bytes the whole server buffers for its peers: PARAMS of requests whose PARAMS have not
 * ended, and STDIN/DATA waiting for the apps to read them.
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

/**
 * Options for createFastCgiServer. Memory: what one connection makes the server buffer is at most
 * maxRequestsPerConnection x (maxParamsBytes + inputHighWaterBytes), plus one socket read (64 KiB) and one
 * partial record (64 KiB); the whole server buffers at most maxBufferedBytes plus one socket read per connection,
 * whatever the size of the records (a 1-byte record costs its byte, not an object). Timeouts (PeerTimeoutOptions,
 * in milliseconds, 0 = off): headerTimeoutMs (default 10 s: from accept, or from BEGIN_REQUEST, to the end of
 * PARAMS; a deadline, not an idle time: the requests are aborted and the connection closed), bodyTimeoutMs
 * (default 30 s with no STDIN/DATA arriving for a body that has not ended, not counting the time the server
 * itself stopped reading: the app's next read fails with a 408), idleTimeoutMs (default 30 s: a kept-alive
 * connection with no request is closed gracefully). They are checked by one coarse sweep per server (every
 * second, or a quarter of the shortest timeout), so they fire to within that much. Every refusal at a limit is
 * logged to `errors`, at most one line per limit per 10 s (createLimitLog).
 */
export interface FastCgiServerOptions extends PeerTimeoutOptions {
  /**
   * Mount prefix: the app sees SCRIPT_NAME = this prefix and PATH_INFO = the rest of the request path, rebuilt
   * from REQUEST_URI, whatever split the web server made ("/" for an app at the root). Unset: the web server's
   * SCRIPT_NAME/PATH_INFO are kept. See applyMount.
   */
  mount?: string;
  /** Accept several requests at once on one connection (FCGI_MPXS_CONNS). Default true. */
  multiplex?: boolean;
  /** Most connections at once; more are closed at once. Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** Most requests in progress at once; more get END_REQUEST{OVERLOADED}. Default DEFAULT_MAX_REQUESTS. */
  maxRequests?: number;
  /**
   * Most requests in progress at once on one connection; more get END_REQUEST{OVERLOADED}.
   * Default DEFAULT_MAX_REQUESTS_PER_CONNECTION (64).
   */
  maxRequestsPerConnection?: number;
  /** Most PARAMS bytes per request; more close the connection. Default DEFAULT_MAX_PARAMS_BYTES (1 MiB). */
  maxParamsBytes?: number;
  /**
   * Most bytes buffered for peers in the whole server: unfinished PARAMS and input not yet read by the apps.
   * Past it, the connection piling up the most unfinished PARAMS (64 KiB or more: web servers send a request's
   * PARAMS at once) is closed; if that is not enough, a new BEGIN_REQUEST gets END_REQUEST{OVERLOADED} and a
   * connection sending more stops being read until the apps catch up (backpressure). Each is logged.
   * Default DEFAULT_MAX_BUFFERED_BYTES (64 MiB).
   */
  maxBufferedBytes?: number;
  /** Most request body bytes; past it, reading the input fails with a 413. Default: no limit. */
  maxBodyBytes?: number;
  /** STDIN bytes buffered per request before the socket is paused. Default DEFAULT_INPUT_HIGH_WATER_BYTES. */
  inputHighWaterBytes?: number;
  /**
   * The server's own log: protocol errors, refused peers and requests, limits hit (rate-limited lines), and a
   * copy of what apps write to tsgi.errors (which also goes to the web server as STDERR records).
   * Default: process.stderr.
   */
  errors?: ErrorStream;
  /**
   * Peers allowed to connect over TCP. Default: FCGI_WEB_SERVER_ADDRS from the environment (comma-separated),
   * or anyone when it is unset. IPv4-mapped IPv6 peers ("::ffff:127.0.0.1") count as their IPv4 address.
   */
  webServerAddrs?: readonly string[] | null;
  /** The app for the Authorizer role (default: the main app, which can tell the role from FCGI_ROLE). */
  authorizer?: App;
  /** The app for the Filter role (default: the main app). Its DATA stream is `environ['tsgi.fastcgi.data']`. */
  filter?: App;
  /** True when other processes serve the same app at the same time (`tsgi serve --workers N`, N > 1): the environ's `tsgi.multiprocess`. Default: false. */
  multiprocess?: boolean;
  /**
   * The peers (REMOTE_ADDR as the web server passes it: the web server's client) whose X-Forwarded-For /
   * -Proto / -Host and `Forwarded` fields set the client's address, scheme and host: addresses and CIDR
   * networks, "*" for any, "" for none (src/environ/forwarded.ts). Default: DEFAULT_FORWARDED_ALLOW_IPS
   * ("127.0.0.1,::1").
   */
  forwardedAllowIps?: string;
}

/** The options with their defaults applied, checked once (resolveFastCgiOptions). */
export interface ResolvedFastCgiOptions {
  /** Normalised (normalizeMount: "" for the root); null: no mount. */
  mount: string | null;
  multiplex: boolean;
  maxConnections: number;
  maxRequests: number;
  maxRequestsPerConnection: number;
  maxParamsBytes: number;
  maxBufferedBytes: number;
  maxBodyBytes: number;
  /** Milliseconds; 0 = off. */
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  inputHighWaterBytes: number;
  errors: ErrorStream;
  webServerAddrs: ReadonlySet<string> | null;
  authorizer: App | null;
  filter: App | null;
  multiprocess: boolean;
  /** Built once from forwardedAllowIps. */
  forwarded: ForwardedPolicy;
}

/** The area of the option errors: "fastcgi: maxRequests must be ...". */
const AREA = 'fastcgi';

/**
 * Applies the defaults and checks every option, once, when the server is created: a bad one throws a
 * TsgiError naming it (see option-checks.ts). Reads FCGI_WEB_SERVER_ADDRS when `webServerAddrs` is not given.
 */
export function resolveFastCgiOptions(options: FastCgiServerOptions, env: NodeJS.ProcessEnv = process.env): ResolvedFastCgiOptions {
  const fromEnv = env.FCGI_WEB_SERVER_ADDRS;
  const webServerAddrs =
    options.webServerAddrs !== undefined
      ? checkWebServerAddrs(AREA, 'webServerAddrs', options.webServerAddrs)
      : checkWebServerAddrs(AREA, 'FCGI_WEB_SERVER_ADDRS', fromEnv ? fromEnv.split(',') : null);
  return {
    mount: checkMount(AREA, options.mount),
    multiplex: checkFlag(AREA, 'multiplex', options.multiplex, true),
    maxConnections: checkWhole(AREA, 'maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS, 1),
    maxRequests: checkWhole(AREA, 'maxRequests', options.maxRequests, DEFAULT_MAX_REQUESTS, 1),
    maxRequestsPerConnection: checkWhole(AREA, 'maxRequestsPerConnection', options.maxRequestsPerConnection, DEFAULT_MAX_REQUESTS_PER_CONNECTION, 1),
    maxParamsBytes: checkWhole(AREA, 'maxParamsBytes', options.maxParamsBytes, DEFAULT_MAX_PARAMS_BYTES, 1),
    maxBufferedBytes: checkWhole(AREA, 'maxBufferedBytes', options.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 1),
    headerTimeoutMs: checkTimeout(AREA, 'headerTimeoutMs', options.headerTimeoutMs, DEFAULT_HEADER_TIMEOUT_MS),
    bodyTimeoutMs: checkTimeout(AREA, 'bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS),
    idleTimeoutMs: checkTimeout(AREA, 'idleTimeoutMs', options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    maxBodyBytes: checkByteLimit(AREA, 'maxBodyBytes', options.maxBodyBytes),
    inputHighWaterBytes: checkWhole(AREA, 'inputHighWaterBytes', options.inputHighWaterBytes, DEFAULT_INPUT_HIGH_WATER_BYTES, 1),
    errors: checkErrors(AREA, options.errors),
    webServerAddrs,
    authorizer: checkApp(AREA, 'authorizer', options.authorizer),
    filter: checkApp(AREA, 'filter', options.filter),
    multiprocess: checkFlag(AREA, 'multiprocess', options.multiprocess, false),
    forwarded: checkForwardedAllowIps(AREA, options.forwardedAllowIps),
  };
}
