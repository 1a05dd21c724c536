import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import { watchHttpConnections } from '../servers/http-drain.js';
import { describeListenTarget, listenOn } from '../servers/listen.js';
import type { App, ErrorStream } from '../types.js';
import { accessLog } from '../middleware/access-log.js';
import { openAccessLogFile } from './access-log-file.js';
import { openErrorLog } from './error-log-file.js';
import { DEFAULT_GRACEFUL_TIMEOUT_SECONDS, TRANSPORT_NAMES, type ServePlan } from './serve-plan.js';

/** A server `tsgi serve` started in this process. */
export interface RunningServer {
  server: Server;
  /** "HTTP", "FastCGI", "SCGI" or "uwsgi", for log lines. */
  transportName: string;
  /** The bound address as parseListenTarget reads it (the real port when port 0 was asked for). */
  address: string;
  /** Requests accepted and not yet finished. */
  activeRequests(): number;
  /**
   * Stops accepting, lets in-flight requests finish (over HTTP, kept-alive clients are told `Connection: close`
   * and connections idle for a second are closed), and cuts what is left after plan.gracefulTimeoutSeconds.
   * Resolves when no request is left. Safe to call twice.
   */
  close(): Promise<void>;
}


/**
 * Creates the plan's server for `app` and listens on plan.target. Rejects when listening fails, or when the
 * access log (plan.accessLog, Combined Log Format through the accessLog middleware) can't be opened; close()
 * flushes that log. `listen`, when given, replaces the listen step (a worker of `tsgi serve --workers` listens
 * on the socket its master holds, and watches the server's connections from the first one on).
 */
export async function startServer(plan: ServePlan, app: App, listen?: (server: Server) => Promise<void>): Promise<RunningServer> {
  const log = plan.accessLog !== undefined ? openAccessLogFile(plan.accessLog) : null;
  if (log) app = accessLog(app, { write: (line) => log.write(line), ...(plan.accessLogFormat !== undefined ? { format: plan.accessLogFormat } : {}) });
  const mountOptions = plan.mount !== undefined ? { mount: plan.mount || '/' } : {};
  // Limits and the environ's tsgi.multiprocess (several workers serve the app at once).
  // The peer limits (--max-connections, --header-timeout, --body-timeout, --idle-timeout): the same option names on every server.
  const limitOptions = {
    maxConnections: plan.maxConnections,
    headerTimeoutMs: plan.headerTimeoutMs,
    bodyTimeoutMs: plan.bodyTimeoutMs,
    ...(plan.idleTimeoutMs !== undefined ? { idleTimeoutMs: plan.idleTimeoutMs } : {}),
  };
  const bodyOptions = {
    ...(plan.maxBodyBytes !== undefined ? { maxBodyBytes: plan.maxBodyBytes } : {}),
    ...(plan.forwardedAllowIps !== undefined ? { forwardedAllowIps: plan.forwardedAllowIps } : {}),
    multiprocess: plan.workers > 1,
    ...errorOptions(plan),
    ...limitOptions,
  };
  let server: Server;
  let activeRequests: () => number;
  let drain: ((graceMs: number) => Promise<void>) | null = null;
  let cutAll: () => void = () => {};
  if (plan.transport === 'http') {
    const { createHttpServer } = await import('../servers/http.js');
    const http: HttpServer = createHttpServer(app, {
      ...(plan.mount !== undefined ? { scriptName: plan.mount } : {}),
      ...bodyOptions,
    });
    server = http;
    // Kept-alive clients are told to reconnect before their connections close (http-drain.ts); the same tracker
    // counts the requests in flight, with nothing added per request.
    const connections = watchHttpConnections(http);
    activeRequests = () => connections.activeRequests();
    drain = (graceMs) => connections.drain(graceMs);
    cutAll = () => http.closeAllConnections();
  } else if (plan.transport === 'fastcgi') {
    const { createFastCgiServer } = await import('../servers/fastcgi.js');
    const fastcgi = createFastCgiServer(app, { ...mountOptions, ...bodyOptions });
    server = fastcgi;
    activeRequests = () => fastcgi.activeRequests;
    cutAll = () => fastcgi.destroyConnections();
  } else {
    const gateway =
      plan.transport === 'scgi'
        ? (await import('../servers/scgi.js')).createScgiServer(app, { ...mountOptions, ...bodyOptions })
        : (await import('../servers/uwsgi.js')).createUwsgiServer(app, { ...mountOptions, ...bodyOptions });
    server = gateway;
    activeRequests = () => gateway.activeRequests;
  }
  await (listen ? listen(server) : listenOn(server, plan.target, plan.socket));

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const graceMs = (plan.gracefulTimeoutSeconds || DEFAULT_GRACEFUL_TIMEOUT_SECONDS) * 1000;
      if (drain) {
        await drain(graceMs);
      } else {
        // FastCGI, SCGI, uwsgi: the close callback fires once the last connection is gone, in-flight requests
        // answered and each connection closed gracefully (a FIN, then read until the web server closes its
        // side: exiting earlier would reset a connection the web server is writing a request into).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      cutAll();
      // The access log's last lines reach the file before the process exits.
      await (log?.close() ?? Promise.resolve());
    })();
    return closing;
  };
  return {
    server,
    transportName: TRANSPORT_NAMES[plan.transport],
    address: describeListenTarget(plan.target, server),
    activeRequests,
    close,
  };
}

/** The servers' own log (`errors`: refusals, protocol errors, tsgi.errors, app stacks): plan.errorLog, else stderr. */
function errorOptions(plan: ServePlan): { errors?: ErrorStream } {
  return plan.errorLog !== undefined ? { errors: openErrorLog(plan.errorLog) } : {};
}
