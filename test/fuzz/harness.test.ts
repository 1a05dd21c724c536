/**
 * The fuzz harness checks itself: the allocation probe sees the allocations the properties rely on it to see,
 * the mutations and chunkings do what they say, and a foreign error fails the typed-error check.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { RecordDecoder } from '../../src/protocol/fastcgi/record-decoder.js';
import { ScgiHeaderReader } from '../../src/protocol/scgi/netstring.js';
import { MAX_CHUNKS, expectTypedError, largestAllocation, mutate, split, untracked } from './harness.js';

describe('fuzz harness', () => {
  it('the allocation probe sees new Uint8Array, Buffer allocations, copies and slices, but not views', () => {
    // A record header declaring 65,520 bytes, with one byte of it: the decoder allocates the whole content.
    const decoder = new RecordDecoder(() => {});
    expect(largestAllocation(() => decoder.push(Uint8Array.of(1, 5, 0, 1, 0xff, 0xf0, 0, 0, 1)))).toBe(0xfff0);
    expect(largestAllocation(() => new ScgiHeaderReader(1000).push(Buffer.from('999:abc')))).toBe(1000);
    expect(largestAllocation(() => Buffer.from('x'.repeat(30)))).toBe(30);
    expect(largestAllocation(() => Buffer.concat([Buffer.alloc(3), Buffer.alloc(4)]))).toBe(7);
    expect(largestAllocation(() => Uint8Array.prototype.slice.call(new Uint8Array(9), 0, 5))).toBe(9);
    const backing = new ArrayBuffer(4096);
    expect(largestAllocation(() => void new Uint8Array(backing, 0, 4096))).toBe(0);
    expect(largestAllocation(() => void Buffer.from(backing, 0, 4096))).toBe(0);
    expect(largestAllocation(() => void untracked(() => Buffer.alloc(500)))).toBe(0);
    // The patches are gone afterwards.
    expect(globalThis.Uint8Array.name).toBe('Uint8Array');
    expect(largestAllocation(() => {})).toBe(0);
  });

  it('the allocation probe restores the globals when the probed code throws', () => {
    const before = [globalThis.Uint8Array, Buffer.alloc, Buffer.from, Buffer.concat];
    expect(() =>
      largestAllocation(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect([globalThis.Uint8Array, Buffer.alloc, Buffer.from, Buffer.concat]).toEqual(before);
  });

  it('mutations edit a copy as described', () => {
    const base = Buffer.from('abcdef');
    expect(mutate(base, [{ kind: 'flip', at: 0, bit: 0 }]).toString()).toBe('`bcdef');
    expect(mutate(base, [{ kind: 'set', at: 7, byte: 0x5a }]).toString()).toBe('aZcdef');
    expect(mutate(base, [{ kind: 'insert', at: 2, bytes: Buffer.from('XY') }]).toString()).toBe('abXYcdef');
    expect(mutate(base, [{ kind: 'delete', at: 1, length: 2 }]).toString()).toBe('adef');
    expect(mutate(base, [{ kind: 'duplicate', at: 0, length: 2, to: 6 }]).toString()).toBe('abcdefab');
    expect(mutate(base, [{ kind: 'truncate', at: 3 }]).toString()).toBe('abc');
    expect(base.toString()).toBe('abcdef');
  });

  it('chunkings cut the whole input, in order, into at most MAX_CHUNKS reads', () => {
    const bytes = Buffer.from('x'.repeat(5000));
    for (const chunking of [{ kind: 'whole' as const }, { kind: 'bytes' as const }, { kind: 'sizes' as const, sizes: [1, 7, 3] }]) {
      const chunks = split(bytes, chunking);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      expect(chunks.length).toBeLessThanOrEqual(MAX_CHUNKS);
    }
    expect(split(Buffer.from('abcdef'), { kind: 'sizes', sizes: [1, 2] }).map(String)).toEqual(['a', 'bc', 'd', 'ef']);
  });

  it('the typed-error check passes module errors and fails anything else', () => {
    expect(() => expectTypedError(new ProtocolError('fastcgi: x'), [ProtocolError], /^fastcgi: /)).not.toThrow();
    expect(() => expectTypedError(new TypeError('x'), [ProtocolError], /^fastcgi: /)).toThrow(/unexpected TypeError/);
    expect(() => expectTypedError(new RangeError('x'), [ProtocolError], /^fastcgi: /)).toThrow(/unexpected RangeError/);
    expect(() => expectTypedError(new ProtocolError('scgi: x'), [ProtocolError], /^fastcgi: /)).toThrow();
  });
});
