/**
 * Fuzzing the uwsgi packet reader ({modifier1, datasize u16 LE, modifier2} then the vars block) and the vars
 * decoder. Properties, for generated streams and mutated valid packets, fed whole, a byte at a time or in
 * random reads: only ProtocolErrors, bounded time, never a buffer past maxVarsBytes (itself at most 65535),
 * the same outcome at every chunking; and well-formed packets round-trip with their body bytes intact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import {
  MAX_UWSGI_VARS_BYTES,
  UWSGI_HEADER_BYTES,
  UwsgiRequestReader,
  decodeUwsgiVars,
  encodeUwsgiPacket,
  encodeUwsgiVars,
} from '../../src/protocol/uwsgi/packet.js';
import {
  byteChar,
  byteString,
  check,
  chunkingArb,
  largestAllocation,
  mutate,
  mutationsArb,
  split,
  testTimeout,
  timed,
  typedOutcome,
  untracked,
  type Chunking,
} from './harness.js';

const TARGET = 'uwsgi-packet';
const AREA = /^uwsgi: /;

const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: byteChar(), minLength: 1, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.constantFrom('REQUEST_METHOD', 'REQUEST_URI', 'PATH_INFO', 'HTTP_HOST', 'UWSGI_SCHEME', 'QUERY_STRING', 'HTTP_COOKIE') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty') },
);
const valueArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: byteString({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 100, max: 20_000 }), fc.nat(255)).map(([n, c]) => String.fromCharCode(c).repeat(n)) },
);
/** Vars as a web server sends them (duplicates allowed: see asObject), without CONTENT_LENGTH. */
const varsArb: fc.Arbitrary<Array<[string, string]>> = fc
  .array(fc.tuple(nameArb, valueArb), { maxLength: 10 })
  .map((pairs) => pairs.filter(([name]) => name !== 'CONTENT_LENGTH'));
const bodyArb = fc.uint8Array({ maxLength: 300 });

/** What pairs mean as variables: repeats of an HTTP_* name joined (", ", "; " for HTTP_COOKIE), else the later wins. */
function asObject(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const joined = name.startsWith('HTTP_') && Object.hasOwn(out, name) ? `${out[name]}${name === 'HTTP_COOKIE' ? '; ' : ', '}${value}` : value;
    Object.defineProperty(out, name, { value: joined, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The vars plus CONTENT_LENGTH, cut down until the block fits in a packet (65535 bytes). */
function fitting(pairs: Array<[string, string]>, body: Uint8Array): Array<[string, string]> {
  const all: Array<[string, string]> = [['CONTENT_LENGTH', String(body.length)], ...pairs];
  while (encodeUwsgiVars(all).length > MAX_UWSGI_VARS_BYTES) all.pop();
  return all;
}

interface Read {
  variables: Record<string, string> | null;
  contentLength: number | null;
  after: string | null;
  error: Error | null;
  largest: number;
}

function readChunks(chunks: readonly Uint8Array[], maxVarsBytes: number): Read {
  const reader = new UwsgiRequestReader(maxVarsBytes);
  const read: Read = { variables: null, contentLength: null, after: null, error: null, largest: 0 };
  read.largest = largestAllocation(() => {
    const outcome = typedOutcome(
      () => {
        for (const [index, chunk] of chunks.entries()) {
          const head = reader.push(chunk);
          if (head === null) continue;
          untracked(() => {
            read.variables = asObject(Object.entries(head.variables));
            read.contentLength = head.contentLength;
            read.after = [head.rest, ...chunks.slice(index + 1)].map((part) => Buffer.from(part).toString('latin1')).join('');
          });
          return;
        }
      },
      [ProtocolError],
      AREA,
    );
    if (!outcome.ok) read.error = outcome.error;
  });
  return read;
}

function checkAnyStream(bytes: Uint8Array, chunking: Chunking, maxVarsBytes: number): Read {
  const whole = timed('UwsgiRequestReader (whole)', () => readChunks(bytes.length === 0 ? [] : [bytes], maxVarsBytes));
  const chunked = timed('UwsgiRequestReader (chunked)', () => readChunks(split(bytes, chunking), maxVarsBytes));
  for (const read of [whole, chunked]) {
    // The vars block is buffered only after datasize passed the cap (and never past 65535).
    expect(read.largest).toBeLessThanOrEqual(Math.min(maxVarsBytes, MAX_UWSGI_VARS_BYTES));
    if (read.variables) {
      for (const [name, value] of Object.entries(read.variables)) {
        expect(name.length).toBeGreaterThan(0);
        expect(/^[\x00-\xff]*$/.test(name + value)).toBe(true);
      }
      expect(Number.isSafeInteger(read.contentLength)).toBe(true);
    }
  }
  expect(chunked.error?.message).toEqual(whole.error?.message);
  expect(chunked.variables).toEqual(whole.variables);
  expect(chunked.contentLength).toEqual(whole.contentLength);
  expect(chunked.after).toEqual(whole.after);
  return chunked;
}

/** Blocks that look like vars: u16 LE sizes (maybe lying) and some bytes. */
const generatedBlockArb: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      fc.nat(0xffff).map((n) => Uint8Array.of(n & 0xff, n >> 8)),
      fc.nat(40).map((n) => Uint8Array.of(n, 0)),
      fc.constantFrom(Uint8Array.of(0, 0), Uint8Array.of(0xff, 0xff), Uint8Array.of(1)),
      fc.tuple(nameArb, valueArb).map(([n, v]) => encodeUwsgiVars([[n, v]])),
      fc.uint8Array({ maxLength: 32 }),
    ),
    { maxLength: 10 },
  )
  .map((parts) => Buffer.concat(parts));

/** Streams that look like packets: a header with plausible fields, a block, maybe a body. */
const generatedStreamArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        modifier1: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }),
        modifier2: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }),
        sizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -0xffff, max: 0xffff })),
        block: generatedBlockArb,
        body: fc.uint8Array({ maxLength: 24 }),
      })
      .map((g) => {
        const size = Math.min(0xffff, Math.max(0, g.block.length + g.sizeDelta));
        return Buffer.concat([Uint8Array.of(g.modifier1, size & 0xff, size >> 8, g.modifier2), g.block, g.body]);
      }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
);

const maxVarsArb = fc.oneof(fc.constant(MAX_UWSGI_VARS_BYTES), fc.nat(64), fc.nat(4096), fc.constant(1_000_000));

describe('fuzz: uwsgi packets', () => {
  it(
    'round-trip: any vars and body, at every chunking, through encodeUwsgiPacket and the reader',
    async () => {
      await check(
        TARGET,
        'round-trip',
        fc.property(varsArb, bodyArb, chunkingArb, fc.boolean(), (pairs, body, chunking, tight) => {
          const vars = fitting(pairs, body);
          const block = encodeUwsgiVars(vars);
          const packet = encodeUwsgiPacket(vars, body);
          expect(packet.length).toBe(UWSGI_HEADER_BYTES + block.length + body.length);
          expect(packet.readUInt16LE(1)).toBe(block.length);
          const read = checkAnyStream(packet, chunking, tight ? block.length : MAX_UWSGI_VARS_BYTES);
          expect(read.error).toBeNull();
          expect(read.variables).toEqual(asObject(vars));
          expect(read.contentLength).toBe(body.length);
          expect(read.after).toBe(Buffer.from(body).toString('latin1'));
          expect(decodeUwsgiVars(block)).toEqual(asObject(vars));
          // One byte less of room: refused from the packet header, before the block is buffered.
          const refused = checkAnyStream(packet, chunking, block.length - 1);
          expect(refused.error?.message).toMatch(/^uwsgi: vars block exceeds maxHeaderBytes/);
        }),
        0.2,
      );
    },
    testTimeout(0.2),
  );

  it(
    'generated streams: only ProtocolErrors, no buffer past maxVarsBytes, chunking-independent',
    async () => {
      await check(
        TARGET,
        'generated',
        fc.property(generatedStreamArb, chunkingArb, maxVarsArb, (bytes, chunking, maxVarsBytes) => {
          checkAnyStream(bytes, chunking, maxVarsBytes);
        }),
        0.3,
      );
    },
    testTimeout(0.3),
  );

  it(
    'mutated valid packets: only ProtocolErrors, no buffer past maxVarsBytes, chunking-independent',
    async () => {
      await check(
        TARGET,
        'mutated',
        fc.property(varsArb, bodyArb, mutationsArb, chunkingArb, maxVarsArb, (pairs, body, mutations, chunking, maxVarsBytes) => {
          checkAnyStream(mutate(encodeUwsgiPacket(fitting(pairs, body), body), mutations), chunking, maxVarsBytes);
        }),
        0.3,
      );
    },
    testTimeout(0.3),
  );

  it(
    'generated and mutated blocks: decodeUwsgiVars throws only ProtocolErrors and keeps what it accepts',
    async () => {
      await check(
        TARGET,
        'decoder',
        fc.property(generatedBlockArb, mutationsArb, fc.boolean(), (block, mutations, mutated) => {
          const bytes = mutated ? mutate(block, mutations) : Buffer.from(block);
          const outcome = timed('decodeUwsgiVars', () => typedOutcome(() => decodeUwsgiVars(bytes), [ProtocolError], AREA));
          if (!outcome.ok) return;
          // Accepted: walking the sizes by hand finds the same vars and uses up the block exactly.
          const expected: Array<[string, string]> = [];
          let at = 0;
          while (at < bytes.length) {
            const keySize = bytes.readUInt16LE(at);
            const name = bytes.toString('latin1', at + 2, at + 2 + keySize);
            const valueSize = bytes.readUInt16LE(at + 2 + keySize);
            expected.push([name, bytes.toString('latin1', at + 4 + keySize, at + 4 + keySize + valueSize)]);
            at += 4 + keySize + valueSize;
          }
          expect(at).toBe(bytes.length);
          expect(outcome.value).toEqual(asObject(expected));
        }),
        0.2,
      );
    },
    testTimeout(0.2),
  );
});
