import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeListenTarget } from '../../servers/listen.js';
import type { Io } from '../io.js';
import { TRANSPORT_NAMES, type ServePlan } from '../serve-plan.js';
import { ConnectionRelay, MAX_HELD, type HandoverMessage } from './handover.js';
import type { WorkerFigures } from '../status/snapshot.js';
import { TreeStatus } from '../status/tree-status.js';
import { openListenSocket, type ListenSocket } from './listen-socket.js';
import { Socket } from 'node:net';
import { asWorkerMessage, WORKER_ENV, WORKER_LISTEN_FD, type ListenSocketMessage, type MasterMessage, type WorkerConfig, type WorkerMessage } from './messages.js';
import { createLimitLog } from '../../servers/limit-log.js';
import {
  adjustWorkerCount,
  BOOT_FAILURE_LIMIT,
  BOOT_TIMEOUT_MS,
  heartbeatMissed,
  nextCrashStreak,
  requestLimit,
  respawnDelayMs,
  stopDeadlineMs,
} from './policy.js';

const CHECK_INTERVAL_MS = 250;
/** Environment variables of socket activation: meant for the master, never for its workers. */
const ACTIVATION_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'];

interface WorkerState {
  id: number;
  /** The worker's place (1..N) for the status page: a replacement takes its predecessor's. */
  slot: number;
  /** Its last figures (--status-path). */
  figures?: WorkerFigures;
  /** Stopped because there are fewer workers now (SIGTTOU): not a restart. */
  noRestart?: boolean;
  child: ChildProcess;
  pid: number;
  startedAt: number;
  readyAt: number | null;
  lastSeen: number;
  /** booting: not listening yet; ready: serving; stopping: told to stop (or killed). */
  state: 'booting' | 'ready' | 'stopping';
  /** Why the master killed it (stuck, boot timeout): its exit is expected. */
  killedBecause?: string;
  /** What the worker said when it could not start. */
  bootError?: string;
  /** A replacement booting for this worker; this one stops once it is ready. */
  successor?: WorkerState;
  /** The worker this one replaces (not counted until ready). */
  predecessor?: WorkerState;
  replaceReason?: string;
  replaceFailures: number;
  stopTimer?: NodeJS.Timeout;
  exited: boolean;
}

/**
 * Runs `tsgi serve` as a master with plan.workers worker processes: prefork over one listening socket that
 * the master binds and keeps for its whole life (workers accept on it directly), respawn with backoff,
 * recycling (max-requests, max-rss, timeout) without losing a request, heartbeats, and the signals
 * SIGTERM/SIGINT (drain and exit 0; a second one: at once), SIGHUP (reload: a new generation of workers,
 * ready before the old ones stop accepting), SIGTTIN/SIGTTOU (one worker more/less).
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
  return new Master(plan, io, socket).run();
}

/** The worker module to fork: worker.js next to this file (worker.ts through tsx when running from source). */
function workerEntry(): { script: string; execArgv: string[] } {
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const script = fileURLToPath(new URL(fromSource ? './worker.ts' : './worker.js', here));
  // Debugger flags would make every worker fight over the master's inspector port.
  const inherited = process.execArgv.filter((arg) => !/^--(inspect|debug)/.test(arg));
  return { script, execArgv: fromSource ? [...inherited, '--import', 'tsx'] : inherited };
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
  #nextAdopter = 0;
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
      () => this.#adopter(),
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
    this.#checkTimer = setInterval(() => this.#check(), CHECK_INTERVAL_MS);
    this.#watchNpmParent();
    for (let i = 0; i < this.#target; i++) this.#spawn();
    return exit;
  }

  /**
   * Under npm (npx, npm exec, npm start) the master's parent is npm's `sh -c`, which dies on a SIGTERM that
   * npm forwards to it without passing it on: the master would be left running. So under npm only (an
   * ordinary background start, nohup or setsid, must survive its shell), a master whose parent is gone stops.
   */
  #watchNpmParent(): void {
    if (!process.env.npm_command && !process.env.npm_lifecycle_event) return;
    const parent = process.ppid;
    const timer = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(timer);
      this.#stop(`the npm process that started this master (pid ${parent}) is gone:`);
    }, 1_000);
    timer.unref();
  }

  #log(text: string): void {
    this.#io.stderr.write(`tsgi: ${text}\n`);
  }

  #name(worker: WorkerState): string {
    return `worker ${worker.id} (pid ${worker.pid})`;
  }

  /** Workers that count towards the target: not stopping, and not a replacement still booting. */
  #active(): WorkerState[] {
    return [...this.#workers].filter((worker) => worker.state !== 'stopping' && !worker.predecessor);
  }

  /** The smallest slot no worker (but stopping ones) holds. */
  #freeSlot(): number {
    const taken = new Set([...this.#workers].filter((worker) => worker.state !== 'stopping').map((worker) => worker.slot));
    let slot = 1;
    while (taken.has(slot)) slot++;
    return slot;
  }

  #spawn(slot = this.#freeSlot()): WorkerState {
    const id = this.#nextId++;
    const config: WorkerConfig = {
      id,
      plan: { ...this.#plan, target: { kind: 'fd', fd: WORKER_LISTEN_FD }, socket: {} },
      requestLimit: requestLimit(this.#plan.maxRequests, this.#plan.maxRequestsJitter),
      listen: this.#listenVia(),
    };
    const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(config) };
    for (const name of ACTIVATION_ENV) delete env[name];
    const child = fork(this.#entry.script, [], {
      cwd: this.#plan.cwd,
      env,
      execArgv: this.#entry.execArgv,
      // The listening socket on fd 3 (else sent over IPC: #sendListenSocket), the IPC channel on fd 4; stdin is
      // not the workers' business.
      stdio: ['ignore', 'inherit', 'inherit', this.#inheritedSocket(), 'ipc'],
    });
    const now = Date.now();
    const worker: WorkerState = {
      id,
      slot,
      child,
      pid: child.pid ?? 0,
      startedAt: now,
      readyAt: null,
      lastSeen: now,
      state: 'booting',
      replaceFailures: 0,
      exited: false,
    };
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
    this.#log(`${this.#name(worker)} started`);
    return worker;
  }

  /**
   * How a worker gets the listening socket: inherited on fd 3 (the private handle's descriptor, or an inherited
   * fd: target's own number), or over IPC (the public fallback for TCP and unix sockets). Known gap: on the
   * fallback a worker cannot listen on a unix socket's server received over IPC (Node 20 opens the descriptor
   * a second time: EEXIST); see the report of brief s17/cluster.
   */
  #listenVia(): WorkerConfig['listen'] {
    return this.#socket.kind === 'server' && this.#plan.target.kind !== 'fd' ? 'from-master' : 'inherited';
  }

  #inheritedSocket(): number | 'ignore' {
    if (this.#socket.kind === 'descriptor') return this.#socket.fd;
    return this.#plan.target.kind === 'fd' ? this.#plan.target.fd : 'ignore';
  }

  #send(worker: WorkerState, message: MasterMessage): boolean {
    if (!worker.child.connected) return false;
    try {
      worker.child.send(message);
      return true;
    } catch {
      return false;
    }
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
        this.#sendListenSocket(worker);
        break;
      case 'stats':
        this.#status.received(worker, message.figures, message.query);
        break;
      case 'status-query':
        this.#answerStatus(worker, message.query);
        break;
    }
  }

  /** The public fallback: a booting worker's server is ready to listen on the master's net.Server. */
  #sendListenSocket(worker: WorkerState): void {
    const socket = this.#socket;
    if (socket.kind !== 'server' || worker.state !== 'booting' || !worker.child.connected) return;
    try {
      worker.child.send({ type: 'listen-socket' } satisfies ListenSocketMessage, socket.server, {}, (error) => {
        if (error) worker.bootError = `cannot send the listening socket (${error.message})`;
      });
    } catch (error) {
      worker.bootError = `cannot send the listening socket (${(error as Error).message})`;
    }
  }

  /** Gathers every serving worker's figures and sends the tree to `asker` (its status page). */
  #answerStatus(asker: WorkerState, query: number): void {
    const shown = [...this.#workers].filter((worker) => worker.state !== 'stopping' && !worker.predecessor);
    this.#status.gather(
      shown,
      (worker, gatherQuery) => (worker as WorkerState).state === 'ready' && this.#send(worker as WorkerState, { type: 'stats-query', query: gatherQuery }),
      (snapshot) => void this.#send(asker, { type: 'status', query, snapshot }),
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
    this.#log(`${this.#name(worker)} ready`);
    this.#relay.flush();
    if (this.#stopping) {
      this.#retire(worker, 'the master is stopping');
      return;
    }
    const old = worker.predecessor;
    if (old) {
      worker.predecessor = undefined;
      old.successor = undefined;
      this.#retire(old, `replaced by ${this.#name(worker)}`);
    }
    if (!this.#announced && this.#active().filter((each) => each.state === 'ready').length >= this.#target) this.#announce();
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
    this.#log(`${this.#name(worker)} stopping (${why})`);
    // Its kept-alive connections go to the workers that stay (handover.ts), unless the master is stopping too.
    if (!this.#send(worker, { type: 'stop', handover: !this.#stopping })) worker.child.kill('SIGTERM');
    worker.stopTimer = setTimeout(() => {
      if (worker.exited) return;
      this.#log(`${this.#name(worker)} did not finish within --graceful-timeout ${this.#plan.gracefulTimeoutSeconds}: killing it`);
      worker.child.kill('SIGKILL');
    }, stopDeadlineMs(this.#plan.gracefulTimeoutSeconds));
  }

  /**
   * A serving worker to pass a handed-over connection to, or null: round robin over the ready ones, those
   * that are not being replaced first (a worker being replaced still serves, and hands it over again later).
   */
  #adopter(): ChildProcess | null {
    const ready = [...this.#workers].filter((each) => each.state === 'ready' && each.child.connected);
    const staying = ready.filter((each) => !each.successor);
    const candidates = staying.length > 0 ? staying : ready;
    if (candidates.length === 0) return null;
    this.#nextAdopter = (this.#nextAdopter + 1) % candidates.length;
    return (candidates[this.#nextAdopter] as WorkerState).child;
  }

  /** Starts a replacement for a serving worker; the old one stops once the new one listens (no request lost). */
  #replace(worker: WorkerState, reason: string): void {
    if (this.#stopping || worker.state !== 'ready' || worker.successor || worker.exited) return;
    this.#log(`${this.#name(worker)} recycled because ${reason}`);
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
    const status = signal ? `signal ${signal}` : `status ${code ?? 'unknown'}`;
    const wasBooting = worker.state === 'booting';
    this.#status.retire(worker, this.#restartReason(worker, status));
    if (worker.state === 'stopping') {
      this.#log(`${this.#name(worker)} exited (${status})`);
    } else if (wasBooting) {
      const why = worker.bootError ?? worker.killedBecause ?? `exited with ${status} before it was listening`;
      // Before the first announcement the reason is printed alone, as the single-process server prints it.
      if (this.#announced) this.#log(`${this.#name(worker)} could not start: ${why}`);
    } else if (worker.killedBecause) {
      this.#log(`${this.#name(worker)} killed (${worker.killedBecause})`);
    } else {
      this.#log(`${this.#name(worker)} died unexpectedly (${status})`);
    }
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
        this.#log(`${this.#name(old)} keeps serving${reloading ? ' the code it had loaded (reload failed)' : ''}`);
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

  /** Why a worker that exited counts as a restart of its slot; null when it does not (a stop, a failed boot). */
  #restartReason(worker: WorkerState, status: string): string | null {
    if (this.#stopping || worker.noRestart || worker.state === 'booting') return null;
    if (worker.state === 'stopping') return worker.replaceReason ?? null;
    if (worker.killedBecause) return `killed: ${worker.killedBecause}`;
    return `crash: exited with ${status}`;
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
    const active = this.#active();
    for (let count = active.length; count < this.#target; count++) this.#spawn();
    if (active.length > this.#target) {
      const oldestFirst = active.sort((a, b) => a.startedAt - b.startedAt);
      for (const worker of oldestFirst.slice(0, active.length - this.#target)) {
        worker.noRestart = true;
        this.#retire(worker, 'fewer workers (SIGTTOU)');
      }
    }
  }

  #check(): void {
    const now = Date.now();
    for (const worker of this.#workers) {
      if (worker.exited || worker.killedBecause) continue;
      if (worker.state === 'booting' && now - worker.startedAt > BOOT_TIMEOUT_MS) {
        worker.killedBecause = `not listening ${BOOT_TIMEOUT_MS / 1000} s after it was started`;
        worker.child.kill('SIGKILL');
      } else if (worker.state === 'ready' && heartbeatMissed(worker.lastSeen, now, this.#timeoutMs)) {
        // The worker's own watchdog acts at --timeout; this is the backstop.
        worker.killedBecause = `no heartbeat for ${((now - worker.lastSeen) / 1000).toFixed(1)} s (--timeout ${this.#plan.timeoutSeconds}): its event loop is blocked`;
        this.#log(`${this.#name(worker)}: ${worker.killedBecause}; killing it`);
        worker.child.kill('SIGKILL');
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
