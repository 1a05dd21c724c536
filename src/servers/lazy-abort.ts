/**
 * The client-gone state of one request. The AbortSignal behind `tsgi.signal` is created only when someone
 * asks for it: an AbortController per request costs microseconds on every hot path (and a module load at CGI
 * start-up), while most apps never look at the signal. Transports check `reason` instead.
 */
export class LazyAbort {
  /** Why the request was aborted, or null while it is alive. */
  reason: Error | null = null;
  #controller: AbortController | null = null;

  /** The signal (created on first use, already aborted if the request is). */
  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.reason !== null) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  /** Marks the request aborted (the first reason wins) and fires the signal if it exists. */
  abort(reason: Error): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.#controller?.abort(reason);
  }
}
