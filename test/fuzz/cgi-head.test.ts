/**
 * Fuzzing the CGI response head parser (RFC 3875 §6, and §5.2 for NPH): parseCgiHead on a whole output and
 * CgiHeadReader, the streaming reader the CGI host (src/host/run-cgi.ts) feeds a script's stdout through.
 * Properties, for generated outputs and mutated valid heads, fed whole, a byte at a time or in random reads:
 * only ProtocolErrors, bounded time, the reader never buffers past maxHeadBytes, the parser and the reader
 * agree at every chunking, every accepted head obeys the field rules; and heads written by formatCgiHead
 * parse back to the status, reason and fields they were made from.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { getStatusText } from '../../src/helpers/status-text.js';
import { encodeUtf8Latin1 } from '../../src/environ/byte-policy.js';
import { CgiHeadReader, HOP_BY_HOP_FIELDS, MAX_HEAD_BYTES, parseCgiHead, type CgiHead } from '../../src/response/cgi-head-parse.js';
import { formatCgiHead } from '../../src/response/cgi-head.js';
import { TOKEN_RE } from '../../src/response/status.js';
import type { Header } from '../../src/types.js';
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

const TARGET = 'cgi-head';
const AREA = /^cgi-host: /;
const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".split('');
const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;

const tokenArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 16 }) },
  { weight: 2, arbitrary: fc.constantFrom('X-A', 'Set-Cookie', 'Cache-Control', 'Vary', 'ETag', 'x-custom') },
);
/** A field value a script may legally write: no control char but HTAB, any latin-1 byte, not blank-padded. */
const valueCharArb = byteChar().filter((c) => !CONTROL_RE.test(c));
const valueArb: fc.Arbitrary<string> = fc
  .string({ unit: valueCharArb, maxLength: 40 })
  .map((v) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
/** A reason phrase as scripts write them: no control chars, no surrounding blanks (JS trim() blanks included). */
const reasonArb: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.constantFrom('OK', 'Not Found', 'Teapot Time', 'caf\u00e9'),
  fc.string({ unit: valueCharArb, maxLength: 24 }).map((r) => r.trim()),
);
const codeArb = fc.integer({ min: 100, max: 599 });

/** Ordinary fields (no Status, Location, Content-Type or Content-Length: those are added on purpose). */
const plainFieldsArb: fc.Arbitrary<Header[]> = fc.array(
  fc.tuple(tokenArb, valueArb).filter(([name]) => !['status', 'location', 'content-type', 'content-length'].includes(name.toLowerCase())),
  { maxLength: 8 },
);

interface ValidHead {
  code: number;
  reason: string;
  fields: Header[];
  /** The fields a CGI-mode parse keeps (hop-by-hop ones are dropped). */
  kept: Header[];
  body: Uint8Array;
  lf: boolean;
}

/** A head formatCgiHead writes from a status, fields (maybe a hop-by-hop one, a Location, a Content-Type). */
const validHeadArb: fc.Arbitrary<ValidHead> = fc
  .record({
    code: codeArb,
    reason: reasonArb,
    fields: plainFieldsArb,
    contentType: fc.option(fc.constantFrom('text/plain', 'text/html; charset=utf-8', 'application/octet-stream'), { nil: undefined }),
    location: fc.option(fc.constantFrom('/here', 'http://example.test/x', '/a?b=c'), { nil: undefined }),
    contentLength: fc.option(fc.nat(100_000), { nil: undefined }),
    hopByHop: fc.option(fc.constantFrom('Connection', 'Keep-Alive', 'Transfer-Encoding', 'TE', 'Trailer', 'Upgrade'), { nil: undefined }),
    body: fc.uint8Array({ maxLength: 64 }),
    lf: fc.boolean(),
  })
  .map((g) => {
    const fields: Header[] = [...g.fields];
    if (g.contentType !== undefined) fields.push(['Content-Type', g.contentType]);
    if (g.location !== undefined) fields.push(['Location', g.location]);
    if (g.contentLength !== undefined) fields.push(['Content-Length', String(g.contentLength)]);
    if (g.hopByHop !== undefined) fields.splice(g.fields.length > 0 ? 1 : 0, 0, [g.hopByHop, 'close']);
    const kept = fields.filter(([name]) => !HOP_BY_HOP_FIELDS.has(name.toLowerCase()));
    return { code: g.code, reason: g.reason, fields, kept, body: g.body, lf: g.lf };
  });

/** The script's output: the formatted head (with LF line ends when `lf`, as Unix scripts write them), the body. */
function output(head: ValidHead, nph = false): Buffer {
  let bytes = formatCgiHead(head.code, head.reason, head.fields, nph ? { protocol: 'HTTP/1.1' } : undefined);
  if (head.lf) bytes = Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return Buffer.concat([bytes, head.body]);
}

interface Outcome {
  head: CgiHead | null;
  error: Error | null;
  headBytes: string | null;
  body: string | null;
  largest: number;
}

/** Feeds `chunks` to a reader; once it returns the head, later chunks are body. Ends with end() if no head. */
function readChunks(chunks: readonly Uint8Array[], nph: boolean, maxHeadBytes: number): Outcome {
  const reader = new CgiHeadReader({ nph, maxHeadBytes });
  const out: Outcome = { head: null, error: null, headBytes: null, body: null, largest: 0 };
  out.largest = largestAllocation(() => {
    const outcome = typedOutcome(
      () => {
        for (const [index, chunk] of chunks.entries()) {
          const result = reader.push(chunk);
          if (result === undefined) continue;
          expect(reader.done).toBe(true);
          untracked(() => {
            out.head = result.head;
            out.headBytes = result.headBytes.toString('latin1');
            out.body = [result.body, ...chunks.slice(index + 1)].map((part) => Buffer.from(part).toString('latin1')).join('');
          });
          return;
        }
        reader.end();
      },
      [ProtocolError],
      AREA,
    );
    if (!outcome.ok) out.error = outcome.error;
  });
  return out;
}

/** The rules every accepted head obeys. */
function checkAcceptedHead(head: CgiHead, bytes: Uint8Array, nph: boolean): void {
  expect(Number.isInteger(head.status) && head.status >= 100 && head.status <= 599).toBe(true);
  expect(CONTROL_RE.test(head.reason)).toBe(false);
  expect(head.nph).toBe(nph);
  expect(head.bodyStart).toBeGreaterThan(0);
  expect(head.bodyStart).toBeLessThanOrEqual(bytes.length);
  // The head ends at the first empty line (LF or CRLF), and not before.
  const text = Buffer.from(bytes.subarray(0, head.bodyStart)).toString('latin1');
  expect(/(^|\n)\r?\n$/.test(text)).toBe(true);
  expect(/(^|\n)\r?\n./s.test(text)).toBe(false);
  for (const [name, value] of head.headers) {
    expect(TOKEN_RE.test(name)).toBe(true);
    expect(CONTROL_RE.test(value)).toBe(false);
    expect(/^[ \t]|[ \t]$/.test(value)).toBe(false);
    if (!nph) {
      expect(name.toLowerCase()).not.toBe('status');
      expect(HOP_BY_HOP_FIELDS.has(name.toLowerCase())).toBe(false);
    }
  }
  if (!nph) {
    for (const once of ['location', 'content-type']) expect(head.headers.filter(([n]) => n.toLowerCase() === once).length).toBeLessThanOrEqual(1);
    for (const [name, value] of head.headers) if (name.toLowerCase() === 'content-length') expect(value).toMatch(/^[0-9]+$/);
  }
}

/** Every input: the parser and the reader agree at every chunking, and the limits hold. */
function checkAnyOutput(bytes: Uint8Array, chunking: Chunking, nph: boolean, maxHeadBytes: number): Outcome {
  const parsed = timed('parseCgiHead', () => typedOutcome(() => parseCgiHead(bytes, { nph, maxHeadBytes }), [ProtocolError], AREA));
  const chunks = split(bytes, chunking);
  const read = timed('CgiHeadReader', () => readChunks(chunks, nph, maxHeadBytes));
  // The reader holds at most maxHeadBytes of head; the body that came with it is at most one read.
  const largestChunk = chunks.reduce((most, chunk) => Math.max(most, chunk.length), 0);
  expect(read.largest).toBeLessThanOrEqual(Math.max(maxHeadBytes, largestChunk));
  expect(read.error?.message).toEqual(parsed.ok ? undefined : parsed.error.message);
  if (parsed.ok) {
    checkAcceptedHead(parsed.value, bytes, nph);
    expect(read.head).toEqual(parsed.value);
    const all = Buffer.from(bytes).toString('latin1');
    expect(read.headBytes).toBe(all.slice(0, parsed.value.bodyStart));
    expect(read.body).toBe(all.slice(parsed.value.bodyStart));
  }
  return read;
}

/** Outputs shaped like heads: lines of names, colons, values with stray control chars, blank lines, a body. */
const generatedOutputArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .array(
        fc.oneof(
          { weight: 4, arbitrary: fc.tuple(tokenArb, valueArb).map(([n, v]) => `${n}: ${v}`) },
          {
            weight: 2,
            arbitrary: fc.constantFrom('Status: 200 OK', 'Status: 404', 'Status: 99 x', 'Status: 600', 'Status: abc', 'Content-Type: text/plain', 'Location: /x', 'Location: //x', 'Content-Length: 5', 'Content-Length: -1', 'Connection: close', 'HTTP/1.1 200 OK', 'HTTP/1.0 404', 'HTTP/2 200'),
          },
          { weight: 1, arbitrary: fc.string({ unit: byteChar(), maxLength: 30 }) },
          { weight: 1, arbitrary: fc.constantFrom('', ' folded', '\tfolded', 'no colon', ': empty name', 'a b: c', 'X: a\rb') },
        ),
        { maxLength: 10 },
      )
      .chain((lines) =>
        fc.tuple(fc.array(fc.constantFrom('\n', '\r\n', '\r', ''), { minLength: lines.length, maxLength: lines.length }), fc.constantFrom('\r\n', '\n', '', '\r\n\r\n'), fc.uint8Array({ maxLength: 16 })).map(
          ([ends, blank, body]) => Buffer.concat([Buffer.from(lines.map((line, i) => `${line}${ends[i]}`).join('') + blank, 'latin1'), body]),
        ),
      ),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
);

const maxHeadArb = fc.oneof(fc.constant(MAX_HEAD_BYTES), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 1024 }));

describe('fuzz: CGI response head', () => {
  it(
    'round-trip: formatCgiHead output (CRLF or LF lines) parses back to its status, reason and fields',
    async () => {
      await check(
        TARGET,
        'round-trip',
        fc.property(validHeadArb, chunkingArb, (head, chunking) => {
          const bytes = output(head);
          const read = checkAnyOutput(bytes, chunking, false, MAX_HEAD_BYTES);
          expect(read.error).toBeNull();
          const parsed = read.head as CgiHead;
          expect(parsed.status).toBe(head.code);
          expect(parsed.reason).toBe(head.reason || getStatusText(head.code));
          expect(parsed.headers).toEqual(head.kept);
          expect(parsed.warnings.length).toBe(head.fields.length - head.kept.length);
          // A head with Status is never a local redirect, even with a Location.
          expect(parsed.localRedirect).toBe(false);
          expect(read.body).toBe(Buffer.from(head.body).toString('latin1'));
          expect(parsed.bodyStart).toBe(bytes.length - head.body.length);
        }),
        0.2,
      );
    },
    testTimeout(0.2),
  );

  it(
    'round-trip: NPH heads (HTTP status line) parse back with every field, hop-by-hop ones included',
    async () => {
      await check(
        TARGET,
        'nph round-trip',
        fc.property(validHeadArb, chunkingArb, (head, chunking) => {
          const read = checkAnyOutput(output(head, true), chunking, true, MAX_HEAD_BYTES);
          expect(read.error).toBeNull();
          const parsed = read.head as CgiHead;
          expect(parsed.protocol).toBe('HTTP/1.1');
          expect(parsed.status).toBe(head.code);
          expect(parsed.reason).toBe(head.reason || getStatusText(head.code));
          expect(parsed.headers).toEqual(head.fields);
        }),
        0.1,
      );
    },
    testTimeout(0.1),
  );

  it(
    'round-trip: values above U+00FF go out as their UTF-8 bytes and come back as those bytes',
    async () => {
      // At least one char above U+00FF, so the head can't go out as latin-1 (a head of ASCII and that value).
      const textArb = fc
        .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
        .map((t) => t.trim())
        .filter((t) => /[^\x00-\xff]/.test(t) && !CONTROL_RE.test(t) && !/[\u0085\u2028\u2029]/.test(t));
      await check(
        TARGET,
        'utf-8 values',
        fc.property(tokenArb.filter((n) => !HOP_BY_HOP_FIELDS.has(n.toLowerCase()) && !['status', 'location', 'content-type', 'content-length'].includes(n.toLowerCase())), textArb, (name, text) => {
          const parsed = parseCgiHead(formatCgiHead(200, 'OK', [[name, text]]));
          const bytes = encodeUtf8Latin1(text);
          expect(parsed.headers).toEqual([[name, bytes.replace(/^[ \t]+|[ \t]+$/g, '')]]);
        }),
        0.05,
      );
    },
    testTimeout(0.05),
  );

  it(
    'generated outputs: only ProtocolErrors, parser and reader agree, accepted heads obey the rules',
    async () => {
      await check(
        TARGET,
        'generated',
        fc.property(generatedOutputArb, chunkingArb, fc.boolean(), maxHeadArb, (bytes, chunking, nph, maxHeadBytes) => {
          checkAnyOutput(bytes, chunking, nph, maxHeadBytes);
        }),
        0.325,
      );
    },
    testTimeout(0.325),
  );

  it(
    'mutated valid heads: only ProtocolErrors, parser and reader agree, never past maxHeadBytes',
    async () => {
      await check(
        TARGET,
        'mutated',
        fc.property(validHeadArb, mutationsArb, chunkingArb, fc.boolean(), maxHeadArb, (head, mutations, chunking, nph, maxHeadBytes) => {
          checkAnyOutput(mutate(output(head, nph), mutations), chunking, nph, maxHeadBytes);
        }),
        0.325,
      );
    },
    testTimeout(0.325),
  );
});
