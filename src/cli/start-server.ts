import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import { describeListenTarget, listenOn } from '../servers/listen.js';
import type { App } from '../types.js';
import { accessLog } from '../middleware/access-log.js';
import { openAccessLogFile } from './access-log-file.js';
import { DEFAULT_GRACEFUL_TIMEOUT_SECONDS, type ServePlan } from './serve-plan.js';

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
   * Stops accepting, lets in-flight requests finish (idle kept-alive connections are closed at once), and cuts
   * what is left after plan.gracefulTimeoutSeconds. Resolves when no request is left. Safe to call twice.
   */
  close(): Promise<void>;
}

const TRANSPORT_NAMES = { http: 'HTTP', fastcgi: 'FastCGI', scgi: 'SCGI', uwsgi: 'uwsgi' } as const;
const DRAIN_POLL_MS = 20;

/**
 * Creates the plan's server for `app` and listens on plan.target. Rejects when listening fails, or when the
 * access log (plan.accessLog, Combined Log Format through the accessLog middleware) can't be opened; close()
 * flushes that log. `listen`, when given, replaces the listen step (a worker of `tsgi serve --workers` listens
 * on the socket its master holds, and watches the server's connections from the first one on).
 */
export async function startServer(plan: ServePlan, app: App, listen?: (server: Server) => Promise<void>): Promise<RunningServer> {
  const log = plan.accessLog !== undefined ? openAccessLogFile(plan.accessLog) : null;
  if (log) app = accessLog(app, log);
  const mountOptions = plan.mount !== undefined ? { mount: plan.mount || '/' } : {};
  const bodyOptions = plan.maxBodyBytes !== undefined ? { maxBodyBytes: plan.maxBodyBytes } : {};
  let server: Server;
  let activeRequests: () => number;
  let closeIdle: () => void = () => {};
  let cutAll: () => void = () => {};
  if (plan.transport === 'http') {
    const { createHttpServer } = await import('../servers/http.js');
    const http: HttpServer = createHttpServer(app, { ...(plan.mount !== undefined ? { scriptName: plan.mount } : {}), ...bodyOptions });
    let active = 0;
    http.on('request', (_req, res) => {
      active++;
      res.once('close', () => active--);
    });
    server = http;
    activeRequests = () => active;
    closeIdle = () => http.closeIdleConnections();
    cutAll = () => http.closeAllConnections();
  } else if (plan.transport === 'fastcgi') {
    const { createFastCgiServer } = await import('../servers/fastcgi.js');
    const fastcgi = createFastCgiServer(app, { ...mountOptions, ...bodyOptions });
    server = fastcgi;
    activeRequests = () => fastcgi.activeRequests;
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
    closing ??= new Promise<void>((resolve) => {
      server.close();
      closeIdle();
      const graceMs = (plan.gracefulTimeoutSeconds || DEFAULT_GRACEFUL_TIMEOUT_SECONDS) * 1000;
      const started = Date.now();
      const poll = setInterval(() => {
        closeIdle();
        if (activeRequests() === 0 || Date.now() - started >= graceMs) {
          clearInterval(poll);
          cutAll();
          // The access log's last lines reach the file before the process exits.
          void (log?.close() ?? Promise.resolve()).then(resolve);
        }
      }, DRAIN_POLL_MS);
    });
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
