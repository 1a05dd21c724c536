/**
 * --ping-path and --status-path: two paths `tsgi serve` answers itself, before the app, on every transport
 * (so a FastCGI backend can be health-checked and watched through the web server, as PHP-FPM's ping.path and
 * pm.status_path allow).
 */
import type { App, Environ } from '../../types.js';
import type { ForwardedPolicy } from '../../environ/forwarded-policy.js';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics, renderStatusJson, renderStatusText, type StatusSnapshot } from './snapshot.js';

/** Options of withEndpoints. */
export interface EndpointOptions {
  /** The ping path ("/ping"): answered 200 "pong". Undefined: none. */
  pingPath?: string;
  /** The status path ("/status"): the status page. Undefined: none. */
  statusPath?: string;
  /**
   * Who may read the status page, by REMOTE_ADDR: the page shows the URLs being served, which may hold
   * tokens. Others get 403.
   */
  statusAllow: ForwardedPolicy;
  /** Gathers the figures (the master asks every worker). */
  snapshot: () => Promise<StatusSnapshot>;
}

const NO_STORE: Array<[string, string]> = [['Cache-Control', 'no-store']];
const PONG = Buffer.from('pong\n');

/**
 * Wraps `app`: a request whose path (SCRIPT_NAME + PATH_INFO) is the ping path gets `200 pong`; one for the
 * status path gets the page (plain text; `?json` JSON; `?openmetrics` the OpenMetrics exposition), or 403 for
 * a client not in statusAllow, or 503 when the figures can't be gathered. Every other request goes to `app`.
 */
export function withEndpoints(app: App, options: EndpointOptions): App {
  const { pingPath, statusPath } = options;
  if (pingPath === undefined && statusPath === undefined) return app;
  const longest = Math.max(pingPath?.length ?? 0, statusPath?.length ?? 0);
  return (environ, startResponse) => {
    const pathInfo = environ.PATH_INFO;
    // Cheap test first: most paths are longer or shorter than both.
    if (pathInfo.length > longest) return app(environ, startResponse);
    const path = environ.SCRIPT_NAME + pathInfo;
    if (path === pingPath) {
      startResponse('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(PONG.length)], ...NO_STORE]);
      return [PONG];
    }
    if (path === statusPath) return statusPage(environ, startResponse, options);
    return app(environ, startResponse);
  };
}

async function statusPage(environ: Environ, startResponse: Parameters<App>[1], options: EndpointOptions): Promise<Uint8Array[]> {
  const remote = environ.REMOTE_ADDR;
  if (remote === undefined || !options.statusAllow.trusts(remote)) {
    startResponse('403 Forbidden', [['Content-Type', 'text/plain'], ...NO_STORE]);
    return [Buffer.from('403 Forbidden: the status page is readable only from the addresses of --status-allow\n')];
  }
  let snapshot: StatusSnapshot;
  try {
    snapshot = await options.snapshot();
  } catch (error) {
    environ['tsgi.errors'].write(`tsgi: status page: ${(error as Error).message}\n`);
    startResponse('503 Service Unavailable', [['Content-Type', 'text/plain'], ...NO_STORE]);
    return [Buffer.from('503 Service Unavailable: the figures could not be gathered\n')];
  }
  const query = environ.QUERY_STRING;
  let type = 'text/plain; charset=utf-8';
  let text: string;
  if (/(?:^|&)json(?:=|&|$)/.test(query)) {
    type = 'application/json';
    text = renderStatusJson(snapshot);
  } else if (/(?:^|&)openmetrics(?:=|&|$)/.test(query)) {
    type = OPENMETRICS_CONTENT_TYPE;
    text = renderOpenMetrics(snapshot);
  } else {
    text = renderStatusText(snapshot);
  }
  const body = Buffer.from(text, 'utf8');
  startResponse('200 OK', [['Content-Type', type], ['Content-Length', String(body.length)], ...NO_STORE]);
  return [body];
}
