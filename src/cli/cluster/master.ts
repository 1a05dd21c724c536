import { Socket } from 'node:net';
import { describeListenTarget } from '../../servers/listen.js';
import { createLimitLog } from '../../servers/limit-log.js';
import type { Io } from '../io.js';
import { TRANSPORT_NAMES, type ServePlan } from '../serve-plan.js';
import { TreeStatus } from '../status/tree-status.js';
import { ConnectionRelay, MAX_HELD, type HandoverMessage } from './handover.js';
import { openListenSocket, sendListenSocket, workerListenFd, workerListenVia, type ListenSocket } from './listen-socket.js';
import { asWorkerMessage, type WorkerMessage } from './messages.js';
import { watchNpmParent } from './npm-parent.js';
import { adjustWorkerCount, BOOT_FAILURE_LIMIT, nextCrashStreak, requestLimit, respawnDelayMs, stopDeadlineMs } from './policy.js';
import { checkWorkerHealth, exitLine, exitStatus, restartReason } from './worker-health.js';
import { activeWorkers, AdopterRotation, forkWorker, freeSlot, sendToWorker, workerEntry, workerName, type WorkerState } from './worker-process.js';

/**
 * How often the master checks its workers' health (worker-health.ts), while there is something to check: a
 * worker still booting, or heartbeats (--timeout).
 */
const CHECK_INTERVAL_MS = 250;

/**
 * Runs `tsgi serve` as a master with plan.workers worker processes: prefork over one listening socket that
 * the master binds and keeps for its whole life (workers accept on it directly), respawn with backoff,
 * recycling (max-requests, max-rss, timeout) without losing a request, heartbeats, and the signals
 * SIGTERM/SIGINT (drain and exit 0; a second one: at once), SIGHUP (reload: a new generation of workers,
 * ready before the old ones stop accepting), SIGTTIN/SIGTTOU (one worker more/less).
 *
 * The socket is listening before the first worker starts (listen-socket.ts openListenSocket): connections that
 * arrive while the workers load the app wait in its backlog, and no other process can take the address.
 *
 * Resolves with the exit status: 0 after a stop by signal, 1 when the socket cannot be had, the first
 * workers cannot start, or workers keep failing to start.
 */
export async function runMaster(plan: ServePlan, io: Io): Promise<number> {
  let socket: ListenSocket;
  try {
    socket = await openListenSocket(plan.target, plan.socket);
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  if (socket.kind === 'descriptor' && socket.notListening !== undefined) {
    io.stderr.write(`tsgi: ${socket.notListening}; the socket listens once the first worker has loaded the app (until then another process could take ${describeListenTarget(plan.target)})\n`);
  }
  return new Master(plan, io, socket).run();
}

class Master {
  readonly #plan: ServePlan;
  readonly #io: Io;
  readonly #socket: ListenSocket;
  readonly #workers = new Set<WorkerState>();
  readonly #entry = workerEntry();
  readonly #timeoutMs: number;
  #target: number;
  #nextId = 1;
  readonly #adopters = new AdopterRotation();
  readonly #relay: ConnectionRelay;
  /** Workers numbered below this were started before the last SIGHUP: they are replaced once ready. */
  #reloadBelowId = 0;
  #port: number | null = null;
  #announced = false;
  #stopping = false;
  #finished = false;
  #crashStreak = 0;
  #bootFailures = 0;
  #respawnTimer: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #resolveExit: (status: number) => void = () => {};
  readonly #signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  readonly #status = new TreeStatus(() => ({ transport: TRANSPORT_NAMES[this.#plan.transport], address: this.#address() }));

  constructor(plan: ServePlan, io: Io, socket: ListenSocket) {
    this.#plan = plan;
    this.#io = io;
    this.#socket = socket;
    this.#target = Math.max(1, plan.workers);
    this.#timeoutMs = Math.round(plan.timeoutSeconds * 1000);
    const limitLog = createLimitLog({ write: (line: string) => void io.stderr.write(line) }, 'master');
    this.#relay = new ConnectionRelay(
      () => this.#adopters.next(this.#workers),
      () => limitLog.hit('maxHeldConnections', `closed a connection: ${MAX_HELD} are waiting for a worker to be ready`, `fewer connections at once, or more workers (the limit is MAX_HELD in cli/cluster/handover.ts)`),
    );
    if (socket.kind === 'server') {
      // The public fallback: what the master accepts itself (never read here) goes to a ready worker.
      socket.server.on('connection', (connection: Socket) => this.#relay.acceptPaused(connection));
      const bound = socket.server.address();
      if (typeof bound === 'object' && bound !== null) this.#port = bound.port;
    }
  }

  run(): Promise<number> {
    const exit = new Promise<number>((resolve) => (this.#resolveExit = resolve));
    const on = (signal: NodeJS.Signals, handler: () => void): void => {
      process.on(signal, handler);
      this.#signalHandlers.push([signal, handler]);
    };
    on('SIGTERM', () => this.#stop('SIGTERM'));
    on('SIGINT', () => this.#stop('SIGINT'));
    on('SIGHUP', () => this.#reload());
    on('SIGTTIN', () => this.#resize(1));
    on('SIGTTOU', () => this.#resize(-1));
    watchNpmParent((parent) => this.#stop(`the npm process that started this master (pid ${parent}) is gone:`));
    for (let i = 0; i < this.#target; i++) this.#spawn();
    return exit;
  }

  /**
   * Starts the health check timer when there is something to check, and stops it when there is not (it stops
   * itself once every worker is ready and no heartbeat is expected: the default --timeout 0). An idle master
   * then runs no JavaScript (but npm-parent.ts's check under npm). A timer every 250 ms for the master's whole
   * life made Node's timer code hot enough for V8 to compile it with TurboFan after about 5 minutes, which
   * brought TurboFan's code pages (of the node binary: shared, but counted in VmRSS) and a malloc arena for
   * its compile thread into the master's RSS: +4.4 MiB VmRSS, once, measured on Node 20.
   */
  #watchHealth(): void {
    const needed = this.#timeoutMs > 0 || [...this.#workers].some((worker) => worker.state === 'booting' && !worker.exited);
    if (needed && !this.#checkTimer && !this.#finished) {
      this.#checkTimer = setInterval(() => {
        checkWorkerHealth(this.#workers, Date.now(), { timeoutMs: this.#timeoutMs, timeoutSeconds: this.#plan.timeoutSeconds, log: (text) => this.#log(text) });
        this.#watchHealth();
      }, CHECK_INTERVAL_MS);
    } else if (!needed && this.#checkTimer) {
      clearInterval(this.#checkTimer);
      this.#checkTimer = undefined;
    }
  }

  #log(text: string): void {
    this.#io.stderr.write(`tsgi: ${text}\n`);
  }

  #spawn(slot = freeSlot(this.#workers)): WorkerState {
    const worker = forkWorker({
      entry: this.#entry,
      plan: this.#plan,
      id: this.#nextId++,
      slot,
      requestLimit: requestLimit(this.#plan.maxRequests, this.#plan.maxRequestsJitter),
      listen: workerListenVia(this.#socket, this.#plan.target),
      listenFd: workerListenFd(this.#socket),
    });
    const child = worker.child;
    this.#workers.add(worker);
    child.on('message', (message: unknown, handle: unknown) => {
      if ((message as HandoverMessage | null)?.type === 'handover' && isSocket(handle)) {
        this.#relay.accept(handle);
        return;
      }
      this.#onMessage(worker, asWorkerMessage(message));
    });
    child.once('exit', (code, signal) => this.#onExit(worker, code, signal));
    child.on('error', (error) => {
      // Spawning failed (no pid) or the IPC channel broke; an exit event follows when there was a process.
      if (worker.pid === 0) {
        worker.bootError = `cannot start a worker process (${error.message})`;
        this.#onExit(worker, null, null);
      }
    });
    this.#log(`${workerName(worker)} started`);
    this.#watchHealth();
    return worker;
  }

  #onMessage(worker: WorkerState, message: WorkerMessage | null): void {
    worker.lastSeen = Date.now();
    if (!message) return;
    switch (message.type) {
      case 'ready':
        this.#onReady(worker, message.port);
        break;
      case 'boot-failed':
        worker.bootError = message.message;
        break;
      case 'recycle':
        this.#replace(worker, `${message.reason}: ${message.detail}`);
        break;
      case 'beat':
        break;
      case 'listen':
        if (worker.state === 'booting') sendListenSocket(this.#socket, worker.child, (why) => (worker.bootError = why));
        break;
      case 'stats':
        this.#status.received(worker, message.figures, message.query);
        break;
      case 'status-query':
        this.#answerStatus(worker, message.query);
        break;
    }
  }

  /** Gathers every serving worker's figures and sends the tree to `asker` (its status page). */
  #answerStatus(asker: WorkerState, query: number): void {
    const shown = [...this.#workers].filter((worker) => worker.state !== 'stopping' && !worker.predecessor);
    this.#status.gather(
      shown,
      (worker, gatherQuery) => (worker as WorkerState).state === 'ready' && sendToWorker(worker as WorkerState, { type: 'stats-query', query: gatherQuery }),
      (snapshot) => void sendToWorker(asker, { type: 'status', query, snapshot }),
    );
  }

  /** The listening address as the startup line gives it. */
  #address(): string {
    const plan = this.#plan;
    const target = plan.target.kind === 'tcp' && this.#port !== null ? { ...plan.target, port: this.#port } : plan.target;
    return describeListenTarget(target);
  }

  #onReady(worker: WorkerState, port: number | null): void {
    if (worker.state !== 'booting') return;
    worker.state = 'ready';
    worker.readyAt = Date.now();
    this.#bootFailures = 0;
    if (port !== null) this.#port = port;
    this.#log(`${workerName(worker)} ready`);
    this.#relay.flush();
    if (this.#stopping) {
      this.#retire(worker, 'the master is stopping');
      return;
    }
    const old = worker.predecessor;
    if (old) {
      worker.predecessor = undefined;
      old.successor = undefined;
      this.#retire(old, `replaced by ${workerName(worker)}`);
    }
    if (!this.#announced && activeWorkers(this.#workers).filter((each) => each.state === 'ready').length >= this.#target) this.#announce();
    if (worker.id < this.#reloadBelowId) this.#replace(worker, 'reload (SIGHUP)');
  }

  #announce(): void {
    this.#announced = true;
    const plan = this.#plan;
    const target = plan.target.kind === 'tcp' && this.#port !== null ? { ...plan.target, port: this.#port } : plan.target;
    const address = describeListenTarget(target);
    const where = plan.transport === 'http' && target.kind === 'tcp' ? `http://${address}/` : address;
    const count = this.#target === 1 ? '1 worker' : `${this.#target} workers`;
    this.#io.stdout.write(`tsgi: serving ${plan.label ?? plan.reference} over ${TRANSPORT_NAMES[plan.transport]} at ${where} with ${count} (pid ${process.pid})\n`);
  }

  /** Tells a worker to stop accepting, finish its requests and exit; kills it after the graceful timeout. */
  #retire(worker: WorkerState, why: string): void {
    if (worker.state === 'stopping' || worker.exited) return;
    worker.state = 'stopping';
    if (worker.successor) {
      // Its replacement becomes an ordinary worker.
      worker.successor.predecessor = undefined;
      worker.successor = undefined;
    }
    this.#log(`${workerName(worker)} stopping (${why})`);
    // Its kept-alive connections go to the workers that stay (handover.ts), unless the master is stopping too.
    if (!sendToWorker(worker, { type: 'stop', handover: !this.#stopping })) worker.child.kill('SIGTERM');
    worker.stopTimer = setTimeout(() => {
      if (worker.exited) return;
      this.#log(`${workerName(worker)} did not finish within --graceful-timeout ${this.#plan.gracefulTimeoutSeconds}: killing it`);
      worker.child.kill('SIGKILL');
    }, stopDeadlineMs(this.#plan.gracefulTimeoutSeconds));
  }

  /** Starts a replacement for a serving worker; the old one stops once the new one listens (no request lost). */
  #replace(worker: WorkerState, reason: string): void {
    if (this.#stopping || worker.state !== 'ready' || worker.successor || worker.exited) return;
    this.#log(`${workerName(worker)} recycled because ${reason}`);
    const successor = this.#spawn(worker.slot);
    successor.predecessor = worker;
    worker.successor = successor;
    worker.replaceReason = reason;
  }

  #onExit(worker: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    if (worker.exited) return;
    worker.exited = true;
    this.#workers.delete(worker);
    if (worker.stopTimer) clearTimeout(worker.stopTimer);
    const status = exitStatus(code, signal);
    const wasBooting = worker.state === 'booting';
    this.#status.retire(worker, restartReason(worker, status, this.#stopping));
    const line = exitLine(worker, status, this.#announced);
    if (line !== null) this.#log(line);
    if (this.#stopping) {
      if (this.#workers.size === 0) this.#finish(0);
      return;
    }
    // A worker told to stop: its replacement (if any) is already counted.
    if (worker.state === 'stopping') return;
    if (wasBooting) {
      const old = worker.predecessor;
      if (old && !old.exited) {
        // A failed replacement: the old worker keeps serving. A reload is not retried (the new code does not
        // start); a recycle is, later.
        old.successor = undefined;
        old.replaceFailures++;
        const reloading = old.replaceReason?.startsWith('reload') === true;
        this.#log(`${workerName(old)} keeps serving${reloading ? ' the code it had loaded (reload failed)' : ''}`);
        if (!reloading) {
          const delay = respawnDelayMs(old.replaceFailures);
          const reason = old.replaceReason ?? 'recycling';
          setTimeout(() => this.#replace(old, `${reason} (retry)`), delay).unref();
        }
        return;
      }
      if (!this.#announced) {
        this.#fatal(worker.bootError ?? `tsgi serve: the worker could not start (${status})`);
        return;
      }
      this.#bootFailures++;
      if (this.#bootFailures >= BOOT_FAILURE_LIMIT) {
        this.#fatal(`tsgi serve: workers failed to start ${this.#bootFailures} times in a row; giving up`);
        return;
      }
    }
    if (worker.successor) {
      // It was being replaced: the replacement takes its place.
      worker.successor.predecessor = undefined;
      worker.successor = undefined;
      return;
    }
    let delay = 0;
    if (!worker.killedBecause) {
      const readyFor = worker.readyAt === null ? null : Date.now() - worker.readyAt;
      this.#crashStreak = nextCrashStreak(this.#crashStreak, readyFor);
      delay = respawnDelayMs(this.#crashStreak);
    }
    this.#scheduleReconcile(delay);
  }

  #scheduleReconcile(delay: number): void {
    if (this.#respawnTimer || this.#stopping) return;
    if (delay > 0) this.#log(`starting a new worker in ${delay} ms`);
    this.#respawnTimer = setTimeout(() => {
      this.#respawnTimer = undefined;
      this.#reconcile();
    }, delay);
  }

  /** Starts or stops workers until the target count is met. */
  #reconcile(): void {
    if (this.#stopping) return;
    const active = activeWorkers(this.#workers);
    for (let count = active.length; count < this.#target; count++) this.#spawn();
    if (active.length > this.#target) {
      const oldestFirst = active.sort((a, b) => a.startedAt - b.startedAt);
      for (const worker of oldestFirst.slice(0, active.length - this.#target)) {
        worker.noRestart = true;
        this.#retire(worker, 'fewer workers (SIGTTOU)');
      }
    }
  }

  #reload(): void {
    if (this.#stopping) return;
    // Every worker started before this signal is replaced, including those still booting (they become
    // ready, then are replaced in turn: see #onReady).
    this.#reloadBelowId = this.#nextId;
    const serving = [...this.#workers].filter((worker) => worker.state === 'ready' && !worker.successor);
    this.#log(`SIGHUP received: reloading (${serving.length} new ${serving.length === 1 ? 'worker loads' : 'workers load'} the app anew; the old ones stop once they are ready)`);
    for (const worker of serving) this.#replace(worker, 'reload (SIGHUP)');
  }

  #resize(change: 1 | -1): void {
    if (this.#stopping) return;
    const before = this.#target;
    this.#target = adjustWorkerCount(this.#target, change);
    this.#log(`${change > 0 ? 'SIGTTIN' : 'SIGTTOU'} received: workers ${before} -> ${this.#target}`);
    this.#reconcile();
  }

  /** `why`: the signal's name, or a sentence ending with ":" for a stop that no signal asked for. */
  #stop(why: string): void {
    const cause = why.endsWith(':') ? why : `${why} received,`;
    if (this.#stopping) {
      this.#log(`${why.endsWith(':') ? why : `${why} received again:`} stopping now`);
      for (const worker of this.#workers) worker.child.kill('SIGKILL');
      this.#finish(1);
      return;
    }
    this.#stopping = true;
    if (this.#respawnTimer) clearTimeout(this.#respawnTimer);
    this.#log(`${cause} stopping ${this.#workers.size} ${this.#workers.size === 1 ? 'worker' : 'workers'} (finishing in-flight requests)`);
    for (const worker of this.#workers) this.#retire(worker, why.endsWith(':') ? 'the master is stopping' : why);
    if (this.#workers.size === 0) this.#finish(0);
  }

  #fatal(message: string): void {
    this.#io.stderr.write(`${message}\n`);
    this.#stopping = true;
    if (this.#respawnTimer) clearTimeout(this.#respawnTimer);
    for (const worker of this.#workers) worker.child.kill('SIGKILL');
    this.#finish(1);
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#relay.closeAll();
    if (this.#checkTimer) clearInterval(this.#checkTimer);
    if (this.#respawnTimer) clearTimeout(this.#respawnTimer);
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler);
    this.#socket.close();
    this.#resolveExit(status);
  }
}

function isSocket(value: unknown): value is Socket {
  return value instanceof Socket;
}
