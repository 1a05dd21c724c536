/**
 * The master's decisions as pure functions (unit-tested): how long to wait before respawning a worker that
 * died, when to give up on workers that cannot boot, how many requests a worker serves before it is
 * recycled, and when a worker that stopped sending heartbeats is stuck.
 */

/** First respawn delay after an unexpected exit. */
export const RESPAWN_BASE_MS = 100;
/** The respawn delay never grows beyond this. */
export const RESPAWN_MAX_MS = 10_000;
/** A worker that ran this long before dying starts a fresh crash streak (its death is not a boot loop). */
export const STABLE_UPTIME_MS = 10_000;
/** After this many workers in a row die before they are ready, the master gives up (exit status 1). */
export const BOOT_FAILURE_LIMIT = 5;
/** How often a worker sends a heartbeat (only when --timeout is set). */
export const HEARTBEAT_INTERVAL_MS = 500;
/**
 * How much longer than --timeout the master waits for a heartbeat before it kills a worker itself. The
 * worker's own watchdog acts at --timeout (it logs the stack, then exits); this is the backstop.
 */
export const HEARTBEAT_GRACE_MS = 5_000;
/** A worker that is not listening this long after it was started is killed (counts as a boot failure). */
export const BOOT_TIMEOUT_MS = 60_000;
/** How much longer than --graceful-timeout the master lets a stopping worker live before SIGKILL. */
export const STOP_GRACE_MS = 3_000;

/**
 * The delay before respawning after the `streak`-th unexpected exit in a row (1 = the first): exponential
 * from RESPAWN_BASE_MS, capped at RESPAWN_MAX_MS.
 */
export function respawnDelayMs(streak: number): number {
  if (!Number.isFinite(streak) || streak <= 1) return RESPAWN_BASE_MS;
  const exponent = Math.min(streak - 1, 30);
  return Math.min(RESPAWN_BASE_MS * 2 ** exponent, RESPAWN_MAX_MS);
}

/**
 * The crash streak after a worker died unexpectedly: a worker that never became ready, or died within
 * STABLE_UPTIME_MS of being ready, extends the streak; one that had been up longer starts a new streak.
 * `readyForMs` is null when the worker never became ready.
 */
export function nextCrashStreak(streak: number, readyForMs: number | null): number {
  if (readyForMs !== null && readyForMs >= STABLE_UPTIME_MS) return 1;
  return streak + 1;
}

/**
 * How many requests one worker serves before it asks to be recycled: maxRequests plus a random whole
 * number in 0..jitter (so that workers started together are not all recycled at once). 0 = never.
 * `random` returns a number in [0, 1), like Math.random.
 */
export function requestLimit(maxRequests: number, jitter: number, random: () => number = Math.random): number {
  if (maxRequests <= 0) return 0;
  const spread = Math.max(0, Math.floor(jitter));
  const extra = Math.min(spread, Math.floor(random() * (spread + 1)));
  return maxRequests + extra;
}

/**
 * True when a worker whose last message arrived at `lastSeen` is stuck: --timeout is on (`timeoutMs` > 0)
 * and nothing came for timeoutMs + HEARTBEAT_GRACE_MS.
 */
export function heartbeatMissed(lastSeen: number, now: number, timeoutMs: number): boolean {
  return timeoutMs > 0 && now - lastSeen > timeoutMs + HEARTBEAT_GRACE_MS;
}

/** How long the master waits for a stopping worker before it kills it. */
export function stopDeadlineMs(gracefulTimeoutSeconds: number): number {
  return Math.round(gracefulTimeoutSeconds * 1000) + STOP_GRACE_MS;
}

/** The worker count after SIGTTIN (+1) or SIGTTOU (-1): never below 1. */
export function adjustWorkerCount(current: number, change: 1 | -1): number {
  return Math.max(1, current + change);
}
