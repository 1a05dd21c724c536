/** The types fromFetch and toFetch take (see ../fetch.ts): the Fetch handler and each bridge's options. */
import type { Environ, ErrorStream } from '../../types.js';

/**
 * A Fetch handler. It gets the environ as its second argument, which Hono exposes as `c.env` (so a handler can
 * reach `tsgi.errors`, REMOTE_ADDR or SCRIPT_NAME); handlers that take one argument ignore it.
 */
export type FetchHandler = (request: Request, environ: Environ) => Response | Promise<Response>;

/** Options for fromFetch. */
export interface FromFetchOptions {
  /**
   * Put SCRIPT_NAME in front of PATH_INFO in the Request URL. Default false: the handler sees the path below
   * its mount point, the way Hono's `app.mount()` and Express's `app.use(prefix, sub)` hand a mounted app its
   * paths, so the same app routes alike as `/cgi-bin/app.cgi`, behind `--mount /app` or at the root.
   */
  includeScriptName?: boolean;
}

/** Options for toFetch. */
export interface ToFetchOptions {
  /**
   * The mount prefix ("/app"): it becomes SCRIPT_NAME and is cut from PATH_INFO. A request whose decoded path
   * is neither the prefix nor below it gets a 404 and never reaches the app. Default "" (root).
   */
  scriptName?: string;
  /** Where `tsgi.errors` goes. Default: process.stderr. */
  errors?: ErrorStream;
  /**
   * Extra CGI variables per request (REMOTE_ADDR from the host's connection info, HTTPS behind a proxy...).
   * They override what toFetch derived from the Request.
   */
  variables?: (request: Request) => Record<string, string | undefined>;
}
