/**
 * A `tsgi serve` master's judgement of its workers: which ones are unwell (a boot that takes too long, a
 * heartbeat missed) and what a worker's exit means (its log line, and whether it counts as a restart).
 */
import { BOOT_TIMEOUT_MS, heartbeatMissed } from './policy.js';
import { workerName, type WorkerState } from './worker-process.js';

/** What checkWorkerHealth needs of the master. */
export interface HealthCheck {
  /** --timeout in ms (0 = no heartbeat expected) and as given, in seconds, for the log line. */
  timeoutMs: number;
  timeoutSeconds: number;
  log(text: string): void;
}

/**
 * Kills (SIGKILL) each worker still booting BOOT_TIMEOUT_MS after it started, and each serving worker whose
 * heartbeat is overdue (the worker's own watchdog acts at --timeout; this is the backstop), recording why on
 * the worker (killedBecause) so that its exit is understood.
 */
export function checkWorkerHealth(workers: Iterable<WorkerState>, now: number, check: HealthCheck): void {
  for (const worker of workers) {
    if (worker.exited || worker.killedBecause) continue;
    if (worker.state === 'booting' && now - worker.startedAt > BOOT_TIMEOUT_MS) {
      worker.killedBecause = `not listening ${BOOT_TIMEOUT_MS / 1000} s after it was started`;
      worker.child.kill('SIGKILL');
    } else if (worker.state === 'ready' && heartbeatMissed(worker.lastSeen, now, check.timeoutMs)) {
      worker.killedBecause = `no heartbeat for ${((now - worker.lastSeen) / 1000).toFixed(1)} s (--timeout ${check.timeoutSeconds}): its event loop is blocked`;
      check.log(`${workerName(worker)}: ${worker.killedBecause}; killing it`);
      worker.child.kill('SIGKILL');
    }
  }
}

/** "status N" or "signal NAME", as exit lines give it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `status ${code ?? 'unknown'}`;
}

/**
 * The master's log line for a worker that exited (`status`: exitStatus), or null for a worker that could not
 * start before the first announcement (its reason is printed alone then, as the single-process server prints it).
 */
export function exitLine(worker: WorkerState, status: string, announced: boolean): string | null {
  if (worker.state === 'stopping') return `${workerName(worker)} exited (${status})`;
  if (worker.state === 'booting') {
    const why = worker.bootError ?? worker.killedBecause ?? `exited with ${status} before it was listening`;
    return announced ? `${workerName(worker)} could not start: ${why}` : null;
  }
  if (worker.killedBecause) return `${workerName(worker)} killed (${worker.killedBecause})`;
  return `${workerName(worker)} died unexpectedly (${status})`;
}

/**
 * Why a worker that exited counts as a restart of its slot (the status page); null when it does not (the
 * master is stopping, fewer workers, a failed boot).
 */
export function restartReason(worker: WorkerState, status: string, masterStopping: boolean): string | null {
  if (masterStopping || worker.noRestart || worker.state === 'booting') return null;
  if (worker.state === 'stopping') return worker.replaceReason ?? null;
  if (worker.killedBecause) return `killed: ${worker.killedBecause}`;
  return `crash: exited with ${status}`;
}
