/**
 * Fuzzing the SCGI header reader (the netstring `len:name\0value\0...,`) and the header decoder. Properties,
 * for generated streams and mutated valid requests, fed whole, a byte at a time or in random reads: only
 * ProtocolErrors, bounded time, never a buffer past maxHeaderBytes (+1 for the ","), the same outcome at every
 * chunking; and well-formed requests round-trip with their body bytes intact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { DEFAULT_MAX_SCGI_HEADER_BYTES, ScgiHeaderReader, decodeScgiHeaders, encodeScgiHeader, encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import {
  byteChar,
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

const TARGET = 'scgi-netstring';
const AREA = /^scgi: /;

/** A header name: non-empty, NUL-free bytes; now and then one that is also an Object.prototype key. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: byteChar().filter((c) => c !== '\0'), minLength: 1, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.constantFrom('REQUEST_METHOD', 'REQUEST_URI', 'PATH_INFO', 'HTTP_HOST', 'CONTENT_TYPE', 'QUERY_STRING') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty') },
);
const valueArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: byteChar().filter((c) => c !== '\0'), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 100, max: 5000 }), fc.integer({ min: 1, max: 255 })).map(([n, c]) => String.fromCharCode(c).repeat(n)) },
);
/** Variables with unique names (the spec forbids duplicates), CONTENT_LENGTH and SCGI left to the encoder. */
const variablesArb: fc.Arbitrary<Array<[string, string]>> = fc
  .uniqueArray(fc.tuple(nameArb, valueArb), { selector: ([name]) => name, maxLength: 10 })
  .map((pairs) => pairs.filter(([name]) => name !== 'CONTENT_LENGTH' && name !== 'SCGI'));
const bodyArb = fc.uint8Array({ maxLength: 300 });

/** Pairs as an object (own properties, whatever the names), the way the decoders return them. */
function asObject(pairs: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

interface Read {
  /** The variables (own properties only: an inherited one would be a decoder bug). */
  variables: Record<string, string> | null;
  contentLength: number | null;
  /** The bytes after the netstring: `rest`, then every later chunk. */
  after: string | null;
  error: Error | null;
  largest: number;
}

/** Pushes chunks until the header is complete (or an error); what follows it is body. */
function readChunks(chunks: readonly Uint8Array[], maxHeaderBytes: number): Read {
  const reader = new ScgiHeaderReader(maxHeaderBytes);
  const read: Read = { variables: null, contentLength: null, after: null, error: null, largest: 0 };
  read.largest = largestAllocation(() => {
    const outcome = typedOutcome(
      () => {
        for (const [index, chunk] of chunks.entries()) {
          const header = reader.push(chunk);
          if (header === null) continue;
          untracked(() => {
            read.variables = asObject(Object.entries(header.variables));
            read.contentLength = header.contentLength;
            read.after = [header.rest, ...chunks.slice(index + 1)].map((part) => Buffer.from(part).toString('latin1')).join('');
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

/** The checks every input passes: limits, errors, and the same outcome whole and chunked. */
function checkAnyStream(bytes: Uint8Array, chunking: Chunking, maxHeaderBytes: number): Read {
  const whole = timed('ScgiHeaderReader (whole)', () => readChunks(bytes.length === 0 ? [] : [bytes], maxHeaderBytes));
  const chunked = timed('ScgiHeaderReader (chunked)', () => readChunks(split(bytes, chunking), maxHeaderBytes));
  for (const read of [whole, chunked]) {
    // The payload buffer is the declared length plus the ",": a longer declaration fails before allocating.
    expect(read.largest).toBeLessThanOrEqual(maxHeaderBytes + 1);
    if (read.variables) {
      expect(read.variables.SCGI).toBe('1');
      expect(typeof read.variables.CONTENT_LENGTH).toBe('string');
      for (const [name, value] of Object.entries(read.variables)) expect(/^[\x01-\xff]+\0[\x01-\xff]*$/.test(`${name}\0${value}`)).toBe(true);
      expect(Number.isSafeInteger(read.contentLength)).toBe(true);
    }
  }
  expect(chunked.error?.message).toEqual(whole.error?.message);
  expect(chunked.variables).toEqual(whole.variables);
  expect(chunked.contentLength).toEqual(whole.contentLength);
  expect(chunked.after).toEqual(whole.after);
  return chunked;
}

/** Streams shaped like a netstring: digits (maybe lying, maybe a leading zero), ":", NUL-separated bytes, ",". */
const generatedStreamArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record({
        fields: fc.array(fc.oneof(nameArb, valueArb, fc.constantFrom('CONTENT_LENGTH', 'SCGI', '1', '0', '', '-1', '99999999999999999')), { maxLength: 10 }),
        lengthDelta: fc.oneof(fc.constant(0), fc.integer({ min: -3, max: 3 }), fc.integer({ min: -1000, max: 10_000_000 })),
        leadingZero: fc.boolean(),
        terminator: fc.constantFrom(',', ',', ',', ';', ''),
        trailing: fc.uint8Array({ maxLength: 24 }),
        separator: fc.constantFrom('\0', '\0', '\0', ''),
      })
      .map((g) => {
        const payload = g.fields.map((f) => `${f}${g.separator}`).join('');
        const length = Math.max(0, payload.length + g.lengthDelta);
        return Buffer.concat([Buffer.from(`${g.leadingZero ? '0' : ''}${length}:${payload}${g.terminator}`, 'latin1'), g.trailing]);
      }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
);

const maxHeaderArb = fc.oneof(fc.constant(DEFAULT_MAX_SCGI_HEADER_BYTES), fc.nat(64), fc.nat(4096));

describe('fuzz: SCGI netstring header', () => {
  it(
    'round-trip: any variables and body, at every chunking, through encodeScgiRequest and the reader',
    async () => {
      await check(
        TARGET,
        'round-trip',
        fc.property(variablesArb, bodyArb, chunkingArb, fc.boolean(), (pairs, body, chunking, tight) => {
          const request = encodeScgiRequest(pairs, body);
          const header = encodeScgiHeader([['CONTENT_LENGTH', String(body.length)], ['SCGI', '1'], ...pairs]);
          expect(request.subarray(0, header.length).equals(header)).toBe(true);
          const colon = header.indexOf(0x3a);
          const payloadLength = Number(header.subarray(0, colon).toString('latin1'));
          expect(payloadLength).toBe(header.length - colon - 2);
          // With maxHeaderBytes exactly the payload's length the header still fits.
          const read = checkAnyStream(request, chunking, tight ? payloadLength : DEFAULT_MAX_SCGI_HEADER_BYTES);
          expect(read.error).toBeNull();
          const expected: Array<[string, string]> = [['CONTENT_LENGTH', String(body.length)], ['SCGI', '1'], ...pairs];
          expect(read.variables).toEqual(asObject(expected));
          expect(read.contentLength).toBe(body.length);
          expect(read.after).toBe(Buffer.from(body).toString('latin1'));
          // The decoder on its own agrees.
          const decoded = decodeScgiHeaders(header.subarray(colon + 1, header.length - 1));
          expect(decoded.variables).toEqual(asObject(expected));
          // One byte less of room and the same header is refused, before its payload is buffered.
          if (payloadLength > 0) {
            const refused = checkAnyStream(request, chunking, payloadLength - 1);
            expect(refused.error?.message).toMatch(/^scgi: header exceeds maxHeaderBytes/);
          }
        }),
        0.2,
      );
    },
    testTimeout(0.2),
  );

  it(
    'generated streams: only ProtocolErrors, no buffer past maxHeaderBytes, chunking-independent',
    async () => {
      await check(
        TARGET,
        'generated',
        fc.property(generatedStreamArb, chunkingArb, maxHeaderArb, (bytes, chunking, maxHeaderBytes) => {
          checkAnyStream(bytes, chunking, maxHeaderBytes);
        }),
        0.3,
      );
    },
    testTimeout(0.3),
  );

  it(
    'mutated valid requests: only ProtocolErrors, no buffer past maxHeaderBytes, chunking-independent',
    async () => {
      await check(
        TARGET,
        'mutated',
        fc.property(variablesArb, bodyArb, mutationsArb, chunkingArb, maxHeaderArb, (pairs, body, mutations, chunking, maxHeaderBytes) => {
          checkAnyStream(mutate(encodeScgiRequest(pairs, body), mutations), chunking, maxHeaderBytes);
        }),
        0.3,
      );
    },
    testTimeout(0.3),
  );

  it(
    'generated payloads: decodeScgiHeaders throws only ProtocolErrors and keeps every byte it accepts',
    async () => {
      const payloadArb = fc.oneof(
        fc.array(fc.oneof(nameArb, valueArb, fc.constantFrom('CONTENT_LENGTH', 'SCGI', '1', '')), { maxLength: 10 }).map((f) => Buffer.from(f.map((x) => `${x}\0`).join(''), 'latin1')),
        fc.uint8Array({ maxLength: 64 }),
      );
      await check(
        TARGET,
        'decoder',
        fc.property(payloadArb, mutationsArb, fc.boolean(), (payload, mutations, mutated) => {
          const bytes = mutated ? mutate(payload, mutations) : payload;
          const outcome = timed('decodeScgiHeaders', () => typedOutcome(() => decodeScgiHeaders(bytes), [ProtocolError], AREA));
          if (!outcome.ok) return;
          // Accepted: the variables are exactly the payload's pairs, none lost, none made up.
          const tokens = Buffer.from(bytes).toString('latin1').split('\0').slice(0, -1);
          const pairs: Array<[string, string]> = [];
          for (let i = 0; i < tokens.length; i += 2) pairs.push([tokens[i] as string, tokens[i + 1] as string]);
          expect(tokens[0]).toBe('CONTENT_LENGTH');
          expect(outcome.value.variables).toEqual(asObject(pairs));
          expect(Object.keys(outcome.value.variables).length).toBe(pairs.length);
          expect(outcome.value.contentLength).toBe(Number(outcome.value.variables.CONTENT_LENGTH || '0'));
        }),
        0.2,
      );
    },
    testTimeout(0.2),
  );
});
