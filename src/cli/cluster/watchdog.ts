import { Worker } from 'node:worker_threads';

/** How often the event loop stamps the shared clock the watchdog reads. */
export const TICK_MS = 100;

/** What the watchdog thread gets as workerData. */
export interface WatchdogData {
  /** Float64Array[1] over a SharedArrayBuffer: the last time (ms) the event loop ran. */
  tick: SharedArrayBuffer;
  /** A loop blocked this long is a stuck request (0: never killed). */
  timeoutMs: number;
  /** A loop blocked this long gets its stack logged once, and goes on (--slow-log; 0: off). */
  slowMs: number;
  /** Prefix for log lines, e.g. "tsgi: worker 2 (pid 123)". */
  label: string;
}

/**
 * Starts the watchdog of a worker: a thread that notices when this process's event loop has been blocked
 * for `timeoutMs` (a request stuck in synchronous code, which no timer on the blocked thread can interrupt),
 * writes the JavaScript stack it is blocked in to stderr (taken through the inspector's in-process session,
 * which interrupts running JavaScript: no port is opened), and kills the process with SIGKILL so that the
 * master replaces it. With `slowMs` (--slow-log), a loop blocked that long has its stack logged once per
 * blocked stretch, without being killed. The thread does not keep the process alive.
 */
export function startWatchdog(timeoutMs: number, label: string, slowMs = 0): void {
  const tick = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
  const stamp = new Float64Array(tick);
  stamp[0] = Date.now();
  setInterval(() => {
    stamp[0] = Date.now();
  }, TICK_MS).unref();
  const data: WatchdogData = { tick, timeoutMs, slowMs, label };
  const thread = new Worker(new URL('./watchdog-thread.js', import.meta.url), { workerData: data, stdout: false, stderr: false });
  thread.unref();
  thread.on('error', (error) => process.stderr.write(`${label}: watchdog failed: ${error.message}\n`));
}
