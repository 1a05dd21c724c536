/**
 * A `tsgi serve` master's worker processes: what the master knows of each (WorkerState) and how one is started
 * (forkWorker). What the master does with them is master.ts; when they are unwell or why they exited,
 * worker-health.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServePlan } from '../serve-plan.js';
import type { WorkerFigures } from '../status/snapshot.js';
import { WORKER_ENV, WORKER_LISTEN_FD, type MasterMessage, type WorkerConfig } from './messages.js';

/** Environment variables of socket activation: meant for the master, never for its workers. */
const ACTIVATION_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'];

/** What the master knows of one worker process. */
export interface WorkerState {
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

/** The worker module to fork: worker.js next to this file (worker.ts through tsx when running from source). */
export interface WorkerEntry {
  script: string;
  execArgv: string[];
}

/** The worker module next to this file, and the master's Node flags minus the debugger's. */
export function workerEntry(): WorkerEntry {
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const script = fileURLToPath(new URL(fromSource ? './worker.ts' : './worker.js', here));
  // Debugger flags would make every worker fight over the master's inspector port.
  const inherited = process.execArgv.filter((arg) => !/^--(inspect|debug)/.test(arg));
  return { script, execArgv: fromSource ? [...inherited, '--import', 'tsx'] : inherited };
}

/** What forkWorker needs to start one worker. */
export interface ForkOptions {
  entry: WorkerEntry;
  plan: ServePlan;
  id: number;
  slot: number;
  /** Its --max-requests, jitter applied (policy.ts requestLimit). */
  requestLimit: number;
  /** How it gets its connections (WorkerConfig.listen). */
  listen: WorkerConfig['listen'];
  /** The descriptor it finds the listening socket on as WORKER_LISTEN_FD, or 'ignore' (sent over IPC, or none). */
  listenFd: number | 'ignore';
}

/**
 * Forks a worker process with its WorkerConfig in the environment (without the socket-activation variables),
 * the listening socket on fd 3 and the IPC channel on fd 4, and returns its state: booting. The caller
 * listens to the child's events.
 */
export function forkWorker(options: ForkOptions): WorkerState {
  const { plan, id } = options;
  const config: WorkerConfig = {
    id,
    plan: { ...plan, target: { kind: 'fd', fd: WORKER_LISTEN_FD }, socket: {} },
    requestLimit: options.requestLimit,
    listen: options.listen,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(config) };
  for (const name of ACTIVATION_ENV) delete env[name];
  const child = fork(options.entry.script, [], {
    cwd: plan.cwd,
    env,
    execArgv: options.entry.execArgv,
    // The listening socket on fd 3 (else sent over IPC, or none: WorkerConfig.listen), the IPC channel on fd 4;
    // stdin is not the workers' business.
    stdio: ['ignore', 'inherit', 'inherit', options.listenFd, 'ipc'],
  });
  const now = Date.now();
  return {
    id,
    slot: options.slot,
    child,
    pid: child.pid ?? 0,
    startedAt: now,
    readyAt: null,
    lastSeen: now,
    state: 'booting',
    replaceFailures: 0,
    exited: false,
  };
}

/** How log lines name a worker. */
export function workerName(worker: WorkerState): string {
  return `worker ${worker.id} (pid ${worker.pid})`;
}

/** Workers that count towards the target: not stopping, and not a replacement still booting. */
export function activeWorkers(workers: Iterable<WorkerState>): WorkerState[] {
  return [...workers].filter((worker) => worker.state !== 'stopping' && !worker.predecessor);
}

/** The smallest slot no worker (but stopping ones) holds. */
export function freeSlot(workers: Iterable<WorkerState>): number {
  const taken = new Set([...workers].filter((worker) => worker.state !== 'stopping').map((worker) => worker.slot));
  let slot = 1;
  while (taken.has(slot)) slot++;
  return slot;
}

/** Sends `message` to a worker; false when its channel is closed or sending fails. */
export function sendToWorker(worker: WorkerState, message: MasterMessage): boolean {
  if (!worker.child.connected) return false;
  try {
    worker.child.send(message);
    return true;
  } catch {
    return false;
  }
}

/**
 * Picks the worker a relayed connection goes to (handover.ts ConnectionRelay): round robin over the ready ones,
 * those that are not being replaced first (a worker being replaced still serves, and hands it over again later).
 */
export class AdopterRotation {
  #next = 0;

  /** The next serving worker's process, or null when none is ready. */
  next(workers: Iterable<WorkerState>): ChildProcess | null {
    const ready = [...workers].filter((each) => each.state === 'ready' && each.child.connected);
    const staying = ready.filter((each) => !each.successor);
    const candidates = staying.length > 0 ? staying : ready;
    if (candidates.length === 0) return null;
    this.#next = (this.#next + 1) % candidates.length;
    return (candidates[this.#next] as WorkerState).child;
  }
}
