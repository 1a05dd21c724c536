/**
 * PairMemory: with a NameValueCache, decodeNameValuePairsInto takes the runs of pairs that did not change since
 * the last block from memory after one byte compare. Whatever the sequence of blocks (values that change, grow
 * or shrink, pairs added or removed, blocks cut short that throw), every block must decode exactly as it does
 * with no cache.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { NameValueCache, decodeNameValuePairsInto, encodeNameValuePairs } from '../../../src/protocol/fastcgi/name-value.js';
import { MAX_REMEMBERED_PAIRS } from '../../../src/protocol/fastcgi/pair-memory.js';

type Pairs = Array<[string, string]>;

/** nginx's FastCGI params for a GET, as it sends them on every request (REMOTE_PORT differs each time). */
const NGINX: Pairs = [
  ['QUERY_STRING', ''],
  ['REQUEST_METHOD', 'GET'],
  ['CONTENT_TYPE', ''],
  ['CONTENT_LENGTH', ''],
  ['SCRIPT_NAME', '/index.php'],
  ['REQUEST_URI', '/'],
  ['DOCUMENT_URI', '/index.php'],
  ['DOCUMENT_ROOT', '/srv/www'],
  ['SERVER_PROTOCOL', 'HTTP/1.1'],
  ['GATEWAY_INTERFACE', 'CGI/1.1'],
  ['REMOTE_ADDR', '127.0.0.1'],
  ['REMOTE_PORT', '40000'],
  ['SERVER_PORT', '80'],
  ['SERVER_NAME', 'localhost'],
  ['HTTP_HOST', 'localhost'],
];

/** Decodes `block` with `cache` and with none: the same object, or the same ProtocolError. */
function expectSameAsUncached(block: Uint8Array, cache: NameValueCache): void {
  let expected: Record<string, string> | Error;
  try {
    expected = decodeNameValuePairsInto(block, {});
  } catch (error) {
    expected = error as Error;
  }
  if (expected instanceof Error) {
    expect(expected).toBeInstanceOf(ProtocolError);
    expect(() => decodeNameValuePairsInto(block, {}, cache)).toThrow(expected.message);
    return;
  }
  expect(decodeNameValuePairsInto(block, {}, cache)).toEqual(expected);
}

describe('PairMemory (decodeNameValuePairsInto with a cache)', () => {
  it('takes the unchanged runs from memory: nginx params where only REMOTE_PORT differs decode right', () => {
    const cache = new NameValueCache();
    for (let port = 40000; port < 40010; port++) {
      const pairs = NGINX.map(([name, value]): [string, string] => [name, name === 'REMOTE_PORT' ? String(port) : value]);
      expect(decodeNameValuePairsInto(encodeNameValuePairs(pairs), {}, cache)).toEqual(Object.fromEntries(pairs));
    }
    // Pairs 0-10 and 12-14 were the same in the last two blocks: two runs around REMOTE_PORT.
    expect(cache.pairs.runEnds.slice(0, cache.pairs.count)).toEqual([11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 15, 15, 15]);
  });

  it('a block cut short leaves no memory behind: the next block decodes from scratch', () => {
    const cache = new NameValueCache();
    const block = encodeNameValuePairs(NGINX);
    decodeNameValuePairsInto(block, {}, cache);
    decodeNameValuePairsInto(block, {}, cache);
    expect(() => decodeNameValuePairsInto(block.subarray(0, block.length - 3), {}, cache)).toThrow(ProtocolError);
    expect(cache.pairs.count).toBe(0);
    expect(decodeNameValuePairsInto(block, {}, cache)).toEqual(Object.fromEntries(NGINX));
  });

  it('remembers at most MAX_REMEMBERED_PAIRS pairs; the others still decode', () => {
    const cache = new NameValueCache();
    const pairs: Pairs = Array.from({ length: MAX_REMEMBERED_PAIRS + 20 }, (_, i) => [`N${i}`, `v${i}`]);
    for (let round = 0; round < 3; round++) {
      pairs[MAX_REMEMBERED_PAIRS + 5] = [`N${MAX_REMEMBERED_PAIRS + 5}`, `round ${round}`];
      expect(decodeNameValuePairsInto(encodeNameValuePairs(pairs), {}, cache)).toEqual(Object.fromEntries(pairs));
    }
    expect(cache.pairs.count).toBe(MAX_REMEMBERED_PAIRS);
  });

  it('any sequence of edited blocks decodes as with no cache', () => {
    const value = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 200 });
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), name: fc.constantFrom('X', 'HTTP_X', 'REMOTE_PORT'), value }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('cut' as const), bytes: fc.integer({ min: 1, max: 8 }) }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(edit, { maxLength: 3 }), { minLength: 1, maxLength: 8 }), (steps) => {
        const cache = new NameValueCache();
        const pairs: Pairs = NGINX.map(([name, v]): [string, string] => [name, v]);
        for (const edits of steps) {
          let cut = 0;
          for (const step of edits) {
            if (step.kind === 'cut') cut = step.bytes;
            else if (pairs.length === 0) pairs.push(['X', 'x']);
            else if (step.kind === 'set') {
              const at = step.at % pairs.length;
              pairs[at] = [(pairs[at] as [string, string])[0], step.value];
            } else if (step.kind === 'insert') pairs.splice(step.at % (pairs.length + 1), 0, [step.name, step.value]);
            else pairs.splice(step.at % pairs.length, 1);
          }
          const block = encodeNameValuePairs(pairs);
          expectSameAsUncached(cut > 0 ? block.subarray(0, Math.max(0, block.length - cut)) : block, cache);
        }
      }),
      { numRuns: 400, seed: 20_261_203 },
    );
  });
});
