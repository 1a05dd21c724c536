import { performance } from 'node:perf_hooks';

/** A connection waiting for its request head, as the list of a HeadDeadlines holds it (its own links: no node object). */
export interface HeadWaiter {
  /** performance.now() by which the head must be complete. */
  headDeadline: number;
  previousWaiter: HeadWaiter | null;
  nextWaiter: HeadWaiter | null;
  /** Called once, when the deadline has passed and the waiter is still in the list (it is out of it by then). */
  headTimedOut(): void;
}

/**
 * The head timeouts of one server's connections with one timer for all of them, not one per connection (a
 * Timeout and its closure per request were about 150 bytes of garbage and a timer-list insertion and removal
 * each). Every connection gets the same timeout from its accept, so the list, in accept order, is in deadline
 * order: the timer only ever waits for the first waiter. Adding and removing a waiter is O(1) and allocates
 * nothing; the timer is not cleared when waiters leave, it fires (at most once per timeout when every head
 * arrives in time), finds nothing due, and waits for the new first waiter.
 */
export class HeadDeadlines {
  readonly #timeoutMs: number;
  #first: HeadWaiter | null = null;
  #last: HeadWaiter | null = null;
  #timer: NodeJS.Timeout | null = null;

  /** `timeoutMs` > 0: how long after its accept a connection's head must be complete. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Starts `waiter`'s timeout now. */
  add(waiter: HeadWaiter): void {
    waiter.headDeadline = performance.now() + this.#timeoutMs;
    waiter.nextWaiter = null;
    waiter.previousWaiter = this.#last;
    if (this.#last === null) this.#first = waiter;
    else this.#last.nextWaiter = waiter;
    this.#last = waiter;
    if (this.#timer === null) this.#arm(this.#timeoutMs);
  }

  /** Ends `waiter`'s timeout (its head completed, or it closed); nothing if it is not in the list. */
  remove(waiter: HeadWaiter): void {
    const previous = waiter.previousWaiter;
    const next = waiter.nextWaiter;
    if (previous === null && this.#first !== waiter) return;
    if (previous === null) this.#first = next;
    else previous.nextWaiter = next;
    if (next === null) this.#last = previous;
    else next.previousWaiter = previous;
    waiter.previousWaiter = null;
    waiter.nextWaiter = null;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(delayMs))).unref();
  }

  /** Times out every waiter whose deadline has passed (oldest first), then waits for the next one, if any. */
  #expire(): void {
    this.#timer = null;
    const now = performance.now();
    let waiter = this.#first;
    while (waiter !== null && waiter.headDeadline <= now) {
      this.remove(waiter);
      waiter.headTimedOut();
      waiter = this.#first;
    }
    if (waiter !== null && this.#timer === null) this.#arm(waiter.headDeadline - now);
  }
}
