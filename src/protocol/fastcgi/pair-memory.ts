/** Blocks larger than this are not remembered (a copy of the last block is kept: its size stays bounded). */
export const MAX_REMEMBERED_BYTES = 64 * 1024;
/** Pairs past this many in a block are not remembered: what the memory keeps stays small whatever a peer sends. */
export const MAX_REMEMBERED_PAIRS = 128;

/**
 * The last name-value block a NameValueCache decoded, pair by pair, so that the next block can skip the runs of
 * pairs that did not change. A web server sends the same params in the same order on every request, and only
 * one or two values differ from one request to the next (nginx: REMOTE_PORT). A run of pairs that were the same
 * in the last two blocks is compared with the new block's bytes in one native compare: equal bytes (length
 * prefixes included) are equal pairs, at the same places, so their strings are reused without a look at each
 * (decodeNameValuePairsInto). Any other pair is decoded and checked as usual. Decoding is synchronous: one
 * memory serves a whole server.
 *
 * Valid only while `count` > 0: decodeNameValuePairsInto sets it to 0 before it changes anything and back once
 * the memory describes the block it decoded, so a block that fails half-way leaves an empty memory, never a
 * wrong one.
 */
export class PairMemory {
  /** A copy of the last block: its first `length` bytes. */
  bytes = new Uint8Array(0);
  length = 0;
  /** Pairs remembered: the first `count` entries of the arrays below. */
  count = 0;
  /** Where pair k starts (at its length prefixes) and ends in `bytes`. */
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly names: string[] = [];
  readonly values: string[] = [];
  /**
   * For pair k: the end (exclusive) of the run of unchanged pairs that starts at k, or k itself when pair k
   * changed since the block before. While a block is decoded: k + 1 for a pair found unchanged, k for one that
   * changed (see settle).
   */
  readonly runEnds: number[] = [];

  /** Records pair k of the block being decoded: where it lies, its strings, whether it changed. */
  record(k: number, start: number, end: number, name: string, value: string, known: number): void {
    const same = k < known && this.names[k] === name && this.values[k] === value;
    this.starts[k] = start;
    this.ends[k] = end;
    this.names[k] = name;
    this.values[k] = value;
    this.runEnds[k] = same ? k + 1 : k;
  }

  /** Makes the memory describe `block` (its `pairs` pairs recorded): copies it and turns the marks into runs. */
  settle(block: Uint8Array, pairs: number): void {
    if (block.length > MAX_REMEMBERED_BYTES) return;
    if (this.bytes.length < block.length) this.bytes = new Uint8Array(Math.max(block.length, 2 * this.bytes.length, 1024));
    this.bytes.set(block);
    this.length = block.length;
    const count = Math.min(pairs, MAX_REMEMBERED_PAIRS);
    const runEnds = this.runEnds;
    let runEnd = count;
    for (let k = count - 1; k >= 0; k--) {
      if (runEnds[k] === k) runEnd = k;
      else runEnds[k] = runEnd;
    }
    this.count = count;
  }
}
