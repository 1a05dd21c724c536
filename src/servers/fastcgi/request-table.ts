/**
 * The requests in progress on one connection, by id: the part of a Map a connection uses. Web servers send one
 * request at a time per connection (nginx, Apache, Caddy never multiplex), so the first request in progress
 * is held in a field of its own and a Map is made only for a second one at once. A Map that goes from one entry
 * to none and back on every request reallocates its table each time (V8 shrinks it on delete): that was
 * about half a kilobyte of garbage per request.
 */
export class RequestTable<T> {
  #one: T | null = null;
  #oneId = -1;
  /** The others, when a peer multiplexes. */
  #many: Map<number, T> | null = null;

  get size(): number {
    return (this.#one === null ? 0 : 1) + (this.#many === null ? 0 : this.#many.size);
  }

  get(id: number): T | undefined {
    if (this.#one !== null && this.#oneId === id) return this.#one;
    return this.#many === null ? undefined : this.#many.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, value: T): void {
    if (this.#many !== null && this.#many.has(id)) this.#many.set(id, value);
    else if (this.#one === null || this.#oneId === id) {
      this.#one = value;
      this.#oneId = id;
    } else (this.#many ??= new Map()).set(id, value);
  }

  delete(id: number): boolean {
    if (this.#one !== null && this.#oneId === id) {
      this.#one = null;
      this.#oneId = -1;
      return true;
    }
    return this.#many === null ? false : this.#many.delete(id);
  }

  /** The requests, in a new array (safe to change the table while going through it). */
  values(): T[] {
    const list: T[] = [];
    if (this.#one !== null) list.push(this.#one);
    if (this.#many !== null) for (const value of this.#many.values()) list.push(value);
    return list;
  }
}
