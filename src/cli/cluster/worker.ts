/**
 * A worker process of `tsgi serve --workers N` (started by the master in master.ts, never by hand). It loads
 * the app anew, listens on the master's socket (inherited on fd 3, or sent over the IPC channel on the public
 * fallback: see listen-socket.ts) and accepts connections itself, or, on the public fallback for a unix socket,
 * serves the connections the master accepts and passes on; and reports to the master over the IPC channel:
 * ready, heartbeats, and requests to be recycled.
 */
import type { Server } from 'node:net';
import type { FastCgiServer } from '../../servers/fastcgi.js';
import { listenOn } from '../../servers/listen.js';
import { loadApp } from '../load-app.js';
import { startServer, type RunningServer } from '../start-server.js';
import type { App } from '../../types.js';
import { WORKER_ENV, WORKER_LISTEN_FD, type MasterMessage, type RecycleReason, type WorkerConfig, type WorkerMessage } from './messages.js';
import { HEARTBEAT_INTERVAL_MS } from './policy.js';
import type { TimeoutInfo } from './supervise.js';
import type { WorkerStatus } from '../status/worker-status.js';
// Loaded below only when used, so a worker holds no more than its transport and options need: the FastCGI
// handover (handover.js), the supervision of --timeout and --slow-log and its watchdog thread (supervise.js,
// watchdog.js).

const RSS_CHECK_MS = 1_000;
const MIB = 1024 * 1024;

/** Reports a failure to start, then exits with status 3 once the message is on its way. */
function failBoot(message: string): never {
  const exit = (): never => process.exit(3);
  if (process.connected && process.send) {
    try {
      process.send({ type: 'boot-failed', message } satisfies WorkerMessage, exit);
      setTimeout(exit, 1_000);
    } catch {
      exit();
    }
  } else {
    exit();
  }
  // Parks this async path until the exit above happens.
  return undefined as never;
}

function send(message: WorkerMessage): void {
  if (!process.connected || !process.send) return;
  try {
    process.send(message);
  } catch {
    // The master is gone; 'disconnect' stops this worker.
  }
}

async function runWorker(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_ENV] ?? 'null') as WorkerConfig | null;
  if (!config || !process.send) {
    process.stderr.write('tsgi: this module is a worker of `tsgi serve --workers N`; it is started by the master\n');
    process.exit(2);
  }
  const { id, plan, requestLimit } = config;
  // On the public fallback (listen-socket.ts) the master passes on connections it accepted itself.
  const fromMaster = config.listen === 'from-master' || config.listen === 'relayed';
  const label = `tsgi: worker ${id} (pid ${process.pid})`;
  const log = (text: string): void => void process.stderr.write(`${label}: ${text}\n`);

  let running: RunningServer | null = null;
  /** The connections the master passed on (handover.ts adoptFromMaster), waited for when stopping. */
  let adopted: { drained(graceMs: number): Promise<void> } | null = null;
  let stopping = false;
  const stop = (why: string | null): void => {
    if (stopping) return;
    stopping = true;
    if (why) log(why);
    if (!running) process.exit(0);
    const server = running;
    // HTTP: kept-alive clients are told to reconnect before their connections close (see startServer). The
    // connections the master passed on are waited for too (a server's close() counts only its own accepts).
    void server
      .close()
      .then(() => adopted?.drained(plan.gracefulTimeoutSeconds * 1000))
      .then(() => process.exit(0));
  };
  // The master decides about reloads and the worker count; a terminal's signals to the whole group
  // (SIGHUP on hang-up, SIGTTIN/SIGTTOU) must not stop or suspend a worker.
  for (const signal of ['SIGHUP', 'SIGTTIN', 'SIGTTOU'] as const) process.on(signal, () => {});
  process.on('SIGTERM', () => stop(null));
  process.on('SIGINT', () => stop(null));
  let status: WorkerStatus | null = null;
  // FastCGI: the kept-alive connections a stopping worker hands to the master, and adopts from it; any
  // transport on the public listen path: the connections the master accepted itself.
  const handover = plan.transport === 'fastcgi' || fromMaster ? await import('./handover.js') : null;
  process.on('message', (message: MasterMessage) => {
    if (status !== null && status.onMessage(message)) return;
    if (message?.type !== 'stop') return;
    // Recycled or reloaded: kept-alive FastCGI connections go to the workers that stay (handover.ts).
    if (message.handover && handover && running && plan.transport === 'fastcgi') (running.server as FastCgiServer).handover = handover.offerToMaster;
    stop(null);
  });
  // The master died (even by SIGKILL): the channel closes; stop accepting, drain, exit. No orphans.
  process.on('disconnect', () => stop('the master is gone: finishing in-flight requests, then exiting'));

  let recycleAsked = false;
  const askRecycle = (reason: RecycleReason, detail: string): void => {
    if (recycleAsked || stopping) return;
    recycleAsked = true;
    send({ type: 'recycle', reason, detail });
  };

  let app;
  try {
    app = await loadApp(plan.reference, plan.cwd);
  } catch (error) {
    return failBoot((error as Error).message);
  }
  const timeoutMs = Math.round(plan.timeoutSeconds * 1000);
  const loaded: App = app;
  let served = 0;
  // Without --timeout, nothing per request but the count --max-requests needs (and not even that without
  // it): the body goes to the server untouched, so its fast paths (one write per small response) stay.
  const counted: App =
    requestLimit > 0
      ? (environ, startResponse) => {
          if (++served >= requestLimit) askRecycle('max-requests', `served ${served} requests (--max-requests ${plan.maxRequests})`);
          return loaded(environ, startResponse);
        }
      : loaded;
  const slowMs = Math.round((plan.slowLogSeconds ?? 0) * 1000);
  // The status page needs the requests in flight, the slow log their start: both need supervision.
  const watched = plan.statusPath !== undefined || slowMs > 0;
  const supervised = timeoutMs <= 0 && !watched ? { app: counted } : (await import('./supervise.js')).superviseApp(app, {
    timeoutMs,
    slowMs,
    trackRunning: plan.statusPath !== undefined,
    onSlow: (request) => {
      const seconds = ((Date.now() - request.started) / 1000).toFixed(1);
      // A request kept waiting asynchronously has no JavaScript stack; one that blocks the loop has its stack
      // logged by the watchdog thread while it blocks (this line comes after, once the loop runs again).
      log(`slow request (--slow-log ${plan.slowLogSeconds}): ${request.method} ${request.uri} still running after ${seconds} s`);
    },
    onRequest: (served) => {
      if (requestLimit > 0 && served >= requestLimit) askRecycle('max-requests', `served ${served} requests (--max-requests ${plan.maxRequests})`);
    },
    onTimeout: (info: TimeoutInfo) => {
      const answer = info.sent ? 'the response was cut (part of it had been sent)' : 'answered 504';
      log(
        `${info.method} ${info.uri} timed out: the app produced nothing for ${info.seconds} s while it was ` +
          `waiting on ${info.waitingFor === 'response' ? "a promise (the app's response)" : 'the next chunk of its body'} ` +
          `(no JavaScript was running, so there is no stack; the request was waiting asynchronously); ${answer}; recycling this worker`,
      );
      askRecycle('timeout', `${info.method} ${info.uri} timed out after ${info.seconds} s`);
    },
  });
  let serving: App = supervised.app;
  if (plan.pingPath !== undefined || plan.statusPath !== undefined) {
    // Loaded only for --ping-path / --status-path.
    const [{ createForwardedPolicy }, { withEndpoints }, { DEFAULT_STATUS_ALLOW }, { WorkerStatus: Status }] = await Promise.all([
      import('../../environ/forwarded-policy.js'),
      import('../status/endpoints.js'),
      import('../status/snapshot.js'),
      import('../status/worker-status.js'),
    ]);
    const tracked = 'served' in supervised ? supervised : null;
    if (tracked !== null) status = new Status(tracked, send);
    serving = withEndpoints(serving, {
      ...(plan.pingPath !== undefined ? { pingPath: plan.pingPath } : {}),
      ...(plan.statusPath !== undefined ? { statusPath: plan.statusPath } : {}),
      statusAllow: createForwardedPolicy(plan.statusAllow ?? DEFAULT_STATUS_ALLOW),
      snapshot: () => (status !== null ? status.snapshot() : Promise.reject(new Error('no status page'))),
    });
  }
  try {
    const listen = listenStep(config.listen);
    running = await startServer(plan, serving, listen);
  } catch (error) {
    return failBoot(`cannot listen on the master's socket (${(error as Error).message})`);
  }
  if (stopping) {
    // Stopped while it was starting.
    void running.close().then(() => process.exit(0));
    return;
  }
  if (timeoutMs > 0 || slowMs > 0) (await import('./watchdog.js')).startWatchdog(timeoutMs, label, slowMs);
  if (timeoutMs > 0) {
    setInterval(() => send({ type: 'beat' }), HEARTBEAT_INTERVAL_MS).unref();
  }
  if (plan.maxRssMiB > 0) {
    const limit = plan.maxRssMiB * MIB;
    const check = setInterval(() => {
      const rss = process.memoryUsage.rss();
      if (rss > limit) {
        clearInterval(check);
        askRecycle('max-rss', `RSS ${(rss / MIB).toFixed(1)} MiB is over --max-rss ${plan.maxRssMiB}`);
      }
    }, RSS_CHECK_MS);
    check.unref();
  }
  if (handover) adopted = handover.adoptFromMaster(running.server);
  if (status !== null && plan.statusPath !== undefined) status.watch(running.server);
  const bound = running.server.address();
  send({ type: 'ready', port: typeof bound === 'object' && bound !== null ? bound.port : null });
}

/**
 * How the worker's server listens (WorkerConfig.listen): on the inherited descriptor, on the master's server
 * sent over IPC, or not at all ('relayed': every connection is an adopted one, see handover.ts adoptFromMaster;
 * the server's close() and drain work the same on a server that never listened).
 */
function listenStep(via: WorkerConfig['listen']): (server: Server) => Promise<void> {
  if (via === 'relayed') return async () => {};
  if (via === 'from-master') return async (server) => (await import('./listen-from-master.js')).listenFromMaster(server, send);
  return (server) => listenOn(server, { kind: 'fd', fd: WORKER_LISTEN_FD });
}

void runWorker().catch((error: unknown) => failBoot(error instanceof Error ? error.message : String(error)));
