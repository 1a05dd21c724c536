import { describe, expect, it } from 'vitest';
import { createInput } from '../../src/environ/input.js';
import { AbortError, InputError } from '../../src/errors.js';

function source(parts: string[], pulls: { count: number } = { count: 0 }): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      let i = 0;
      return {
        async next() {
          pulls.count++;
          if (i >= parts.length) return { done: true, value: undefined };
          return { done: false, value: Buffer.from(parts[i++] as string) };
        },
      };
    },
  };
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe('createInput', () => {
  it('stops at CONTENT_LENGTH and never pulls the source again', async () => {
    const pulls = { count: 0 };
    const input = createInput({ source: source(['hel', 'loEXTRA', 'more'], pulls), contentLength: 5, terminated: false });
    expect(text(await input.read())).toBe('hello');
    expect((await input.read()).length).toBe(0);
    expect(pulls.count).toBe(2);
  });

  it('read(n) returns exactly n bytes until the end', async () => {
    const input = createInput({ source: source(['abcd', 'efghij']), contentLength: 10, terminated: false });
    const sizes: string[] = [];
    for (let part = await input.read(3); part.length > 0; part = await input.read(3)) sizes.push(text(part));
    expect(sizes).toEqual(['abc', 'def', 'ghi', 'j']);
  });

  it('async iteration yields chunks, never past CONTENT_LENGTH', async () => {
    const input = createInput({ source: source(['ab', 'cdef']), contentLength: 3, terminated: false });
    const chunks: string[] = [];
    for await (const chunk of input) chunks.push(text(chunk));
    expect(chunks).toEqual(['ab', 'c']);
  });

  it('a source shorter than CONTENT_LENGTH rejects with InputError (400)', async () => {
    const input = createInput({ source: source(['hello']), contentLength: 10, terminated: false });
    await expect(input.read()).rejects.toBeInstanceOf(InputError);
    await expect(input.read()).rejects.toThrow(/body ended after 5 of 10 bytes/);
  });

  it('no CONTENT_LENGTH: empty unless terminated, then read to the end', async () => {
    const pulls = { count: 0 };
    const empty = createInput({ source: source(['x'], pulls), contentLength: null, terminated: false });
    expect((await empty.read()).length).toBe(0);
    expect(pulls.count).toBe(0);
    const chunked = createInput({ source: source(['ab', 'cd']), contentLength: null, terminated: true });
    expect(text(await chunked.read())).toBe('abcd');
  });

  it('abort rejects a pending read with the abort reason', async () => {
    const controller = new AbortController();
    const never: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) };
    const input = createInput({ source: never, contentLength: 5, terminated: false, signal: controller.signal });
    const pending = input.read();
    controller.abort(new AbortError('gone'));
    await expect(pending).rejects.toThrow('gone');
  });

  it('calls onFirstRead once, only when the body is read', async () => {
    let calls = 0;
    const input = createInput({ source: source(['abc']), contentLength: 3, terminated: false, onFirstRead: () => calls++ });
    expect(calls).toBe(0);
    await input.read(1);
    await input.read();
    expect(calls).toBe(1);
  });

  it('rejects a bad size and concurrent reads', async () => {
    const input = createInput({ source: source(['abc']), contentLength: 3, terminated: false });
    await expect(input.read(-1)).rejects.toBeInstanceOf(InputError);
    const first = input.read(1);
    await expect(input.read(1)).rejects.toThrow(/concurrent reads/);
    expect(text(await first)).toBe('a');
  });
});
