import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createStdinReader } from '../../src/servers/cgi-stdin.js';

async function collect(source: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts).toString();
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createStdinReader', () => {
  it('reads ahead of the consumer, stops at CONTENT_LENGTH without waiting for EOF', async () => {
    const stdin = new PassThrough();
    const reader = createStdinReader(stdin, 5);
    stdin.write('hel');
    stdin.write('loEXTRA');
    await tick();
    expect(await collect(reader.source)).toBe('hello');
    expect(stdin.listenerCount('data')).toBe(0);
  });

  it('pauses stdin once readAheadBytes are held, resumes as the consumer takes them', async () => {
    const stdin = new PassThrough({ highWaterMark: 4 });
    const reader = createStdinReader(stdin, 100, 10);
    for (let i = 0; i < 5; i++) stdin.write('abcd');
    await tick();
    expect(stdin.isPaused()).toBe(true);
    const iterator = reader.source[Symbol.asyncIterator]();
    let taken = 0;
    while (taken < 12) taken += ((await iterator.next()).value as Uint8Array).length;
    await tick();
    expect(stdin.isPaused()).toBe(false);
  });

  it('drain() discards what the app left unread, up to CONTENT_LENGTH', async () => {
    const stdin = new PassThrough();
    const reader = createStdinReader(stdin, 8, 4);
    stdin.write('12345678tail');
    await reader.drain(1000);
    expect(stdin.read()?.toString() ?? '').toBe('');
    expect(stdin.listenerCount('data')).toBe(0);
  });

  it('drain() gives up after its timeout when the client stops sending', async () => {
    const stdin = new PassThrough();
    const reader = createStdinReader(stdin, 1000);
    stdin.write('only a little');
    const started = Date.now();
    await reader.drain(100);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('an early EOF ends the source (the input stream turns it into a 400)', async () => {
    const stdin = new PassThrough();
    const reader = createStdinReader(stdin, 10);
    stdin.end('hello');
    expect(await collect(reader.source)).toBe('hello');
  });
});
