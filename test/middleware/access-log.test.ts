import { describe, expect, it } from 'vitest';
import { accessLog, escapeLogText, formatAccessLogLine, formatLogDate } from '../../src/middleware/access-log.js';
import { RequestError } from '../../src/errors.js';
import { testClient } from '../../src/testing/test-client.js';
import type { App, Body } from '../../src/types.js';

/** 2000-10-10 20:55:36 UTC, which is 13:55:36 at -0700. */
const DATE = new Date(Date.UTC(2000, 9, 10, 20, 55, 36));
const AT = '[10/Oct/2000:13:55:36 -0700]';

function logged(app: App): { app: App; lines: string[] } {
  const lines: string[] = [];
  return { app: accessLog(app, { write: (line) => void lines.push(line), now: () => DATE, utcOffsetMinutes: -420 }), lines };
}

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['hello ', 'world'];
};

describe('formatting', () => {
  it('formats dates as Apache %t, with the offset given or the local one', () => {
    expect(formatLogDate(DATE, -420)).toBe(AT);
    expect(formatLogDate(DATE, 0)).toBe('[10/Oct/2000:20:55:36 +0000]');
    expect(formatLogDate(DATE, 330)).toBe('[11/Oct/2000:02:25:36 +0530]');
    expect(formatLogDate(new Date(Date.UTC(2024, 0, 1, 0, 0, 5)), -90)).toBe('[31/Dec/2023:22:30:05 -0130]');
    expect(formatLogDate(DATE)).toMatch(/^\[\d\d\/Oct\/2000:\d\d:55:36 [+-]\d{4}\]$/);
  });

  it('escapes quotes, backslashes, control bytes and high bytes', () => {
    expect(escapeLogText('plain /path?a=1&b=%22')).toBe('plain /path?a=1&b=%22');
    expect(escapeLogText('say "hi"\\')).toBe('say \\"hi\\"\\\\');
    expect(escapeLogText('a\nb\rc\td\x00e\x1bf\x7f')).toBe('a\\nb\\rc\\td\\x00e\\x1bf\\x7f');
    // Byte strings (one char per byte) and, beyond U+00FF, UTF-8 bytes.
    expect(escapeLogText('caf\u00c3\u00a9')).toBe('caf\\xc3\\xa9');
    expect(escapeLogText('\u20ac')).toBe('\\xe2\\x82\\xac');
  });

  it('writes "-" for missing fields and for zero bytes', () => {
    expect(formatAccessLogLine({ date: DATE, utcOffsetMinutes: -420, requestLine: 'GET / HTTP/1.0', status: 304, bytes: 0 })).toBe(
      `- - - ${AT} "GET / HTTP/1.0" 304 - "-" "-"\n`,
    );
  });
});

describe('accessLog', () => {
  it('writes one Combined Log Format line per request', async () => {
    const { app, lines } = logged(hello);
    const response = await testClient(app).get('/a/b?x=1', {
      headers: { Referer: 'http://example.com/start', 'User-Agent': 'curl/8.5.0' },
      variables: { REMOTE_ADDR: '192.0.2.7', REMOTE_USER: 'frank' },
    });
    expect(response.text()).toBe('hello world');
    expect(lines).toEqual([`192.0.2.7 - frank ${AT} "GET /a/b?x=1 HTTP/1.1" 200 11 "http://example.com/start" "curl/8.5.0"\n`]);
  });

  it('keeps an array body an array (the server computes Content-Length) and copies it', async () => {
    const shared = ['abc'];
    let seen: Body | undefined;
    const inner: App = (_environ, startResponse) => {
      startResponse('200 OK', []);
      return shared;
    };
    const lines: string[] = [];
    const wrapped = accessLog(inner, { write: (line) => void lines.push(line), now: () => DATE, utcOffsetMinutes: -420 });
    const response = await testClient(async (environ, startResponse) => (seen = await wrapped(environ, startResponse))).get('/');
    expect(Array.isArray(seen)).toBe(true);
    expect(seen).not.toBe(shared);
    expect((shared as { close?: unknown }).close).toBeUndefined();
    expect(response.header('content-length')).toBe('3');
    expect(lines[0]).toContain('"GET / HTTP/1.1" 200 3 ');
  });

  it('counts streamed and write() bytes, UTF-8 for strings, and logs after close()', async () => {
    const events: string[] = [];
    const app: App = async (_environ, startResponse) => {
      const write = startResponse('201 Created', []);
      await write('é');
      return {
        async *[Symbol.asyncIterator]() {
          yield new Uint8Array(5);
          yield '';
          yield 'xyz';
        },
        close() {
          events.push('close');
        },
      };
    };
    const wrapped = accessLog(app, { write: (line) => void events.push(line), now: () => DATE, utcOffsetMinutes: -420 });
    const response = await testClient(wrapped).post('/upload', 'data');
    expect(response.status).toBe(201);
    expect(events).toEqual(['close', `127.0.0.1 - - ${AT} "POST /upload HTTP/1.1" 201 10 "-" "-"\n`]);
  });

  it('logs what was really sent: nothing for HEAD and 304, at most the declared Content-Length', async () => {
    const { app, lines } = logged((environ, startResponse) => {
      if (environ.PATH_INFO === '/304') {
        startResponse('304 Not Modified', []);
        return [];
      }
      startResponse('200 OK', [['Content-Length', '4']]);
      return (function* () {
        yield 'abcdefgh';
      })();
    });
    const client = testClient(app);
    await client.request({ method: 'HEAD', url: '/h' });
    await client.get('/304');
    const long = await client.get('/long');
    expect(long.text()).toBe('abcd');
    expect(lines).toEqual([
      `127.0.0.1 - - ${AT} "HEAD /h HTTP/1.1" 200 - "-" "-"\n`,
      `127.0.0.1 - - ${AT} "GET /304 HTTP/1.1" 304 - "-" "-"\n`,
      `127.0.0.1 - - ${AT} "GET /long HTTP/1.1" 200 4 "-" "-"\n`,
    ]);
  });

  it("logs the server's error page when the app or its body fails before the head, and re-throws", async () => {
    const { app, lines } = logged((environ, startResponse) => {
      startResponse('200 OK', []);
      if (environ.PATH_INFO === '/throw') throw new Error('boom');
      if (environ.PATH_INFO === '/refuse') throw new RequestError('bad input', 422);
      return (function* () {
        throw new Error('body boom');
      })();
    });
    const client = testClient(app);
    const thrown = await client.get('/throw');
    const refused = await client.get('/refuse');
    const body = await client.get('/body');
    expect([thrown.status, refused.status, body.status]).toEqual([500, 422, 500]);
    // "500 Internal Server Error\n" is 26 bytes, "422 Unprocessable Content\n" 26 too.
    expect(lines).toEqual([
      `127.0.0.1 - - ${AT} "GET /throw HTTP/1.1" 500 ${thrown.body.length} "-" "-"\n`,
      `127.0.0.1 - - ${AT} "GET /refuse HTTP/1.1" 422 ${refused.body.length} "-" "-"\n`,
      `127.0.0.1 - - ${AT} "GET /body HTTP/1.1" 500 ${body.body.length} "-" "-"\n`,
    ]);
    expect(thrown.body.length).toBeGreaterThan(0);
  });

  it('keeps the status of a response cut after its head, with the bytes sent so far', async () => {
    const { app, lines } = logged((_environ, startResponse) => {
      startResponse('200 OK', []);
      return (function* () {
        yield 'part';
        throw new Error('late');
      })();
    });
    const response = await testClient(app).get('/cut');
    expect(response.result.failedAfterHead).toBe(true);
    expect(lines).toEqual([`127.0.0.1 - - ${AT} "GET /cut HTTP/1.1" 200 4 "-" "-"\n`]);
  });

  it('uses excInfo replacements, and SCRIPT_NAME + PATH_INFO + QUERY_STRING without REQUEST_URI', async () => {
    const { app, lines } = logged((_environ, startResponse) => {
      startResponse('200 OK', []);
      startResponse('503 Service Unavailable', [], new Error('changed my mind'));
      return ['later'];
    });
    await testClient(app).get('/x', {
      variables: { REQUEST_URI: '', SCRIPT_NAME: '/app', PATH_INFO: '/caf\u00c3\u00a9 "q"', QUERY_STRING: 'a=1' },
    });
    expect(lines).toEqual([`127.0.0.1 - - ${AT} "GET /app/caf\\xc3\\xa9 \\"q\\"?a=1 HTTP/1.1" 503 5 "-" "-"\n`]);
  });

  it('escapes what a client controls, so a line cannot be forged', async () => {
    const { app, lines } = logged(hello);
    await testClient(app).get('/', { headers: { 'User-Agent': 'x" 200 1 "y', Referer: 'a\\b' } });
    expect(lines).toEqual([`127.0.0.1 - - ${AT} "GET / HTTP/1.1" 200 11 "a\\\\b" "x\\" 200 1 \\"y"\n`]);
  });

  it('a failing log never breaks the response', async () => {
    const app = accessLog(hello, {
      write: () => {
        throw new Error('disk full');
      },
    });
    const response = await testClient(app).get('/');
    expect(response.text()).toBe('hello world');
    expect(response.errors).toContain('tsgi.access-log: write failed (disk full)');
  });

  it('logs a request the client abandoned once, after close()', async () => {
    const controller = new AbortController();
    const events: string[] = [];
    const app = accessLog(
      (_environ, startResponse) => {
        startResponse('200 OK', []);
        return {
          async *[Symbol.asyncIterator]() {
            yield 'first';
            controller.abort();
            yield 'second';
          },
          close() {
            events.push('close');
          },
        };
      },
      { write: (line) => void events.push(line), now: () => DATE, utcOffsetMinutes: -420 },
    );
    const response = await testClient(app).get('/gone', { signal: controller.signal });
    expect(response.result.aborted).toBe(true);
    expect(events).toHaveLength(2);
    expect(events[0]).toBe('close');
    expect(events[1]).toMatch(/^127\.0\.0\.1 - - \S+ \S+ "GET \/gone HTTP\/1\.1" 200 (5|11) "-" "-"\n$/);
  });
});

describe('accessLog, format "json"', () => {
  it('writes one JSON object a line: time, remote, method, uri, status, bytes, duration, pid', async () => {
    const lines: string[] = [];
    const app = accessLog(hello, { write: (line) => void lines.push(line), now: () => DATE, format: 'json' });
    const client = testClient(app);
    await client.get('/a/b?x=1', { headers: { 'User-Agent': 'ua "quoted"\n' } });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('}\n')).toBe(true);
    expect(lines[0]?.split('\n')).toHaveLength(2);
    const entry = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(entry).toMatchObject({
      time: '2000-10-10T20:55:36.000Z',
      method: 'GET',
      uri: '/a/b?x=1',
      status: 200,
      bytes: 11,
      pid: process.pid,
      referer: null,
    });
    expect(entry.user_agent).toBe('ua "quoted"\n');
    expect(typeof entry.duration_ms).toBe('number');
    expect(entry.duration_ms as number).toBeGreaterThanOrEqual(0);
    expect(entry).toHaveProperty('remote');
  });

  it('logs the error page status of a failing app, and refuses an unknown format', async () => {
    const lines: string[] = [];
    const failing: App = () => {
      throw new RequestError('bad', 400);
    };
    await testClient(accessLog(failing, { write: (line) => void lines.push(line), format: 'json' })).get('/');
    expect(JSON.parse(lines[0] as string)).toMatchObject({ status: 400, method: 'GET' });
    expect(() => accessLog(hello, { write: () => {}, format: 'xml' as never })).toThrow(/combined.*json/);
  });
});
