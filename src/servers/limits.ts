/**
 * The timeouts every server applies to what a peer controls, with their defaults (one owner: FastCGI, SCGI,
 * uwsgi and HTTP import these; `tsgi serve` exposes them as --header-timeout, --body-timeout, --idle-timeout).
 * A peer that connects and sends nothing, stops in the middle of a request head, or stops sending a body it
 * announced would otherwise hold a connection (and its request slot) for ever.
 */

/** A request head (FastCGI: BEGIN_REQUEST to the end of PARAMS; SCGI/uwsgi/HTTP: the head) must arrive within this. */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** A request body that stops arriving for this long is abandoned (the app's read fails, the request ends). */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
/** A kept-alive connection with no request in progress for this long is closed (cleanly: see the drain). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/** The timeout options shared by every server's options (milliseconds; 0 turns one off). */
export interface PeerTimeoutOptions {
  /** Default DEFAULT_HEADER_TIMEOUT_MS. */
  headerTimeoutMs?: number;
  /** Default DEFAULT_BODY_TIMEOUT_MS. */
  bodyTimeoutMs?: number;
  /** Default DEFAULT_IDLE_TIMEOUT_MS (kept-alive connections: FastCGI and HTTP). */
  idleTimeoutMs?: number;
}

/**
 * How long a connection the server closed (a FIN sent after its last answer) stays open for reading, its bytes
 * discarded, for the peer to close its side. Closing at once with unread bytes in the kernel, or bytes arriving
 * after the close, sends a reset: it can destroy the end of an answer the peer has not read yet, and a web server
 * cannot retry a request that met one. Every server's graceful close (FastCGI, SCGI, uwsgi) lingers this long.
 */
export const LINGER_MS = 5_000;
