/**
 * ByteQueue.copy keeps large contents (over COALESCE_LIMIT_BYTES) as views of the buffer they arrived in, as
 * nginx sends them (8 KiB STDIN records, eight to a 64 KiB socket read), and charges each buffer whole, once,
 * for as long as a view of it waits: the count (queued, and the server's budget) is never below what is held.
 */
import { describe, expect, it } from 'vitest';
import type { ByteBudget } from '../../src/protocol/fastcgi/name-value.js';
import { ByteQueue, COALESCE_LIMIT_BYTES } from '../../src/servers/fastcgi/byte-queue.js';

const RECORD = 8192;
const HEADER = 8;

/** A 64 KiB "socket read" holding `records` record contents of RECORD bytes after 8-byte headers; the views. */
function readOfRecords(records: number, fill: (record: number) => number): { read: Buffer; contents: Uint8Array[] } {
  const read = Buffer.alloc(64 * 1024);
  const contents: Uint8Array[] = [];
  for (let i = 0; i < records; i++) {
    const at = i * (HEADER + RECORD) + HEADER;
    read.fill(fill(i), at, at + RECORD);
    contents.push(read.subarray(at, at + RECORD));
  }
  return { read, contents };
}

describe('ByteQueue.copy: large contents kept as views', () => {
  it('charges a read shared by several records once, moves the charge along, and gives it back when the last is read', async () => {
    const budget: ByteBudget = { used: 0 };
    const drained: number[] = [];
    const queue = new ByteQueue(() => drained.push(budget.used), 0, budget);
    const { read, contents } = readOfRecords(7, (i) => i + 1);
    for (const content of contents) queue.copy(content);
    expect(queue.queued).toBe(read.byteLength);
    expect(budget.used).toBe(read.byteLength);
    for (let i = 0; i < 7; i++) {
      const chunk = (await queue.next()).value as Uint8Array;
      // The view itself: no copy, same bytes.
      expect(chunk.buffer).toBe(read.buffer);
      expect(chunk.length).toBe(RECORD);
      expect(chunk.every((byte) => byte === i + 1)).toBe(true);
      // Held until the last view of the read is handed out.
      expect(budget.used).toBe(i < 6 ? read.byteLength : 0);
    }
    expect(queue.queued).toBe(0);
    expect(drained).toEqual([0]);
  });

  it('charges each read once, a split record its own buffer, and a small record a copy, in order', async () => {
    const budget: ByteBudget = { used: 0 };
    const queue = new ByteQueue(() => {}, 0, budget);
    const first = readOfRecords(2, () => 1);
    const second = readOfRecords(3, () => 2);
    const split = new Uint8Array(COALESCE_LIMIT_BYTES + 1).fill(3); // the decoder's buffer for a split record
    const smallRead = Buffer.alloc(64 * 1024, 4);
    for (const content of first.contents) queue.copy(content);
    queue.copy(split);
    queue.copy(smallRead.subarray(100, 200));
    for (const content of second.contents) queue.copy(content);
    const held = 2 * 64 * 1024 + split.byteLength + 100;
    expect(queue.queued).toBe(held);
    expect(budget.used).toBe(held);
    smallRead.fill(9); // The small record was copied: changing its read does not change it.
    const chunks: Uint8Array[] = [];
    queue.end();
    for (;;) {
      const next = await queue.next();
      if (next.done) break;
      chunks.push(next.value);
    }
    expect(chunks.map((chunk) => [chunk.length, chunk[0]])).toEqual([
      [RECORD, 1],
      [RECORD, 1],
      [split.length, 3],
      [100, 4],
      [RECORD, 2],
      [RECORD, 2],
      [RECORD, 2],
    ]);
    expect(chunks[3]?.buffer).not.toBe(smallRead.buffer);
    expect(budget.used).toBe(0);
  });

  it('charges the buffer again for a view that follows one the app already has', async () => {
    const budget: ByteBudget = { used: 0 };
    const queue = new ByteQueue(() => {}, 0, budget);
    const { read, contents } = readOfRecords(2, () => 5);
    queue.copy(contents[0] as Uint8Array);
    await queue.next(); // The app has the first view (and may keep it, with its read).
    expect(budget.used).toBe(0);
    queue.copy(contents[1] as Uint8Array);
    expect(budget.used).toBe(read.byteLength);
    await queue.next();
    expect(budget.used).toBe(0);
  });

  it('fail() gives back every charge, views and copies alike', async () => {
    const budget: ByteBudget = { used: 0 };
    const queue = new ByteQueue(() => {}, 0, budget);
    for (const content of readOfRecords(7, () => 6).contents) queue.copy(content);
    queue.copy(Uint8Array.of(1));
    queue.copy(Uint8Array.of(2));
    expect(budget.used).toBe(64 * 1024 + 2);
    queue.fail(new Error('gone'));
    expect(budget.used).toBe(0);
    expect(queue.queued).toBe(0);
    await expect(queue.next()).rejects.toThrow('gone');
  });
});
