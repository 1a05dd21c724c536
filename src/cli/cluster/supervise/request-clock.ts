/**
 * The clock of one request under --timeout (timed-request.ts): measures how long the app keeps it waiting. Each wait (the app's promise, the next body chunk)
 * starts the clock again; a write() during a wait counts as progress. One timer per request, re-armed lazily.
 */
export class RequestClock {
  /** True once a non-empty chunk went to the server (the head is committed). */
  sent = false;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | undefined;
  #waitingSince = 0;
  #reject: ((error: unknown) => void) | null = null;
  #stopped = false;
  readonly #makeError: () => Error;

  constructor(timeoutMs: number, makeError: () => Error) {
    this.#timeoutMs = timeoutMs;
    this.#makeError = makeError;
  }

  /** Resolves as `promise` does, or rejects with the timeout error when it takes too long. */
  wait<T>(promise: PromiseLike<T>): Promise<T> {
    if (this.#stopped) return Promise.resolve(promise);
    this.#waitingSince = Date.now();
    this.#arm(this.#timeoutMs);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      promise.then(
        (value) => {
          this.#settle();
          resolve(value);
        },
        (error: unknown) => {
          this.#settle();
          reject(error);
        },
      );
    });
  }

  /** The app wrote something: the current wait starts again from now. */
  progress(): void {
    if (this.#waitingSince !== 0) this.#waitingSince = Date.now();
  }

  /** The request needs no more watching (answered, cut, or done): no timer is left behind. */
  stop(): void {
    this.#stopped = true;
    this.#settle();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #settle(): void {
    this.#waitingSince = 0;
    this.#reject = null;
  }

  #arm(ms: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, ms));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#waitingSince === 0) return;
    const idle = Date.now() - this.#waitingSince;
    if (idle < this.#timeoutMs) {
      this.#arm(this.#timeoutMs - idle);
      return;
    }
    const reject = this.#reject;
    this.#settle();
    reject?.(this.#makeError());
  }
}
