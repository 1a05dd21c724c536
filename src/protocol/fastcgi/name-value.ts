import { ProtocolError } from '../../errors.js';
import { addVariable } from '../../environ/variables.js';
import { newVariables } from '../../environ/variables.js';
import type { AddVariable } from '../request-variables.js';
import { MAX_REMEMBERED_PAIRS, PairMemory } from './pair-memory.js';

/** A name-value pair as byte strings (one char per byte, the tsgi byte policy). */
export type NameValuePair = [name: string, value: string];

/** Largest length a name or value may declare (31 bits, §3.4). */
const MAX_PAIR_LENGTH = 0x7fffffff;

/** Bytes the length prefix of `length` takes: 1 up to 127, else 4 (§3.4). */
function lengthSize(length: number): number {
  return length <= 127 ? 1 : 4;
}

function writeLength(target: Uint8Array, at: number, length: number): number {
  if (length <= 127) {
    target[at] = length;
    return at + 1;
  }
  target[at] = ((length >>> 24) & 0x7f) | 0x80;
  target[at + 1] = (length >>> 16) & 0xff;
  target[at + 2] = (length >>> 8) & 0xff;
  target[at + 3] = length & 0xff;
  return at + 4;
}

/**
 * Encodes name-value pairs (§3.4): each length in 1 byte when <= 127, else 4 bytes with bit 31 set, then the
 * name and value bytes. Names and values are byte strings; a char above U+00FF is a bug (throws).
 */
export function encodeNameValuePairs(pairs: Iterable<readonly [string, string]>): Buffer {
  const list = [...pairs];
  let size = 0;
  for (const [name, value] of list) {
    if (/[^\x00-\xff]/.test(name + value)) throw new ProtocolError(`fastcgi: name-value pair is not a byte string (${name})`, 500);
    size += lengthSize(name.length) + lengthSize(value.length) + name.length + value.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const [name, value] of list) {
    at = writeLength(out, at, name.length);
    at = writeLength(out, at, value.length);
    at += out.write(name, at, 'latin1');
    at += out.write(value, at, 'latin1');
  }
  return out;
}

/**
 * Decodes a complete name-value block (§3.4) into byte-string pairs. Lengths are checked against what is left
 * before anything is sliced, so a hostile length (0x7fffffff) costs nothing: it throws a ProtocolError.
 */
export function decodeNameValuePairs(bytes: Uint8Array): NameValuePair[] {
  const pairs: NameValuePair[] = [];
  forEachNameValuePair(bytes, (name, value) => void pairs.push([name, value]));
  return pairs;
}

/**
 * Decodes a name-value block into `target`: the hot path of every FastCGI request, without an intermediate
 * array. A repeated name goes through addVariable: repeats of an HTTP_* variable (nginx passes a request header
 * sent twice as two params) are joined with ", " ("; " for HTTP_COOKIE), as HTTP joins repeated fields; for any
 * other name the later pair wins. `add` stores each pair (addRequestVariable: for a server). Throws a
 * ProtocolError like decodeNameValuePairs.
 *
 * With a `cache`, the runs of pairs that are byte for byte those of the last block decoded with it are taken
 * whole from its memory (see PairMemory), and the other strings from its slots when their bytes match (see
 * cachedString).
 */
export function decodeNameValuePairsInto(
  bytes: Uint8Array,
  target: Record<string, string>,
  cache?: NameValueCache,
  add: AddVariable = addVariable,
): Record<string, string> {
  // The same checks and messages as forEachNameValuePair, in one loop with no closure (every request runs it).
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = buffer.length;
  const memory = cache?.pairs;
  // Pairs the memory describes; it describes none while this block is decoded (see PairMemory).
  let known = 0;
  if (memory !== undefined) {
    known = memory.count;
    memory.count = 0;
  }
  let at = 0;
  let pair = 0;
  while (at < end) {
    if (pair < known) {
      const memo = memory as PairMemory;
      const runEnd = memo.runEnds[pair] as number;
      if (runEnd > pair) {
        const from = memo.starts[pair] as number;
        const length = (memo.ends[runEnd - 1] as number) - from;
        if (length <= end - at && buffer.compare(memo.bytes, from, from + length, at, at + length) === 0) {
          const shift = at - from;
          for (let k = pair; k < runEnd; k++) {
            add(target, memo.names[k] as string, memo.values[k] as string);
            memo.starts[k] = (memo.starts[k] as number) + shift;
            memo.ends[k] = (memo.ends[k] as number) + shift;
            memo.runEnds[k] = k + 1;
          }
          at += length;
          pair = runEnd;
          continue;
        }
      }
    }
    const start = at;
    let nameLength = buffer[at] as number;
    if ((nameLength & 0x80) === 0) at += 1;
    else {
      if (at + 4 > end) throw new ProtocolError('fastcgi: name-value block ends inside a 4-byte length');
      nameLength = buffer.readUInt32BE(at) & MAX_PAIR_LENGTH;
      at += 4;
    }
    if (at >= end) throw new ProtocolError('fastcgi: name-value block ends inside a length');
    let valueLength = buffer[at] as number;
    if ((valueLength & 0x80) === 0) at += 1;
    else {
      if (at + 4 > end) throw new ProtocolError('fastcgi: name-value block ends inside a 4-byte length');
      valueLength = buffer.readUInt32BE(at) & MAX_PAIR_LENGTH;
      at += 4;
    }
    if (nameLength + valueLength > end - at) {
      throw new ProtocolError(`fastcgi: name-value lengths run past the block (${nameLength} + ${valueLength})`);
    }
    const name = cachedString(buffer, at, nameLength, cache, 2 * pair);
    at += nameLength;
    const value = cachedString(buffer, at, valueLength, cache, 2 * pair + 1);
    at += valueLength;
    if (memory !== undefined && pair < MAX_REMEMBERED_PAIRS) memory.record(pair, start, at, name, value, known);
    add(target, name, value);
    pair++;
  }
  memory?.settle(buffer, pair);
  return target;
}

/** Strings longer than this are never cached (they are rarely repeated: cookies, long URIs). */
const CACHE_MAX_LENGTH = 64;
/** Strings past this many in a block are never cached: what a cache keeps stays small whatever a peer sends. */
const CACHE_MAX_SLOTS = 256;

/**
 * Remembers the strings of the previous block, position by position. A web server sends the same names in
 * the same order on every request, and many of the same values; reusing the previous strings when the bytes
 * match saves creating (and, for names, internalising as property keys) a few dozen strings per request.
 * Decoding is synchronous: one cache can serve a whole server.
 */
export class NameValueCache {
  /** Slot k: the bytes and the string of the k-th string of the last block (see cachedString). */
  readonly bytes: Uint8Array[] = [];
  readonly strings: string[] = [];
  /** The last FastCGI block, pair by pair (decodeNameValuePairsInto). */
  readonly pairs = new PairMemory();
}

/**
 * The byte string of `buffer[at, at + length)`: the string cached at `slot` when its bytes are the same, else a new
 * one (cached for next time). Also used by the SCGI and uwsgi decoders, whose web servers send the same names in
 * the same order on every request too.
 */
export function cachedString(buffer: Buffer, at: number, length: number, cache: NameValueCache | undefined, slot: number): string {
  if (cache === undefined || length > CACHE_MAX_LENGTH || slot >= CACHE_MAX_SLOTS) return buffer.toString('latin1', at, at + length);
  const known = cache.bytes[slot];
  if (known !== undefined && known.length === length) {
    let same = true;
    for (let i = 0; i < length; i++) {
      if (known[i] !== buffer[at + i]) {
        same = false;
        break;
      }
    }
    if (same) return cache.strings[slot] as string;
  }
  const text = buffer.toString('latin1', at, at + length);
  cache.bytes[slot] = Uint8Array.prototype.slice.call(buffer, at, at + length) as Uint8Array;
  cache.strings[slot] = text;
  return text;
}

function forEachNameValuePair(bytes: Uint8Array, each: (name: string, value: string) => void, cache?: NameValueCache): void {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const readLength = (): number => {
    if (at >= buffer.length) throw new ProtocolError('fastcgi: name-value block ends inside a length');
    const first = buffer[at] as number;
    if ((first & 0x80) === 0) {
      at += 1;
      return first;
    }
    if (at + 4 > buffer.length) throw new ProtocolError('fastcgi: name-value block ends inside a 4-byte length');
    const length = buffer.readUInt32BE(at) & MAX_PAIR_LENGTH;
    at += 4;
    return length;
  };
  let slot = 0;
  while (at < buffer.length) {
    const nameLength = readLength();
    const valueLength = readLength();
    if (nameLength + valueLength > buffer.length - at) {
      throw new ProtocolError(`fastcgi: name-value lengths run past the block (${nameLength} + ${valueLength})`);
    }
    const name = cachedString(buffer, at, nameLength, cache, slot++);
    at += nameLength;
    const value = cachedString(buffer, at, valueLength, cache, slot++);
    at += valueLength;
    each(name, value);
  }
}

/**
 * A count of bytes held for peers, shared by everything that buffers input in one server (the PARAMS being
 * gathered, the STDIN waiting for the apps), so the server can bound the sum. Holders add what they keep and
 * subtract it when they let go.
 */
export interface ByteBudget {
  used: number;
}

/** Smallest buffer small PARAMS records are gathered into. */
const GATHER_MIN_BYTES = 1024;

/**
 * Gathers the content of a stream of PARAMS (or GET_VALUES) records, which may split a pair, or even a length
 * prefix, anywhere (§3.4, conformance C5), up to `maxBytes` in all. `push` throws a ProtocolError past the cap.
 *
 * Memory is what the content takes, whatever the record sizes: the first record is kept as a view when it is
 * most of the buffer it lives in (the common case: all PARAMS in one record, decoded in the same socket read);
 * anything more is copied into one growing buffer (doubling, never past maxBytes), so a stream of 1-byte
 * records costs about its bytes, not an object per record. What is held is charged to `budget` until finish()
 * or discard().
 */
export class NameValueCollector {
  readonly #maxBytes: number;
  readonly #cache: NameValueCache | undefined;
  readonly #budget: ByteBudget | undefined;
  /** The content so far: the first record's view, or the growing buffer (its first #size bytes). */
  #held: Uint8Array | null = null;
  #owned = false;
  #size = 0;
  /** Bytes charged to the budget: the view's length or the buffer's capacity. */
  #charged = 0;

  constructor(maxBytes: number, cache?: NameValueCache, budget?: ByteBudget) {
    this.#maxBytes = maxBytes;
    this.#cache = cache;
    this.#budget = budget;
  }

  /** Content bytes gathered so far. */
  get size(): number {
    return this.#size;
  }

  /** Bytes held (and charged to the budget): the content, or the capacity of the buffer it was gathered into. */
  get held(): number {
    return this.#charged;
  }

  push(content: Uint8Array): void {
    const size = this.#size + content.length;
    if (size > this.#maxBytes) {
      throw new ProtocolError(`fastcgi: params exceed maxParamsBytes (${size} > ${this.#maxBytes})`, 431);
    }
    const held = this.#held;
    if (held === null && content.length * 2 + GATHER_MIN_BYTES >= content.buffer.byteLength) {
      // A view is safe to keep: Node never reuses a socket read's buffer (each 'data' chunk is memory of its
      // own, sized to the bytes read), and the decoder's own buffer for a split record is fresh for each record.
      // It is kept only when it is most of that buffer: a view keeps its whole buffer alive, and what is held
      // must stay close to what is charged (servers/fastcgi/byte-queue.ts charges a kept STDIN view its whole buffer).
      this.#held = content;
      this.#size = size;
      this.#charge(content.length);
      return;
    }
    if (held === null || !this.#owned || held.length < size) {
      const capacity = Math.min(this.#maxBytes, Math.max(size, GATHER_MIN_BYTES, (held?.length ?? 0) * 2));
      const grown = new Uint8Array(capacity);
      if (held !== null) grown.set(held.subarray(0, this.#size));
      this.#held = grown;
      this.#owned = true;
      this.#charge(capacity - this.#charged);
    }
    (this.#held as Uint8Array).set(content, this.#size);
    this.#size = size;
  }

  /** Decodes everything pushed so far as one block, into a new object (newVariables; see decodeNameValuePairsInto). */
  finish(add: AddVariable = addVariable): Record<string, string> {
    const held = this.#held;
    // (A view kept whole, the usual case, is decoded as it is: no new view of it.)
    const whole = held === null ? EMPTY : held.length === this.#size ? held : held.subarray(0, this.#size);
    this.discard();
    return decodeNameValuePairsInto(whole, newVariables(), this.#cache, add);
  }

  /** Lets go of what was gathered (and its charge to the budget). */
  discard(): void {
    this.#held = null;
    this.#owned = false;
    this.#size = 0;
    this.#charge(-this.#charged);
  }

  #charge(bytes: number): void {
    this.#charged += bytes;
    if (this.#budget !== undefined) this.#budget.used += bytes;
  }
}

const EMPTY = new Uint8Array(0);
