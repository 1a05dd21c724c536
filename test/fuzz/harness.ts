/**
 * Shared machinery of the fuzz suites (test/fuzz/*.test.ts): run counts and seeds, the mutation and chunking
 * arbitraries, the typed-error check, the per-input time bound and the allocation probe.
 *
 * The same properties run in two sizes. A target (one decoder or translator) has a budget of inputs, shared
 * among its properties (each check() names its share). In the normal test suite the budget is SHORT_RUNS per
 * target from a fixed seed, so a failure replays exactly. `npm run fuzz` (scripts/fuzz.mjs) sets
 * TSGI_FUZZ_RUNS (inputs per target, 100,000 by default), TSGI_FUZZ_SEED (a random seed unless --seed is
 * given) and TSGI_FUZZ_REPORT (a file that receives one JSON line per property: target, property, runs, seed,
 * time, outcome).
 */
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { expect } from 'vitest';

/** Inputs per target in the normal test suite: all fuzz suites together stay under about 15 s. */
export const SHORT_RUNS = 600;
/** The seed of the normal test suite's runs (fixed, so a failure in CI replays on any machine). */
export const SHORT_SEED = 20_240_611;

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?[0-9]+$/.test(raw)) throw new Error(`fuzz: ${name} must be an integer (${raw})`);
  return Number(raw);
}

/** Inputs per target: TSGI_FUZZ_RUNS, else SHORT_RUNS. */
export const RUNS = intFromEnv('TSGI_FUZZ_RUNS') ?? SHORT_RUNS;
/** The seed of every property of this run: TSGI_FUZZ_SEED, else SHORT_SEED. */
export const SEED = intFromEnv('TSGI_FUZZ_SEED') ?? SHORT_SEED;
/** True in a long run: test timeouts grow with the run count. */
export const LONG_RUN = RUNS > SHORT_RUNS;

/** The runs of a property that has `share` of its target's inputs (at least 1). */
export function runsOf(share: number): number {
  return Math.max(1, Math.round(RUNS * share));
}

/**
 * The timeout of the test of a property with `share` of its target's inputs: generous for the machine this
 * runs on (shared, noisy), and scaled with the run count for `npm run fuzz`. `msPerRun` is the worst time an
 * input may take on a busy machine (ten times the usual).
 */
export function testTimeout(share = 1, msPerRun = 20): number {
  return 60_000 + runsOf(share) * msPerRun;
}

/**
 * Most wall time one input may take, in ms. A hang shows up as a blown bound (or, for a true infinite loop,
 * as the test's timeout and the fuzz script's watchdog). Far above the few microseconds an input takes, so
 * only a real defect (a quadratic loop, a hang) trips it, not a GC pause on a busy machine.
 */
export const INPUT_TIME_BOUND_MS = 2_000;

/** Runs `fn` on one input and fails if it took longer than INPUT_TIME_BOUND_MS. */
export function timed<T>(what: string, fn: () => T): T {
  const start = performance.now();
  try {
    return fn();
  } finally {
    const elapsed = performance.now() - start;
    if (elapsed > INPUT_TIME_BOUND_MS) throw new Error(`fuzz: ${what} took ${elapsed.toFixed(0)} ms (bound ${INPUT_TIME_BOUND_MS} ms)`);
  }
}

/** An async version of timed(). */
export async function timedAsync<T>(what: string, fn: () => Promise<T>, boundMs = INPUT_TIME_BOUND_MS): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    const elapsed = performance.now() - start;
    if (elapsed > boundMs) throw new Error(`fuzz: ${what} took ${elapsed.toFixed(0)} ms (bound ${boundMs} ms)`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Running a property and reporting it
// ---------------------------------------------------------------------------------------------------------

interface ReportLine {
  target: string;
  property: string;
  runs: number;
  seed: number;
  ms: number;
  outcome: 'pass' | 'fail';
  error?: string;
}

function report(line: ReportLine): void {
  const file = process.env.TSGI_FUZZ_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/**
 * Checks `property` with `share` of the target's inputs from SEED, reports the outcome line, and rethrows
 * fast-check's failure (with its counterexample, seed and path) so vitest shows it.
 */
export async function check<Ts>(
  target: string,
  name: string,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  share: number,
): Promise<void> {
  const runs = runsOf(share);
  const start = performance.now();
  try {
    await fc.assert(property as fc.IAsyncProperty<Ts>, { numRuns: runs, seed: SEED });
  } catch (error) {
    report({ target, property: name, runs, seed: SEED, ms: Math.round(performance.now() - start), outcome: 'fail', error: String((error as Error).message).slice(0, 4000) });
    throw error;
  }
  report({ target, property: name, runs, seed: SEED, ms: Math.round(performance.now() - start), outcome: 'pass' });
}

// ---------------------------------------------------------------------------------------------------------
// Typed errors
// ---------------------------------------------------------------------------------------------------------

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Passes when `error` is one of the module's own typed errors, with a message in the house style
 * ("<area>: <rule>") and an HTTP status; anything else (a TypeError, a RangeError, a plain Error) fails the
 * property with the original error as the cause.
 */
export function expectTypedError(error: unknown, types: readonly ErrorClass[], area: RegExp): void {
  const typed = types.some((type) => error instanceof type);
  if (!typed) {
    const name = error instanceof Error ? error.name : typeof error;
    throw new Error(`fuzz: unexpected ${name} (want ${types.map((t) => t.name).join('/')}): ${String((error as Error)?.message ?? error)}`, {
      cause: error,
    });
  }
  const { message, status } = error as Error & { status?: unknown };
  expect(message).toMatch(area);
  expect(typeof status === 'number' && status >= 400 && status <= 599).toBe(true);
}

/** Runs `fn`; returns its result, or undefined when it threw one of `types` (checked by expectTypedError). */
export function typedOutcome<T>(fn: () => T, types: readonly ErrorClass[], area: RegExp): { ok: true; value: T } | { ok: false; error: Error } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    expectTypedError(error, types, area);
    return { ok: false, error: error as Error };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bytes, mutations and chunkings
// ---------------------------------------------------------------------------------------------------------

/** A byte string (one char per byte, U+0000..U+00FF) of the given lengths. */
export function byteString(constraints: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<string> {
  return fc.string({ unit: byteChar(), ...constraints });
}

/** One latin-1 char, biased towards the interesting ones (NUL, CR, LF, %, /, high bytes). */
export function byteChar(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)) },
    { weight: 1, arbitrary: fc.constantFrom('\0', '\r', '\n', '%', '/', ':', ',', '\u00ff', '\u0080', ' ', '\t') },
  );
}

/** One edit of a valid encoding. Positions are taken modulo the length at the time of the edit. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number; to: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x0d, 0x3a, 0x2c, 0x30, 0x39) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }), to: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** One to six edits. */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.array(mutationArb, { minLength: 1, maxLength: 6 });

/** Applies `mutations` in order to a copy of `bytes`. */
export function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const length = out.length;
    switch (m.kind) {
      case 'flip':
        if (length > 0) out[m.at % length] = (out[m.at % length] as number) ^ (1 << m.bit);
        break;
      case 'set':
        if (length > 0) out[m.at % length] = m.byte;
        break;
      case 'insert': {
        const at = m.at % (length + 1);
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      }
      case 'delete': {
        if (length === 0) break;
        const at = m.at % length;
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      }
      case 'duplicate': {
        if (length === 0) break;
        const at = m.at % length;
        const range = out.subarray(at, at + m.length);
        const to = m.to % (length + 1);
        out = Buffer.concat([out.subarray(0, to), range, out.subarray(to)]);
        break;
      }
      case 'truncate':
        out = out.subarray(0, m.at % (length + 1));
        break;
    }
  }
  return out;
}

/** How a byte stream is cut into reads: whole, one byte per read, or reads of the listed sizes, cycled. */
export type Chunking = { kind: 'whole' } | { kind: 'bytes' } | { kind: 'sizes'; sizes: number[] };

export const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'whole' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'bytes' as const }) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 4096 })), { minLength: 1, maxLength: 8 })
      .map((sizes) => ({ kind: 'sizes' as const, sizes })),
  },
);

/** Most reads one input is cut into: past it, the rest goes in one read (keeps 64 KiB inputs fast). */
export const MAX_CHUNKS = 600;

/** Cuts `bytes` as `chunking` says. Every chunk is a fresh copy (as a socket read would be). */
export function split(bytes: Uint8Array, chunking: Chunking): Buffer[] {
  if (bytes.length === 0) return [];
  if (chunking.kind === 'whole') return [Buffer.from(bytes)];
  const chunks: Buffer[] = [];
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const size =
      chunks.length === MAX_CHUNKS - 1
        ? bytes.length - at
        : chunking.kind === 'bytes'
          ? 1
          : (chunking.sizes[i++ % chunking.sizes.length] as number);
    chunks.push(Buffer.from(bytes.subarray(at, at + size)));
    at += size;
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------------------
// Allocation probe
// ---------------------------------------------------------------------------------------------------------

let tracking = false;

/** Runs `fn` without counting its allocations: the test's own copies, made inside a probed call. */
export function untracked<T>(fn: () => T): T {
  const was = tracking;
  tracking = false;
  try {
    return fn();
  } finally {
    tracking = was;
  }
}

/**
 * Runs `fn` while watching every byte buffer it allocates: `new Uint8Array(n)`, Buffer.alloc/allocUnsafe/
 * allocUnsafeSlow/concat/from (copies, not views), and Uint8Array.prototype.slice. Returns the largest size
 * seen, so a property can check that a decoder told a limit never allocates past it (a hostile length must
 * fail before the allocation, not after). Synchronous code only; the patches are removed before it returns.
 */
export function largestAllocation(fn: () => void): number {
  let largest = 0;
  const note = (size: number): void => {
    if (tracking && size > largest) largest = size;
  };
  tracking = true;
  const global = globalThis as { Uint8Array: Uint8ArrayConstructor };
  const RealUint8Array = global.Uint8Array;
  const saved = {
    alloc: Buffer.alloc,
    allocUnsafe: Buffer.allocUnsafe,
    allocUnsafeSlow: Buffer.allocUnsafeSlow,
    concat: Buffer.concat,
    from: Buffer.from,
    slice: Object.getOwnPropertyDescriptor(RealUint8Array.prototype, 'slice'),
  };
  const typedSlice = Object.getPrototypeOf(RealUint8Array.prototype).slice as (this: Uint8Array, start?: number, end?: number) => Uint8Array;
  global.Uint8Array = new Proxy(RealUint8Array, {
    construct(target, args, newTarget) {
      const made = Reflect.construct(target, args, newTarget) as Uint8Array;
      // A view over an existing ArrayBuffer allocates nothing.
      if (!(args[0] instanceof ArrayBuffer) && !(args[0] instanceof SharedArrayBuffer)) note(made.byteLength);
      return made;
    },
  });
  Buffer.alloc = ((size: number, ...rest: never[]) => {
    note(size);
    return saved.alloc(size, ...rest);
  }) as typeof Buffer.alloc;
  Buffer.allocUnsafe = ((size: number) => {
    note(size);
    return saved.allocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;
  Buffer.allocUnsafeSlow = ((size: number) => {
    note(size);
    return saved.allocUnsafeSlow(size);
  }) as typeof Buffer.allocUnsafeSlow;
  Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
    const made = saved.concat(list, total);
    note(made.length);
    return made;
  }) as typeof Buffer.concat;
  Buffer.from = ((value: unknown, ...rest: unknown[]) => {
    const made = (saved.from as (...args: unknown[]) => Buffer)(value, ...rest);
    if (!(value instanceof ArrayBuffer) && !(value instanceof SharedArrayBuffer)) note(made.length);
    return made;
  }) as typeof Buffer.from;
  Object.defineProperty(RealUint8Array.prototype, 'slice', {
    configurable: true,
    writable: true,
    value: function slice(this: Uint8Array, start?: number, end?: number) {
      const made = typedSlice.call(this, start, end);
      note(made.byteLength);
      return made;
    },
  });
  try {
    fn();
  } finally {
    tracking = false;
    global.Uint8Array = RealUint8Array;
    Buffer.alloc = saved.alloc;
    Buffer.allocUnsafe = saved.allocUnsafe;
    Buffer.allocUnsafeSlow = saved.allocUnsafeSlow;
    Buffer.concat = saved.concat;
    Buffer.from = saved.from;
    if (saved.slice) Object.defineProperty(RealUint8Array.prototype, 'slice', saved.slice);
    else delete (RealUint8Array.prototype as { slice?: unknown }).slice;
  }
  return largest;
}
