import { request } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { serveHttp, type HttpServing } from '../../src/servers/http-serve.js';
import type { App } from '../../src/types.js';

const running: HttpServing[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const serving of running.splice(0)) await serving.shutdown();
});

const quiet = { errors: { write: () => {} } };

function slowApp(delayMs: number, onAbort?: () => void): App {
  return async (environ, startResponse) => {
    environ['tsgi.signal'].addEventListener('abort', () => onAbort?.());
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    startResponse('200 OK', []);
    return ['done'];
  };
}

/** GETs `url` on a fresh keep-alive connection (no agent pooling); resolves with status and body, or rejects. */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { Connection: 'keep-alive' } }, (res) => {
      let body = '';
      res.on('data', (data: Buffer) => (body += data.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveHttp', () => {
  it('listens and resolves with the bound address', async () => {
    const serving = await serveHttp(slowApp(0), { ...quiet, port: 0, handleSignals: false });
    running.push(serving);
    expect(serving.address.port).toBeGreaterThan(0);
    expect(serving.url).toBe(`http://127.0.0.1:${serving.address.port}/`);
    expect(await get(serving.url)).toEqual({ status: 200, body: 'done' });
  });

  it('rejects when the port is taken', async () => {
    const first = await serveHttp(slowApp(0), { ...quiet, port: 0, handleSignals: false });
    running.push(first);
    await expect(serveHttp(slowApp(0), { ...quiet, port: first.address.port, handleSignals: false })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });

  it('shutdown lets an in-flight response finish, closes its keep-alive connection, and stops accepting', async () => {
    const serving = await serveHttp(slowApp(200), { ...quiet, port: 0, handleSignals: false });
    const pending = get(serving.url);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    const stopped = serving.shutdown();
    expect(await pending).toEqual({ status: 200, body: 'done' });
    await stopped;
    // Well before Node's 5 s keep-alive timeout.
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(get(serving.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('shutdown cuts responses still running after shutdownTimeoutMs; the app sees tsgi.signal', async () => {
    let aborted = false;
    const serving = await serveHttp(slowApp(10_000, () => (aborted = true)), {
      ...quiet,
      port: 0,
      handleSignals: false,
      shutdownTimeoutMs: 100,
    });
    const pending = get(serving.url).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await serving.shutdown();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await pending).toMatchObject({ code: 'ECONNRESET' });
    await vi.waitFor(() => expect(aborted).toBe(true));
  });

  it('shuts down gracefully on SIGTERM, then exits with 0', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const before = process.listenerCount('SIGTERM');
    const serving = await serveHttp(slowApp(100), { ...quiet, port: 0 });
    running.push(serving);
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    const pending = get(serving.url);
    await new Promise((resolve) => setTimeout(resolve, 30));
    process.emit('SIGTERM', 'SIGTERM');
    expect(await pending).toEqual({ status: 200, body: 'done' });
    await vi.waitFor(() => expect(exit).toHaveBeenCalledWith(0));
    expect(serving.server.listening).toBe(false);
  });
});
