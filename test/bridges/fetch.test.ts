import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromFetch, toFetch, FETCH_RESPONSE_HIGH_WATER_BYTES, type FetchHandler } from '../../src/bridges/fetch.js';
import { createEnviron } from '../../src/environ/create-environ.js';
import { TsgiError } from '../../src/errors.js';
import { HOP_BY_HOP_HEADERS } from '../../src/response/hop-by-hop.js';
import { runApp, type ResponseSink } from '../../src/response/run-app.js';
import {
  conformanceApp,
  conformanceCases,
  patternBytes,
  type ConformanceClient,
  type ConformanceRequest,
} from '../../src/testing/conformance.js';
import { validator } from '../../src/middleware/validator.js';
import { testClient } from '../../src/testing/test-client.js';
import type { App, Environ, Header } from '../../src/types.js';
import { hono } from '../../examples/hono.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Runs a Fetch handler through fromFetch and the in-process test client, keeping the Request it got. */
function throughFromFetch(handler: FetchHandler, options?: Parameters<typeof fromFetch>[1]) {
  const seen: Request[] = [];
  const app = fromFetch((request, environ) => {
    seen.push(request);
    return handler(request, environ);
  }, options);
  return { client: testClient(app), seen };
}

/** A conformance client over a Fetch handler: the request as a Fetch server would build it (Content-Length set). */
function fetchClient(handler: (request: Request) => Promise<Response>): ConformanceClient {
  return async (request: ConformanceRequest) => {
    const headers = new Headers(request.headers ?? []);
    if (request.body) headers.set('content-length', String(request.body.length));
    const response = await handler(
      new Request(`http://localhost${request.path}`, {
        method: request.method,
        headers,
        ...(request.body ? { body: Buffer.from(request.body) } : {}),
      }),
    );
    return collect(response);
  };
}

async function collect(response: Response): Promise<{ status: number; headers: Header[]; body: Uint8Array }> {
  const headers: Header[] = [];
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') headers.push([name, value]);
  });
  for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
  return { status: response.status, headers, body: new Uint8Array(await response.arrayBuffer()) };
}

/** A ReadableStream yielding `count` chunks of `size` bytes on demand, counting how many it produced. */
function countingStream(count: number, size: number): { stream: ReadableStream<Uint8Array>; produced: () => number; cancelled: () => unknown } {
  let produced = 0;
  let cancelled: unknown = null;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (produced === count) {
          controller.close();
          return;
        }
        controller.enqueue(new Uint8Array(size).fill(produced & 0xff));
        produced++;
      },
      cancel(reason) {
        cancelled = reason ?? 'cancelled';
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, produced: () => produced, cancelled: () => cancelled };
}

/** A sink that takes `delayMs` per chunk (a slow client) and records what it got. */
function slowSink(delayMs: number, onWrite?: (chunk: Uint8Array) => void) {
  const state = { status: 0, headers: [] as Header[], chunks: [] as Uint8Array[], ended: false, aborted: null as unknown };
  const sink: ResponseSink = {
    sendHead: (code, _reason, headers) => {
      state.status = code;
      state.headers = headers;
    },
    write: async (chunk) => {
      state.chunks.push(Uint8Array.from(chunk));
      onWrite?.(chunk);
      await sleep(delayMs);
    },
    end: () => void (state.ended = true),
    abort: (error) => void (state.aborted = error),
  };
  return { sink, state };
}

function environFor(variables: Record<string, string>, options: { body?: AsyncIterable<Uint8Array>; signal?: AbortSignal } = {}): Environ {
  return createEnviron({
    variables: { REQUEST_METHOD: 'GET', SERVER_NAME: 'localhost', SERVER_PORT: '80', HTTP_HOST: 'localhost', ...variables },
    input: options.body ?? null,
    errors: { write: () => undefined },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

describe('fromFetch: the Request a Fetch handler gets', () => {
  it('URL from scheme, Host, PATH_INFO re-encoded as escapes (never decoded twice) and the raw query', async () => {
    const { client, seen } = throughFromFetch(() => new Response('ok'));
    const response = await client.request({
      url: '/caf%C3%A9/a%20b/100%25/x%2Fy?q=%C3%A9&r=a+b',
      headers: { Host: 'example.test:8080' },
    });
    expect(response.status).toBe(200);
    const url = new URL(seen[0]!.url);
    expect(url.origin).toBe('http://example.test:8080');
    // REQUEST_URI agrees with PATH_INFO: the client's own spelling is kept, %2F included.
    expect(url.pathname).toBe('/caf%C3%A9/a%20b/100%25/x%2Fy');
    expect(decodeURIComponent(url.pathname)).toBe('/café/a b/100%/x/y');
    expect(url.search).toBe('?q=%C3%A9&r=a+b');
    expect(new URLSearchParams(url.search).get('q')).toBe('é');
  });

  it('without a matching REQUEST_URI, the PATH_INFO bytes are re-encoded ("%" too: never decoded twice)', async () => {
    const { client, seen } = throughFromFetch(() => new Response('ok'));
    // A rewrite (or a server that sends no REQUEST_URI) leaves only the decoded PATH_INFO to go by.
    await client.request({ url: '/caf%C3%A9/a%20b/100%25/x%2Fy/back\\slash', variables: { REQUEST_URI: '/rewritten' } });
    const url = new URL(seen[0]!.url);
    expect(url.pathname).toBe('/caf%C3%A9/a%20b/100%25/x/y/back%5Cslash');
    expect(decodeURIComponent(url.pathname)).toBe('/café/a b/100%/x/y/back\\slash');
  });

  it('raw bytes and "#" in QUERY_STRING become escapes; existing escapes are kept', async () => {
    const { client, seen } = throughFromFetch(() => new Response('ok'));
    await client.request({ url: '/q', variables: { QUERY_STRING: 'a=\u00c3\u00a9&b=%41#&c=x y' } });
    expect(new URL(seen[0]!.url).search).toBe('?a=%C3%A9&b=%41%23&c=x%20y');
  });

  it('the path is below the mount point unless includeScriptName; https from the environ', async () => {
    const below = throughFromFetch(() => new Response('ok'));
    const mounted = testClient(fromFetch((request) => new Response(request.url)), { scriptName: '/cgi-bin/app.cgi' });
    expect((await mounted.get('/users/1')).text()).toBe('http://localhost/users/1');
    const full = testClient(fromFetch((request) => new Response(request.url), { includeScriptName: true }), {
      scriptName: '/cgi-bin/app.cgi',
    });
    expect((await full.get('/users/1')).text()).toBe('http://localhost/cgi-bin/app.cgi/users/1');
    await below.client.request({ url: '/', variables: { HTTPS: 'on' } });
    expect(below.seen[0]!.url).toBe('https://localhost/');
  });

  it('without Host the URL comes from SERVER_NAME and a non-default SERVER_PORT', async () => {
    const urls: string[] = [];
    const app = fromFetch((request) => {
      urls.push(request.url);
      return new Response('ok');
    });
    const { sink } = slowSink(0);
    await runApp(app, createEnviron({ variables: { SERVER_NAME: 'srv.test', SERVER_PORT: '8443', PATH_INFO: '/p' }, errors: { write: () => undefined } }), sink);
    await runApp(app, createEnviron({ variables: { SERVER_NAME: 'srv.test', SERVER_PORT: '80', PATH_INFO: '' }, errors: { write: () => undefined } }), sink);
    expect(urls).toEqual(['http://srv.test:8443/p', 'http://srv.test/']);
  });

  it('T33: a Host with userinfo never becomes the URL host: 400 before the handler runs', async () => {
    const { client, seen } = throughFromFetch(() => new Response('ok'));
    const response = await client.get('/', { headers: { Host: 'a.com@evil.com' } });
    expect(response.status).toBe(400);
    expect(seen).toHaveLength(0);
    expect(response.errors).toMatch(/fetch: bad Host header/);
  });

  it('headers from HTTP_* plus Content-Type and Content-Length; method; Cookie and Authorization', async () => {
    let body = '';
    const { client, seen } = throughFromFetch(async (request) => {
      body = await request.text();
      return new Response('ok');
    });
    await client.post('/form', 'a=1&b=2', {
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Custom-Thing': 'one two', Cookie: 'x=1', Authorization: 'Basic dTpw' },
    });
    const request = seen[0]!;
    expect(request.method).toBe('POST');
    expect(request.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(request.headers.get('content-length')).toBe('7');
    expect(request.headers.get('x-custom-thing')).toBe('one two');
    expect(request.headers.get('cookie')).toBe('x=1');
    expect(request.headers.get('authorization')).toBe('Basic dTpw');
    expect(request.headers.get('host')).toBe('localhost');
    expect(body).toBe('a=1&b=2');
  });

  it('GET and HEAD have no body; a chunked upload (no CONTENT_LENGTH) has one', async () => {
    const bodies: Array<string | null> = [];
    const { client } = throughFromFetch(async (request) => {
      bodies.push(request.body ? await request.text() : null);
      return new Response('ok');
    });
    await client.get('/');
    await client.request({ method: 'HEAD', url: '/' });
    await client.request({ method: 'PUT', url: '/', body: 'streamed', chunked: true });
    expect(bodies).toEqual([null, null, 'streamed']);
  });

  it('CONNECT and TRACE, which the Fetch API refuses, get 501', async () => {
    const { client, seen } = throughFromFetch(() => new Response('ok'));
    expect((await client.request({ method: 'TRACE', url: '/' })).status).toBe(501);
    expect(seen).toHaveLength(0);
  });

  it('the environ is the second argument (Hono: c.env)', async () => {
    const app = fromFetch((_request, environ) => new Response(String(environ.REMOTE_ADDR)));
    expect((await testClient(app).get('/')).text()).toBe('127.0.0.1');
  });

  it('a truncated body fails the handler’s read with the InputError', async () => {
    let failure: unknown = null;
    const app = fromFetch(async (request) => {
      try {
        await request.arrayBuffer();
      } catch (error) {
        failure = error;
      }
      return new Response('done');
    });
    const body = (async function* () {
      yield new Uint8Array(3);
    })();
    const { sink } = slowSink(0);
    await runApp(app, environFor({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '10' }, { body }), sink);
    expect(String(failure)).toMatch(/body ended after 3 of 10 bytes/);
  });
});

describe('fromFetch: the Response going back', () => {
  it('status, the standard reason when statusText is empty, or the handler’s own', async () => {
    const { client } = throughFromFetch((request) =>
      new URL(request.url).pathname === '/own' ? new Response('x', { status: 418, statusText: 'Short And Stout' }) : new Response(null, { status: 404 }),
    );
    const missing = await client.get('/');
    expect([missing.status, missing.reason]).toEqual([404, 'Not Found']);
    const own = await client.get('/own');
    expect([own.status, own.reason, own.text()]).toEqual([418, 'Short And Stout', 'x']);
  });

  it('T38: several Set-Cookie stay separate headers; hop-by-hop headers are dropped', async () => {
    const { client } = throughFromFetch(() => {
      const headers = new Headers({ 'Content-Type': 'text/plain', Connection: 'close', 'Transfer-Encoding': 'chunked' });
      headers.append('Set-Cookie', 'a=1; Path=/');
      headers.append('Set-Cookie', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly');
      return new Response('ok', { headers });
    });
    const response = await client.get('/');
    expect(response.headerAll('set-cookie')).toEqual(['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; HttpOnly']);
    expect(response.header('content-type')).toBe('text/plain');
    expect(response.header('connection')).toBeUndefined();
    expect(response.header('transfer-encoding')).toBeUndefined();
  });

  it('drops every field a response may not carry (response/hop-by-hop.ts), nothing else', async () => {
    const { client } = throughFromFetch(() => {
      const headers = new Headers({ 'Content-Type': 'text/plain', 'Proxy-Status': 'tsgi' });
      for (const name of HOP_BY_HOP_HEADERS) if (name !== 'transfer-encoding') headers.append(name, 'x');
      return new Response('ok', { headers });
    });
    const response = await client.get('/');
    for (const name of HOP_BY_HOP_HEADERS) expect(response.header(name)).toBeUndefined();
    expect([response.header('content-type'), response.header('proxy-status'), response.text()]).toEqual(['text/plain', 'tsgi', 'ok']);
  });

  it('T38: binary bodies are byte-identical both ways (all 256 byte values, 1 MiB)', async () => {
    const { client } = throughFromFetch(async (request) => new Response(await request.arrayBuffer(), { headers: { 'Content-Type': 'application/octet-stream' } }));
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect([...(await client.post('/', all)).body]).toEqual([...all]);
    const big = patternBytes(1024 * 1024 + 3);
    const echoed = await client.post('/', big);
    expect(echoed.body.length).toBe(big.length);
    expect(sha256(echoed.body)).toBe(sha256(big));
  });

  it('a Content-Length from the Response is kept and enforced', async () => {
    const { client } = throughFromFetch(() => new Response('hello', { headers: { 'Content-Length': '5' } }));
    const response = await client.get('/');
    expect(response.header('content-length')).toBe('5');
    expect(response.text()).toBe('hello');
  });

  it('a handler that throws, or returns no Response, becomes a 500', async () => {
    const thrown = await testClient(fromFetch(() => {
      throw new Error('on purpose');
    })).get('/');
    expect(thrown.status).toBe(500);
    expect(thrown.errors).toMatch(/on purpose/);
    const notResponse = await testClient(fromFetch(() => 'text' as unknown as Response)).get('/');
    expect(notResponse.status).toBe(500);
    expect(notResponse.errors).toMatch(/fetch: the handler must return a Response/);
  });

  it('HEAD: the body is not read, and its stream is cancelled', async () => {
    const source = countingStream(10, 100);
    const response = await testClient(fromFetch(() => new Response(source.stream))).request({ method: 'HEAD', url: '/' });
    expect(response.status).toBe(200);
    expect(response.body.length).toBe(0);
    expect(source.produced()).toBe(0);
    expect(source.cancelled()).not.toBeNull();
  });
});

describe('fromFetch: streaming and backpressure', () => {
  it('a slow client paces the Response body: the producer stays a chunk or two ahead', async () => {
    const source = countingStream(20, 1024);
    let maxLead = 0;
    let written = 0;
    const { sink, state } = slowSink(5, () => {
      written++;
      maxLead = Math.max(maxLead, source.produced() - written);
    });
    const result = await runApp(fromFetch(() => new Response(source.stream)), environFor({ PATH_INFO: '/' }), sink);
    expect(result.ok).toBe(true);
    expect(state.chunks).toHaveLength(20);
    expect(maxLead).toBeLessThanOrEqual(2);
  });

  it('a slow handler paces the request body: tsgi.input is read only as the handler reads', async () => {
    let produced = 0;
    const body = (async function* () {
      for (let i = 0; i < 20; i++) {
        produced++;
        yield new Uint8Array(1000).fill(i);
      }
    })();
    let maxLead = 0;
    const app = fromFetch(async (request) => {
      const reader = request.body!.getReader();
      let consumed = 0;
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        consumed++;
        bytes += value.length;
        maxLead = Math.max(maxLead, produced - consumed);
        await sleep(3);
      }
      return new Response(String(bytes));
    });
    const { sink, state } = slowSink(0);
    await runApp(app, environFor({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '20000' }, { body }), sink);
    expect(Buffer.concat(state.chunks).toString()).toBe('20000');
    expect(maxLead).toBeLessThanOrEqual(2);
  });

  it('the client going away cancels a Response body that waits, and aborts request.signal', async () => {
    const controller = new AbortController();
    let cancelled: unknown = null;
    let requestSignal: AbortSignal | null = null;
    const app = fromFetch((request) => {
      requestSignal = request.signal;
      const stream = new ReadableStream<Uint8Array>({
        start(streamController) {
          streamController.enqueue(new TextEncoder().encode('first'));
          // ... and then nothing: a server-sent-events stream waiting for its next event.
        },
        cancel(reason) {
          cancelled = reason;
        },
      });
      return new Response(stream);
    });
    const { sink, state } = slowSink(0, () => setTimeout(() => controller.abort(new Error('client gone')), 20));
    const result = await runApp(app, environFor({ PATH_INFO: '/' }, { signal: controller.signal }), sink);
    expect(Buffer.concat(state.chunks).toString()).toBe('first');
    expect(result.aborted).toBe(true);
    expect(String(cancelled)).toMatch(/client gone/);
    expect(requestSignal!.aborted).toBe(true);
  });

  it('a body that errors mid-way cuts the response after its head', async () => {
    let pulls = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          // Erroring a stream drops what is queued: the first chunk must be read before it breaks.
          if (pulls++ === 0) controller.enqueue(new Uint8Array([1, 2, 3]));
          else controller.error(new Error('producer broke'));
        },
      },
      { highWaterMark: 0 },
    );
    const { sink, state } = slowSink(0);
    const result = await runApp(fromFetch(() => new Response(stream)), environFor({ PATH_INFO: '/' }), sink);
    expect(result.failedAfterHead).toBe(true);
    expect([...state.chunks[0]!]).toEqual([1, 2, 3]);
    expect(String(state.aborted)).toMatch(/producer broke/);
  });
});

describe('toFetch: a tsgi app as a Fetch handler', () => {
  it('the environ from the Request: CGI variables as byte strings, headers, mount point', async () => {
    let seen: Environ | null = null;
    const handler = toFetch(
      (environ, startResponse) => {
        seen = environ;
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return ['ok'];
      },
      { scriptName: '/app', variables: () => ({ REMOTE_ADDR: '192.0.2.1' }) },
    );
    const response = await handler(
      new Request('https://example.test:8443/app/caf%C3%A9/x?y=%C3%A9&z=a+b', { headers: { 'X-Thing': 'one', Proxy: 'http://evil', Authorization: 'Basic x' } }),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
    const environ = seen as unknown as Environ;
    expect(environ.SCRIPT_NAME).toBe('/app');
    expect(environ.PATH_INFO).toBe('/caf\u00c3\u00a9/x');
    expect(environ.QUERY_STRING).toBe('y=%C3%A9&z=a+b');
    expect(environ.REQUEST_URI).toBe('/app/caf%C3%A9/x?y=%C3%A9&z=a+b');
    expect([environ.SERVER_NAME, environ.SERVER_PORT, environ.HTTP_HOST]).toEqual(['example.test', '8443', 'example.test:8443']);
    expect(environ['tsgi.url_scheme']).toBe('https');
    expect(environ.HTTP_X_THING).toBe('one');
    expect(environ.HTTP_PROXY).toBeUndefined();
    expect(environ.HTTP_AUTHORIZATION).toBe('Basic x');
    expect(environ.REMOTE_ADDR).toBe('192.0.2.1');
    expect(environ.CONTENT_LENGTH).toBeUndefined();
  });

  it('scriptName follows the one mount rule: "/" is the root, a trailing "/" goes, a prefix without "/" throws', async () => {
    const seen: string[] = [];
    const app: App = (environ, startResponse) => {
      seen.push(`${environ.SCRIPT_NAME}|${environ.PATH_INFO}`);
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [];
    };
    await toFetch(app, { scriptName: '/' })(new Request('http://h/x'));
    await toFetch(app, { scriptName: '/app//' })(new Request('http://h/app/x'));
    expect(seen).toEqual(['|/x', '/app|/x']);
    expect(() => toFetch(app, { scriptName: 'app' })).toThrow(TsgiError);
    expect(() => toFetch(app, { scriptName: 'app' })).toThrow('fetch: scriptName must be "" or a path starting with "/" ("app")');
  });

  it('drops every field a response may not carry (response/hop-by-hop.ts), nothing else', async () => {
    const handler = toFetch((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain'], ['Proxy-Status', 'tsgi'], ...[...HOP_BY_HOP_HEADERS].map((name): Header => [name.toUpperCase(), 'x'])]);
      return ['ok'];
    });
    const response = await handler(new Request('http://h/'));
    for (const name of HOP_BY_HOP_HEADERS) expect(response.headers.get(name)).toBeNull();
    expect([response.headers.get('proxy-status'), await response.text()]).toEqual(['tsgi', 'ok']);
  });

  it('a path outside the mount point is a 404 that never reaches the app', async () => {
    let calls = 0;
    const handler = toFetch(() => {
      calls++;
      return [];
    }, { scriptName: '/app' });
    expect((await handler(new Request('http://h/application'))).status).toBe(404);
    expect(calls).toBe(0);
  });

  it('T38: several Set-Cookie headers stay separate; binary bodies are byte-identical', async () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const handler = toFetch((_environ, startResponse) => {
      startResponse('200 OK', [
        ['Content-Type', 'application/octet-stream'],
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT'],
      ]);
      return [all];
    });
    const response = await handler(new Request('http://h/'));
    expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
    expect([...new Uint8Array(await response.arrayBuffer())]).toEqual([...all]);
  });

  it('the reason phrase becomes statusText; HEAD and 304 have a null body; hop-by-hop headers are dropped', async () => {
    const app: App = (environ, startResponse) => {
      const code = environ.PATH_INFO.slice(1);
      startResponse(`${code} Custom Reason`, code === '304' ? [] : [['Content-Type', 'text/plain'], ['Connection', 'close']]);
      return code === '304' ? [] : ['body'];
    };
    const handler = toFetch(app);
    const ok = await handler(new Request('http://h/200'));
    expect([ok.status, ok.statusText, ok.headers.get('connection')]).toEqual([200, 'Custom Reason', null]);
    const head = await handler(new Request('http://h/200', { method: 'HEAD' }));
    expect(head.body).toBeNull();
    expect(head.headers.get('content-length')).toBe('4');
    const notModified = await handler(new Request('http://h/304'));
    expect([notModified.status, notModified.body]).toEqual([304, null]);
  });

  it('an app that fails before its headers gets a plain 500; after them, the body stream errors', async () => {
    const errors: string[] = [];
    const handler = toFetch(
      async function* failing(environ: Environ, startResponse: Parameters<App>[1]) {
        void environ;
        void startResponse;
      } as unknown as App,
      { errors: { write: (text) => void errors.push(text) } },
    );
    expect((await handler(new Request('http://h/'))).status).toBe(500);
    const late = toFetch((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield 'part';
        throw new Error('broke after the head');
      })();
    }, { errors: { write: (text) => void errors.push(text) } });
    const response = await late(new Request('http://h/'));
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow(/broke after the head/);
  });

  it('a status a Response can’t carry (1xx) becomes a 500', async () => {
    const handler = toFetch((_environ, startResponse) => {
      startResponse('102 Processing', []);
      return [];
    }, { errors: { write: () => undefined } });
    expect((await handler(new Request('http://h/'))).status).toBe(500);
  });

  it('the request body streams in as the app reads it, with or without Content-Length', async () => {
    const app: App = async (environ, startResponse) => {
      const body = await environ['tsgi.input'].read();
      startResponse('200 OK', [['Content-Type', 'application/json']]);
      return [JSON.stringify({ bytes: body.length, length: environ.CONTENT_LENGTH ?? null, terminated: environ['tsgi.input_terminated'] })];
    };
    const handler = toFetch(app);
    const fixed = await handler(new Request('http://h/', { method: 'POST', body: 'abcdef', headers: { 'Content-Length': '6' } }));
    expect(await fixed.json()).toEqual({ bytes: 6, length: '6', terminated: false });
    const source = countingStream(4, 1000);
    const chunked = await handler(new Request('http://h/', { method: 'POST', body: source.stream, duplex: 'half' } as RequestInit));
    expect(await chunked.json()).toEqual({ bytes: 4000, length: null, terminated: true });
  });

  it('a slow app paces the request body: the producer stays a chunk or two ahead', async () => {
    const source = countingStream(20, 1000);
    let maxLead = 0;
    const app: App = async (environ, startResponse) => {
      let consumed = 0;
      for await (const chunk of environ['tsgi.input']) {
        void chunk;
        consumed++;
        maxLead = Math.max(maxLead, source.produced() - consumed);
        await sleep(3);
      }
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [String(consumed)];
    };
    const response = await toFetch(app)(new Request('http://h/', { method: 'POST', body: source.stream, duplex: 'half' } as RequestInit));
    expect(await response.text()).toBe('20');
    expect(maxLead).toBeLessThanOrEqual(2);
  });

  it('a slow consumer paces the app: it runs at most the high-water mark ahead of the reader', async () => {
    const CHUNK = 16 * 1024;
    const TOTAL = 64;
    let produced = 0;
    const app: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return (function* () {
        for (let i = 0; i < TOTAL; i++) {
          produced++;
          yield new Uint8Array(CHUNK).fill(i);
        }
      })();
    };
    const response = await toFetch(app)(new Request('http://h/'));
    const reader = response.body!.getReader();
    let read = 0;
    let maxLead = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      read += value.length;
      maxLead = Math.max(maxLead, produced * CHUNK - read);
      await sleep(2);
    }
    expect(read).toBe(TOTAL * CHUNK);
    expect(maxLead).toBeLessThanOrEqual(FETCH_RESPONSE_HIGH_WATER_BYTES + 2 * CHUNK);
  });

  it('request.signal and a cancelled Response body both fire tsgi.signal and close the body', async () => {
    const events: string[] = [];
    const app: App = (environ, startResponse) => {
      environ['tsgi.signal'].addEventListener('abort', () => events.push(`abort: ${(environ['tsgi.signal'].reason as Error).message}`));
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      const body = (async function* () {
        for (let i = 0; ; i++) {
          yield `tick ${i}\n`;
          await sleep(5);
        }
      })();
      return Object.assign(body, { close: () => void events.push('close') });
    };
    const handler = toFetch(app);

    const viaSignal = new AbortController();
    const first = await handler(new Request('http://h/', { signal: viaSignal.signal }));
    const reader = first.body!.getReader();
    await reader.read();
    viaSignal.abort();
    await reader.read().catch(() => undefined);
    await sleep(30);
    expect(events).toEqual(['abort: fetch: the request was aborted', 'close']);

    events.length = 0;
    const second = await handler(new Request('http://h/'));
    const secondReader = second.body!.getReader();
    await secondReader.read();
    await secondReader.cancel(new Error('consumer left'));
    await sleep(30);
    expect(events).toEqual(['abort: fetch: the response body was cancelled', 'close']);
  });

  it('a request aborted before any response rejects', async () => {
    const controller = new AbortController();
    const app: App = async (environ) => {
      await environ['tsgi.input'].read();
      throw new Error('unreachable');
    };
    const body = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => undefined) });
    const pending = toFetch(app, { errors: { write: () => undefined } })(
      new Request('http://h/', { method: 'POST', body, duplex: 'half', signal: controller.signal } as RequestInit),
    );
    controller.abort();
    await expect(pending).rejects.toThrow(/aborted/);
  });
});

// Not under validator(): its F15 wants a Content-Type on every 302, and Hono's c.redirect() sends none (the
// Fetch bridge passes the app's headers as they are rather than inventing one).
describe('a Hono app (examples/hono.ts) through fromFetch', () => {
  const client = testClient(fromFetch(hono.fetch), { scriptName: '/cgi-bin/framework-hono.cgi' });

  it('routing with a path parameter, JSON out', async () => {
    const response = await client.get('/users/42');
    expect(response.status).toBe(200);
    expect(response.header('content-type')).toMatch(/^application\/json/);
    expect(response.json()).toEqual({ id: '42', framework: 'hono' });
    expect((await client.get('/')).text()).toBe('Hello from hono!\n');
  });

  it('JSON and urlencoded bodies are parsed', async () => {
    const json = await client.post('/json', JSON.stringify({ name: 'Ada' }), { headers: { 'Content-Type': 'application/json' } });
    expect(json.json()).toEqual({ hello: 'Ada', contentType: 'application/json', contentLength: '14' });
    const form = await client.post('/form', 'name=Ada+Lovelace&lang=en', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(form.json()).toEqual({ name: 'Ada Lovelace', lang: 'en' });
  });

  it('a redirect, two cookies, a 404 and an error', async () => {
    const redirect = await client.get('/redirect');
    expect([redirect.status, redirect.header('location')]).toEqual([302, '/']);
    const cookies = await client.get('/cookies', { headers: { Cookie: 'x=1' } });
    expect(cookies.headerAll('set-cookie')).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    expect(cookies.text()).toBe('cookie: x=1\n');
    expect((await client.get('/nope')).status).toBe(404);
    const boom = await client.get('/boom');
    expect(boom.status).toBe(500);
    expect(boom.text()).not.toMatch(/on purpose/);
    expect(boom.errors).toMatch(/hono: thrown on purpose/);
  });

  it('hono/streaming: the chunks reach the transport one by one, as they are written', async () => {
    const arrivals: number[] = [];
    const started = Date.now();
    const { sink, state } = slowSink(0, () => arrivals.push(Date.now() - started));
    const result = await runApp(fromFetch(hono.fetch), environFor({ PATH_INFO: '/stream' }), sink);
    expect(result.ok).toBe(true);
    expect(Buffer.concat(state.chunks).toString()).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
    expect(state.chunks.length).toBeGreaterThanOrEqual(5);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(200);
  });

  it('binary out and an echoed binary body are byte-identical; a late reader gets the whole body', async () => {
    const binary = await client.get('/binary');
    expect(binary.body.length).toBe(70_000);
    expect(binary.body.every((byte, k) => byte === (k & 0xff))).toBe(true);
    const body = patternBytes(300_000);
    expect(sha256((await client.post('/echo', body, { headers: { 'Content-Type': 'application/octet-stream' } })).body)).toBe(sha256(body));
    const late = await client.post('/late', body, { headers: { 'Content-Type': 'application/octet-stream' } });
    expect(late.json()).toEqual({ bytes: body.length, sha256: sha256(body) });
  });
});

describe('conformance suite through toFetch(conformanceApp)', () => {
  const send = fetchClient(toFetch(conformanceApp, { errors: { write: () => undefined } }));
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      testCase.check(await send(testCase.request), { scriptName: '', transport: 'fetch' });
    });
  }
});

describe('conformance suite through fromFetch(toFetch(conformanceApp)), validator() on both sides', () => {
  let inner = '';
  const client = testClient(validator()(fromFetch(toFetch(validator()(conformanceApp), { errors: { write: (text) => void (inner += text) } }))));
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      inner = '';
      const { request } = testCase;
      const response = await client.request({
        method: request.method,
        url: request.path,
        ...(request.headers ? { headers: request.headers } : {}),
        ...(request.body ? { body: request.body } : {}),
      });
      testCase.check(response, { scriptName: '', transport: 'fetch round trip' });
      expect(response.errors).not.toMatch(/tsgi\.lint/);
      expect(inner).not.toMatch(/tsgi\.lint/);
    });
  }
});
