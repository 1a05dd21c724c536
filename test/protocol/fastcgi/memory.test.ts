/**
 * Issue 10, part 2: what PARAMS and STDIN cost whatever the record sizes. Before, every record was kept as its
 * own view (a Uint8Array object, and the socket read it lived in): 1-byte records cost ~150 bytes of heap per
 * byte. Now small records are gathered into growing or shared buffers, and what is held is charged to the
 * server's byte budget until it is let go.
 */
import { describe, expect, it } from 'vitest';
import { decodeNameValuePairsInto, encodeNameValuePairs, NameValueCollector, type ByteBudget } from '../../../src/protocol/fastcgi/name-value.js';
import { ByteQueue, COALESCE_BUFFER_BYTES } from '../../../src/servers/fastcgi/byte-queue.js';

describe('NameValueCollector: 1-byte records', () => {
  it('gathers 100,000 1-byte pushes into one buffer of at most twice their size, charged to the budget', () => {
    const block = encodeNameValuePairs([['HTTP_X_FILL', 'p'.repeat(100_000 - 20)], ['A', 'b']]);
    const budget: ByteBudget = { used: 0 };
    const collector = new NameValueCollector(1 << 20, undefined, budget);
    for (let i = 0; i < block.length; i++) collector.push(block.subarray(i, i + 1));
    expect(collector.size).toBe(block.length);
    expect(collector.held).toBeGreaterThanOrEqual(block.length);
    expect(collector.held).toBeLessThanOrEqual(2 * block.length);
    expect(budget.used).toBe(collector.held);
    const variables = collector.finish();
    expect(variables.A).toBe('b');
    expect(variables.HTTP_X_FILL?.length).toBe(100_000 - 20);
    expect(budget.used).toBe(0);
  });

  it('never holds more than maxBytes, and discard() gives the charge back', () => {
    const budget: ByteBudget = { used: 0 };
    const collector = new NameValueCollector(3000, undefined, budget);
    for (let i = 0; i < 3000; i++) collector.push(Uint8Array.of(0));
    expect(collector.held).toBe(3000);
    expect(() => collector.push(Uint8Array.of(0))).toThrow(/maxParamsBytes/);
    collector.discard();
    expect(budget.used).toBe(0);
  });

  it('keeps a record that is most of its buffer as a view (the common case), and copies a small part of a big read', () => {
    const budget: ByteBudget = { used: 0 };
    const block = encodeNameValuePairs([['REQUEST_METHOD', 'GET']]);
    const read = Buffer.alloc(block.length + 16); // a socket read: its own memory, not a pool's
    block.copy(read, 8);
    const whole = new NameValueCollector(1 << 20, undefined, budget);
    whole.push(read.subarray(8, 8 + block.length));
    expect(whole.held).toBe(block.length);
    expect(whole.finish()).toEqual({ REQUEST_METHOD: 'GET' });
    // A 3-byte record in a 64 KiB read: copied, so it does not keep the whole read alive.
    const big = Buffer.alloc(64 * 1024);
    big.set([1, 0, 0x41], 100);
    const small = new NameValueCollector(1 << 20, undefined, budget);
    small.push(big.subarray(100, 103));
    expect(small.held).toBeLessThanOrEqual(1024);
    big[102] = 0x42; // the read's memory changing later does not change what was gathered
    expect(small.finish()).toEqual({ A: '' });
    small.discard();
    expect(budget.used).toBe(0);
  });
});

describe('decodeNameValuePairsInto: repeated names (issue 10, part 5)', () => {
  it('joins a repeated HTTP_* param with ", " (HTTP_COOKIE with "; "); any other repeated name: the last wins', () => {
    // Byte-level: what nginx 1.22 sends for `X-Dup: one` + `X-Dup: two` and two Cookie headers, plus a
    // fastcgi_param given twice.
    const block = Buffer.concat([
      Buffer.from([10, 3]), Buffer.from('HTTP_X_DUPone', 'latin1'),
      Buffer.from([10, 3]), Buffer.from('HTTP_X_DUPtwo', 'latin1'),
      Buffer.from([11, 3]), Buffer.from('HTTP_COOKIEa=1', 'latin1'),
      Buffer.from([11, 3]), Buffer.from('HTTP_COOKIEb=2', 'latin1'),
      Buffer.from([11, 4]), Buffer.from('SCRIPT_NAME/one', 'latin1'),
      Buffer.from([11, 4]), Buffer.from('SCRIPT_NAME/two', 'latin1'),
    ]);
    expect(decodeNameValuePairsInto(block, {})).toEqual({ HTTP_X_DUP: 'one, two', HTTP_COOKIE: 'a=1; b=2', SCRIPT_NAME: '/two' });
    const collector = new NameValueCollector(1 << 20);
    for (let i = 0; i < block.length; i++) collector.push(block.subarray(i, i + 1));
    expect(collector.finish()).toEqual({ HTTP_X_DUP: 'one, two', HTTP_COOKIE: 'a=1; b=2', SCRIPT_NAME: '/two' });
  });
});

describe('ByteQueue.copy: 1-byte records', () => {
  async function drain(queue: ByteQueue): Promise<Uint8Array[]> {
    const chunks: Uint8Array[] = [];
    for (;;) {
      const next = await queue.next();
      if (next.done) return chunks;
      chunks.push(next.value);
    }
  }

  it('coalesces 100,000 1-byte copies into a few shared buffers; reading gives the budget back', async () => {
    const budget: ByteBudget = { used: 0 };
    const queue = new ByteQueue(() => {}, 1 << 20, budget);
    for (let i = 0; i < 100_000; i++) queue.copy(Uint8Array.of(i & 0xff));
    expect(queue.queued).toBe(100_000);
    expect(budget.used).toBe(100_000);
    queue.end();
    const chunks = await drain(queue);
    expect(chunks.length).toBeLessThanOrEqual(Math.ceil(100_000 / COALESCE_BUFFER_BYTES) + 1);
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(100_000);
    expect(all.every((byte, i) => byte === (i & 0xff))).toBe(true);
    expect(budget.used).toBe(0);
  });

  it('never changes a chunk once the app has it; a large content is kept as a view charged its whole buffer; fail() gives the budget back', async () => {
    const budget: ByteBudget = { used: 0 };
    const queue = new ByteQueue(() => {}, 1 << 20, budget);
    const source = Buffer.from([1, 2, 3]);
    for (let i = 0; i < 3; i++) queue.copy(source.subarray(i, i + 1));
    source.fill(9); // the socket's memory is reused: the queue kept copies
    // The first small record into an empty queue gets a copy of its own (a body in one record costs what it
    // did); the ones that pile up behind it share a buffer.
    const first = (await queue.next()).value as Uint8Array;
    const second = (await queue.next()).value as Uint8Array;
    expect([...first, ...second]).toEqual([1, 2, 3]);
    expect(second.length).toBe(2);
    queue.copy(Uint8Array.of(4));
    queue.copy(Uint8Array.of(5));
    const third = (await queue.next()).value as Uint8Array;
    expect([...third]).toEqual([4, 5]);
    expect([...second]).toEqual([2, 3]);
    queue.copy(Buffer.alloc(10_000, 6));
    queue.copy(Uint8Array.of(7));
    expect(budget.used).toBe(10_001);
    queue.fail(new Error('gone'));
    expect(budget.used).toBe(0);
    await expect(queue.next()).rejects.toThrow('gone');
  });
});
