/**
 * httpoxy (CVE-2016-5385), the one owner of the rule: in a CGI process, `HTTP_PROXY` is the client's `Proxy:`
 * request header (RFC 3875 §4.1.18 turns every header into an HTTP_* variable), never a proxy setting, and an
 * HTTP client library that honours it sends the app's outgoing requests to the client's server. The real
 * setting is the lower-case `http_proxy` (or nothing: web servers don't pass their own environment to CGI),
 * which stays. A process is a CGI one when GATEWAY_INTERFACE is set (RFC 3875 §4.1.4), or when it was told so
 * (runWithCgi, `tsgi serve --cgi`).
 *
 * Applied at three points, each before any app code runs:
 * - `tsgi build` output: HTTPOXY_GUARD is the first line after `#!`, before the bundle;
 * - the `tsgi` package entry and `tsgi serve` import this module first, and loading it applies the rule to
 *   process.env (an unbundled ESM script must therefore import 'tsgi' before anything else: its imports are
 *   evaluated in order, before its own code);
 * - runWithCgi and `tsgi serve --cgi` apply it again, unconditionally, before loading or running the app.
 */

/** Removes HTTP_PROXY from `env` when it is a CGI environment (`cgi`; default: GATEWAY_INTERFACE is set). */
export function dropHttpoxy(env: Record<string, string | undefined> = process.env, cgi: boolean = Boolean(env.GATEWAY_INTERFACE)): void {
  if (cgi) delete env.HTTP_PROXY;
}

/** The same rule as one line of JavaScript, for the top of a `tsgi build` bundle (see dropHttpoxy). */
export const HTTPOXY_GUARD = 'if (process.env.GATEWAY_INTERFACE) delete process.env.HTTP_PROXY;';

// Loading this module applies the rule to the process (see above): whatever imports 'tsgi' first is covered.
dropHttpoxy();
