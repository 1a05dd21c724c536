import type { ForwardedPolicy } from '../../environ/forwarded-policy.js';
import type { ErrorStream } from '../../types.js';
import { DEFAULT_INPUT_HIGH_WATER_BYTES, DEFAULT_MAX_CONNECTIONS } from '../fastcgi/options.js';
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_HEADER_TIMEOUT_MS, type PeerTimeoutOptions } from '../limits.js';
import {
  checkByteLimit,
  checkErrors,
  checkFlag,
  checkForwardedAllowIps,
  checkMount,
  checkTimeout,
  checkWhole,
} from '../option-checks.js';
import { checkWebServerAddrs } from '../web-server-addrs.js';
import type { OneRequestProtocol } from './protocol.js';

/**
 * Options shared by createScgiServer and createUwsgiServer. Of PeerTimeoutOptions, `headerTimeoutMs` (a whole
 * request head within this of the connection's accept, else it is closed) and `bodyTimeoutMs` (body bytes
 * announced by CONTENT_LENGTH and not arriving for this long: the app's read fails, the connection closes)
 * apply; `idleTimeoutMs` does not (a connection carries one request). 0 turns a timeout off.
 */
export interface OneRequestServerOptions extends PeerTimeoutOptions {
  /**
   * Mount prefix: the app sees SCRIPT_NAME = this prefix and PATH_INFO = the rest of the request path, rebuilt
   * from REQUEST_URI (else DOCUMENT_URI), whatever split the web server made ("/" for an app at the root). See
   * applyMount. Unset: the web server's SCRIPT_NAME/PATH_INFO are kept, except that a request with neither
   * (nginx's scgi_params, conformance D6) gets the split for "/": SCRIPT_NAME "" and PATH_INFO the whole path.
   */
  mount?: string;
  /**
   * Most bytes of a request head (SCGI: the netstring's payload, default DEFAULT_MAX_SCGI_HEADER_BYTES; uwsgi:
   * the vars block, at most and by default 65535).
   */
  maxHeaderBytes?: number;
  /** Most request body bytes: a longer CONTENT_LENGTH is answered 413 without running the app. Default: no limit. */
  maxBodyBytes?: number;
  /**
   * Body bytes buffered before the socket is paused (the app reads slower than the body arrives). Default
   * DEFAULT_INPUT_HIGH_WATER_BYTES (1 MiB).
   */
  inputHighWaterBytes?: number;
  /** Most connections (so requests) at once; more are closed at once (and logged). Default DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
  /** The server's log and the apps' `tsgi.errors` (these protocols have no error channel). Default: process.stderr. */
  errors?: ErrorStream;
  /**
   * Peers allowed to connect over TCP; others are closed at once. Default: anyone. IPv4-mapped IPv6 peers
   * ("::ffff:127.0.0.1") count as their IPv4 address. Unix-socket peers have no address and are always allowed.
   */
  webServerAddrs?: readonly string[] | null;
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

/** The options with their defaults applied, checked once (resolveOneRequestOptions). */
export interface ResolvedOneRequestOptions {
  /** Normalised (normalizeMount: "" for the root); null: no mount. */
  mount: string | null;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  inputHighWaterBytes: number;
  maxConnections: number;
  /** 0 = off. */
  headerTimeoutMs: number;
  /** 0 = off. */
  bodyTimeoutMs: number;
  errors: ErrorStream;
  webServerAddrs: ReadonlySet<string> | null;
  multiprocess: boolean;
  /** Built once from forwardedAllowIps. */
  forwarded: ForwardedPolicy;
}

/**
 * Applies the defaults and checks every option, once, when the server is created: a bad one throws a
 * TsgiError naming the protocol and the option (see option-checks.ts).
 */
export function resolveOneRequestOptions(options: OneRequestServerOptions, protocol: OneRequestProtocol): ResolvedOneRequestOptions {
  const area = protocol.name;
  return {
    mount: checkMount(area, options.mount),
    maxHeaderBytes: checkWhole(area, 'maxHeaderBytes', options.maxHeaderBytes, protocol.defaultMaxHeaderBytes, 1, protocol.maxHeaderBytesLimit),
    maxBodyBytes: checkByteLimit(area, 'maxBodyBytes', options.maxBodyBytes),
    inputHighWaterBytes: checkWhole(area, 'inputHighWaterBytes', options.inputHighWaterBytes, DEFAULT_INPUT_HIGH_WATER_BYTES, 1),
    maxConnections: checkWhole(area, 'maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS, 1),
    headerTimeoutMs: checkTimeout(area, 'headerTimeoutMs', options.headerTimeoutMs, DEFAULT_HEADER_TIMEOUT_MS),
    bodyTimeoutMs: checkTimeout(area, 'bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS),
    errors: checkErrors(area, options.errors),
    webServerAddrs: checkWebServerAddrs(area, 'webServerAddrs', options.webServerAddrs),
    multiprocess: checkFlag(area, 'multiprocess', options.multiprocess, false),
    forwarded: checkForwardedAllowIps(area, options.forwardedAllowIps),
  };
}
