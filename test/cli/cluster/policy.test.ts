import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adjustWorkerCount,
  HEARTBEAT_GRACE_MS,
  heartbeatMissed,
  nextCrashStreak,
  requestLimit,
  RESPAWN_BASE_MS,
  RESPAWN_MAX_MS,
  respawnDelayMs,
  STABLE_UPTIME_MS,
  STOP_GRACE_MS,
  stopDeadlineMs,
} from '../../../src/cli/cluster/policy.js';

describe('respawn backoff', () => {
  it('doubles from the base and stops at the cap', () => {
    expect(respawnDelayMs(1)).toBe(RESPAWN_BASE_MS);
    expect(respawnDelayMs(2)).toBe(RESPAWN_BASE_MS * 2);
    expect(respawnDelayMs(3)).toBe(RESPAWN_BASE_MS * 4);
    expect(respawnDelayMs(50)).toBe(RESPAWN_MAX_MS);
    expect(respawnDelayMs(0)).toBe(RESPAWN_BASE_MS);
    expect(respawnDelayMs(Number.NaN)).toBe(RESPAWN_BASE_MS);
  });

  it('never shrinks as the streak grows and stays within [base, cap]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (streak) => {
        const delay = respawnDelayMs(streak);
        expect(delay).toBeGreaterThanOrEqual(RESPAWN_BASE_MS);
        expect(delay).toBeLessThanOrEqual(RESPAWN_MAX_MS);
        expect(respawnDelayMs(streak + 1)).toBeGreaterThanOrEqual(delay);
      }),
    );
  });

  it('a worker that never got ready, or died soon after, extends the streak; a stable one starts anew', () => {
    expect(nextCrashStreak(0, null)).toBe(1);
    expect(nextCrashStreak(3, null)).toBe(4);
    expect(nextCrashStreak(3, STABLE_UPTIME_MS - 1)).toBe(4);
    expect(nextCrashStreak(3, STABLE_UPTIME_MS)).toBe(1);
  });
});

describe('max-requests with jitter', () => {
  it('0 never recycles, whatever the jitter', () => {
    expect(requestLimit(0, 100, () => 0.5)).toBe(0);
  });

  it('adds a whole number in 0..jitter', () => {
    expect(requestLimit(1000, 0, () => 0.99)).toBe(1000);
    expect(requestLimit(1000, 50, () => 0)).toBe(1000);
    expect(requestLimit(1000, 50, () => 0.999999)).toBe(1050);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 1e4 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (max, jitter, r) => {
        const limit = requestLimit(max, jitter, () => r);
        expect(Number.isInteger(limit)).toBe(true);
        expect(limit).toBeGreaterThanOrEqual(max);
        expect(limit).toBeLessThanOrEqual(max + jitter);
      }),
    );
  });

  it('spreads workers over the whole range', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(requestLimit(10, 3));
    expect([...seen].sort()).toEqual([10, 11, 12, 13]);
  });
});

describe('heartbeats, stop deadline, worker count', () => {
  it('a worker is stuck only when --timeout is on and it was silent past timeout + grace', () => {
    expect(heartbeatMissed(0, 1_000_000, 0)).toBe(false);
    expect(heartbeatMissed(1000, 1000 + 2000 + HEARTBEAT_GRACE_MS, 2000)).toBe(false);
    expect(heartbeatMissed(1000, 1000 + 2000 + HEARTBEAT_GRACE_MS + 1, 2000)).toBe(true);
  });

  it('a stopping worker gets its graceful timeout plus a margin', () => {
    expect(stopDeadlineMs(10)).toBe(10_000 + STOP_GRACE_MS);
    expect(stopDeadlineMs(0.5)).toBe(500 + STOP_GRACE_MS);
  });

  it('SIGTTIN/SIGTTOU never go below one worker', () => {
    expect(adjustWorkerCount(1, 1)).toBe(2);
    expect(adjustWorkerCount(2, -1)).toBe(1);
    expect(adjustWorkerCount(1, -1)).toBe(1);
  });
});
