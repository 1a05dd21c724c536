/**
 * The watchdog thread (see watchdog.ts). It writes with fs.writeSync(2): a worker thread's console goes
 * through the main thread, which is the one that is blocked.
 */
import { writeSync } from 'node:fs';
import { Session } from 'node:inspector';
import { workerData } from 'node:worker_threads';
import type { WatchdogData } from './watchdog.js';

const CHECK_MS = 100;
/** How long to wait for the blocked thread to pause (it cannot while inside native code). */
const STACK_WAIT_MS = 2_000;
const MAX_FRAMES = 30;

const { tick, timeoutMs, slowMs, label } = workerData as WatchdogData;
const stamp = new Float64Array(tick);
let acting = false;
/** The loop's stamp when the slow log last wrote a stack: one stack per blocked stretch. */
let slowLoggedAt = -1;

const timer = setInterval(() => {
  if (acting) return;
  const last = stamp[0] ?? Date.now();
  const blockedMs = Date.now() - last;
  if (slowMs > 0 && blockedMs >= slowMs && (timeoutMs === 0 || blockedMs < timeoutMs) && slowLoggedAt !== last) {
    // --slow-log: the stack of the code holding the loop, once, and the worker goes on.
    slowLoggedAt = last;
    acting = true;
    void takeStack(true).then((stack) => {
      acting = false;
      const lines = [
        `${label}: slow request (--slow-log ${slowMs / 1000}): the event loop has been blocked for ${(blockedMs / 1000).toFixed(1)} s by synchronous code`,
        stack === null ? '  (no JavaScript stack: the thread is blocked in native code)' : `  the app's stack:\n${stack}`,
      ];
      writeSync(2, `${lines.join('\n')}\n`);
    });
    return;
  }
  if (timeoutMs === 0 || blockedMs < timeoutMs) return;
  acting = true;
  clearInterval(timer);
  void takeStack().then((stack) => {
    const seconds = (blockedMs / 1000).toFixed(1);
    const lines = [
      `${label}: the event loop has been blocked for ${seconds} s (--timeout ${timeoutMs / 1000}): a request is stuck in synchronous code; killing this worker.`,
      stack === null ? '  (no JavaScript stack: the thread is blocked in native code)' : `  the app's stack:\n${stack}`,
    ];
    try {
      writeSync(2, `${lines.join('\n')}\n`);
    } finally {
      process.kill(process.pid, 'SIGKILL');
    }
  });
}, CHECK_MS);

/**
 * Pauses the main thread through the inspector and formats its call frames; null when it does not pause.
 * With `resume`, the thread runs on afterwards (the slow log); without, it stays paused (it is killed next).
 */
function takeStack(resume = false): Promise<string | null> {
  return new Promise((resolve) => {
    const session = new Session();
    const scripts = new Map<string, string>();
    let finished = false;
    const done = (value: string | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(giveUp);
      if (resume) {
        session.post('Debugger.resume', () => {
          try {
            session.disconnect();
          } catch {
            // Already gone.
          }
        });
      }
      resolve(value);
    };
    const giveUp = setTimeout(() => done(null), STACK_WAIT_MS);
    try {
      session.connectToMainThread();
    } catch {
      done(null);
      return;
    }
    session.on('Debugger.scriptParsed', (message) => {
      const params = message.params as { scriptId: string; url: string };
      scripts.set(params.scriptId, params.url);
    });
    session.on('Debugger.paused', (message) => {
      const frames = (message.params as { callFrames: CallFrame[] }).callFrames.slice(0, MAX_FRAMES);
      const raw = frames
        .map((frame) => {
          const url = (scripts.get(frame.location.scriptId) || frame.url || '<unknown>').replace(/\?tsx-namespace=[^:]*$/, '');
          return `    at ${frame.functionName || '<anonymous>'} (${url}:${frame.location.lineNumber + 1}:${(frame.location.columnNumber ?? 0) + 1})`;
        })
        .join('\n');
      const top = frames[0];
      if (!top) {
        done(raw);
        return;
      }
      // An Error made in the paused frame gets the stack as the thread itself would print it: with source
      // maps applied when they are enabled (TypeScript loaded through tsx), so lines match the app's source.
      session.post(
        'Debugger.evaluateOnCallFrame',
        { callFrameId: top.callFrameId, expression: 'new Error().stack', silent: true, returnByValue: true },
        (error, result) => {
          const stack = (result as { result?: { value?: unknown } } | undefined)?.result?.value;
          if (error || typeof stack !== 'string') {
            done(raw);
            return;
          }
          const lines = stack
            .split('\n')
            .filter((line) => /^\s+at /.test(line) && !/^\s+at eval \(eval at /.test(line))
            .map((line) => `    ${line.trim().replace(/\?tsx-namespace=[^:)]*/, '')}`);
          done(lines.length > 0 ? lines.slice(0, MAX_FRAMES).join('\n') : raw);
        },
      );
    });
    session.post('Debugger.enable', (error) => {
      if (error) done(null);
      else session.post('Debugger.pause', (pauseError) => pauseError && done(null));
    });
  });
}

interface CallFrame {
  callFrameId: string;
  functionName: string;
  url?: string;
  location: { scriptId: string; lineNumber: number; columnNumber?: number };
}
