import { describe, expect, it } from 'vitest';
import { superviseApp, type TimeoutInfo } from '../../../src/cli/cluster/supervise.js';
import { testClient } from '../../../src/testing/index.js';
import type { App, Body } from '../../../src/types.js';

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['hello'];
};

describe('superviseApp without a timeout', () => {
  it('counts requests and keeps the body an array (Content-Length still computed)', async () => {
    const served: number[] = [];
    const supervised = superviseApp(hello, { timeoutMs: 0, onRequest: (n) => served.push(n) });
    const client = testClient(supervised.app);
    const first = await client.get('/');
    expect(first.status).toBe(200);
    expect(first.header('content-length')).toBe('5');
    await client.get('/');
    expect(served).toEqual([1, 2]);
    expect(supervised.served()).toBe(2);
    expect(supervised.inFlight()).toBe(0);
  });

  it('a request is in flight until the server closes its body, and the app\'s close() runs once', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let closes = 0;
    const streaming: App = (_environ, startResponse) => {
      startResponse('200 OK', []);
      return {
        async *[Symbol.asyncIterator]() {
          yield 'a';
          await gate;
          yield 'b';
        },
        close: () => void closes++,
      };
    };
    const supervised = superviseApp(streaming, { timeoutMs: 0 });
    const pending = testClient(supervised.app).get('/');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(supervised.inFlight()).toBe(1);
    release();
    expect((await pending).text()).toBe('ab');
    expect(supervised.inFlight()).toBe(0);
    expect(closes).toBe(1);
  });

  it('an app that throws, or returns no body, ends the request (no leak of in-flight)', async () => {
    const throwing = superviseApp(() => {
      throw new Error('boom');
    }, { timeoutMs: 0 });
    expect((await testClient(throwing.app).get('/')).status).toBe(500);
    expect(throwing.inFlight()).toBe(0);
    const notABody = superviseApp(((_e, startResponse) => {
      startResponse('200 OK', []);
      return 'a string' as unknown as Body;
    }) as App, { timeoutMs: 0 });
    expect((await testClient(notABody.app).get('/')).status).toBe(500);
    expect(notABody.inFlight()).toBe(0);
  });

  it('never changes an array the app reuses', async () => {
    const shared = ['same'];
    const supervised = superviseApp((_e, startResponse) => {
      startResponse('200 OK', []);
      return shared;
    }, { timeoutMs: 0 });
    await testClient(supervised.app).get('/');
    expect(Object.keys(shared)).toEqual(['0']);
  });
});

describe('superviseApp with a timeout', () => {
  const timeouts: TimeoutInfo[] = [];
  const options = { timeoutMs: 150, onTimeout: (info: TimeoutInfo) => timeouts.push(info) };

  it('a promise that never settles gets 504, reported once, and the request ends', async () => {
    timeouts.length = 0;
    const supervised = superviseApp(async () => new Promise<Body>(() => {}), options);
    const response = await testClient(supervised.app).get('/hang?x=1');
    expect(response.status).toBe(504);
    expect(response.text()).toBe('504 Gateway Timeout\n');
    expect(timeouts).toEqual([{ method: 'GET', uri: '/hang?x=1', seconds: 0.15, sent: false, waitingFor: 'response' }]);
    expect(supervised.inFlight()).toBe(0);
  });

  it('replaces a head the app had set when its body then stalls before the first chunk', async () => {
    timeouts.length = 0;
    let closed = 0;
    const supervised = superviseApp((_e, startResponse) => {
      startResponse('200 OK', [['X-App', 'yes']]);
      return {
        async *[Symbol.asyncIterator]() {
          await new Promise(() => {});
          yield 'never';
        },
        close: () => void closed++,
      };
    }, options);
    const response = await testClient(supervised.app).get('/');
    expect(response.status).toBe(504);
    expect(response.header('x-app')).toBeUndefined();
    expect(timeouts[0]?.waitingFor).toBe('body');
    expect(closed).toBe(1);
    expect(supervised.inFlight()).toBe(0);
  });

  it('cuts a response that stalls after its head went out', async () => {
    timeouts.length = 0;
    const supervised = superviseApp((_e, startResponse) => {
      startResponse('200 OK', []);
      return {
        async *[Symbol.asyncIterator]() {
          yield 'first';
          await new Promise(() => {});
        },
      };
    }, options);
    const response = await testClient(supervised.app).get('/');
    expect(response.status).toBe(200);
    expect(response.result.failedAfterHead).toBe(true);
    expect(timeouts[0]?.sent).toBe(true);
  });

  it('a slow but steady stream is not cut: the clock counts each wait, not the whole response', async () => {
    timeouts.length = 0;
    // Four waits of 250 ms: 1 s in all, past the 600 ms timeout, but no single wait comes near it.
    const supervised = superviseApp((_e, startResponse) => {
      startResponse('200 OK', []);
      return {
        async *[Symbol.asyncIterator]() {
          for (let i = 0; i < 4; i++) {
            await new Promise((resolve) => setTimeout(resolve, 250));
            yield String(i);
          }
        },
      };
    }, { ...options, timeoutMs: 600 });
    const response = await testClient(supervised.app).get('/');
    expect(response.text()).toBe('0123');
    expect(timeouts).toEqual([]);
  });

  it('errors of the app are not turned into timeouts', async () => {
    timeouts.length = 0;
    const supervised = superviseApp(async () => {
      throw new Error('plain failure');
    }, options);
    const response = await testClient(supervised.app).get('/');
    expect(response.status).toBe(500);
    expect(timeouts).toEqual([]);
    expect(supervised.inFlight()).toBe(0);
  });
});
