import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServerOptions } from '../../src/servers/http.js';
import type { App, Environ } from '../../src/types.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Started {
  port: number;
  calls: Environ[];
  log: string[];
}

async function start(app: App, options: HttpServerOptions = {}): Promise<Started> {
  const calls: Environ[] = [];
  const log: string[] = [];
  const server = createHttpServer(
    (environ, startResponse) => {
      calls.push(environ);
      return app(environ, startResponse);
    },
    { errors: { write: (text) => void log.push(text) }, ...options },
  );
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, calls, log };
}

const hello: App = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['hello'];
};

interface Exchange {
  /** Everything received, latin-1. */
  text: string;
  /** True when the server closed the connection. */
  closed: boolean;
}

/** Sends raw bytes and collects the reply until `until(text)` holds, the server closes, or `timeoutMs` passes. */
function exchange(
  port: number,
  raw: string | Buffer,
  options: { until?: (text: string) => boolean; timeoutMs?: number } = {},
): Promise<Exchange> {
  const { until, timeoutMs = 2000 } = options;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      if (until?.(text)) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
  });
}

interface ParsedResponse {
  status: number;
  headers: [string, string][];
  body: string;
  header(name: string): string | undefined;
  all(name: string): string[];
}

/**
 * Splits a byte stream into HTTP/1.x responses. `bodyless[i]` marks the i-th final response as having no body
 * (a reply to HEAD). A response with neither Content-Length nor chunking takes the rest of the stream.
 */
function parseResponses(text: string, bodyless: boolean[] = []): { responses: ParsedResponse[]; rest: string } {
  const responses: ParsedResponse[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    const headers = lines.slice(1).map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon), line.slice(colon + 1).trim()];
    });
    const all = (name: string): string[] => headers.filter(([key]) => key.toLowerCase() === name).map(([, v]) => v);
    let after = rest.slice(end + 4);
    let body = '';
    const noBody = status < 200 || status === 204 || status === 304 || bodyless[responses.filter((r) => r.status >= 200).length];
    if (!noBody) {
      const length = all('content-length')[0];
      if (all('transfer-encoding')[0]?.toLowerCase() === 'chunked') {
        for (;;) {
          const lineEnd = after.indexOf('\r\n');
          if (lineEnd < 0) return { responses, rest };
          const size = parseInt(after.slice(0, lineEnd), 16);
          if (after.length < lineEnd + 2 + size + 2) return { responses, rest };
          body += after.slice(lineEnd + 2, lineEnd + 2 + size);
          after = after.slice(lineEnd + 2 + size + 2);
          if (size === 0) break;
        }
      } else if (length !== undefined) {
        if (after.length < Number(length)) return { responses, rest };
        body = after.slice(0, Number(length));
        after = after.slice(Number(length));
      } else {
        body = after;
        after = '';
      }
    }
    responses.push({ status, headers, body, header: (name) => all(name.toLowerCase())[0], all: (name) => all(name.toLowerCase()) });
    rest = after;
  }
  return { responses, rest };
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: test\r\n${extra}\r\n`;

describe('createHttpServer', () => {
  it('serves a request over a real socket, with keep-alive', async () => {
    const { port } = await start(hello);
    const { text, closed } = await exchange(port, get('/') + get('/again'), {
      until: (t) => parseResponses(t).responses.length === 2,
    });
    const { responses } = parseResponses(text);
    expect(closed).toBe(false);
    expect(responses.map((r) => [r.status, r.body])).toEqual([
      [200, 'hello'],
      [200, 'hello'],
    ]);
    expect(responses[0]?.header('content-length')).toBe('5');
  });

  it('G1: HEAD sends no body, and the next pipelined request still parses', async () => {
    const { port } = await start((environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield `0123456789 ${environ.REQUEST_METHOD}`;
      })();
    });
    const raw = `HEAD / HTTP/1.1\r\nHost: test\r\n\r\n${get('/next')}`;
    const { text } = await exchange(port, raw, { until: (t) => parseResponses(t, [true]).responses.length === 2 });
    const { responses, rest } = parseResponses(text, [true]);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    expect(responses[0]?.body).toBe('');
    expect(responses[1]?.body).toBe('0123456789 GET');
    expect(rest).toBe('');
  });

  it('G1: HEAD on an array body keeps its computed Content-Length but sends no bytes', async () => {
    const { port } = await start(hello);
    const raw = `HEAD / HTTP/1.1\r\nHost: test\r\n\r\n${get('/')}`;
    const { text } = await exchange(port, raw, { until: (t) => parseResponses(t, [true]).responses.length === 2 });
    const { responses } = parseResponses(text, [true]);
    expect(responses[0]?.header('content-length')).toBe('5');
    expect(responses[1]?.body).toBe('hello');
  });

  it('G2: 204 and 304 carry no body and no Transfer-Encoding; 204 no Content-Length', async () => {
    const { port } = await start((environ, startResponse) => {
      const status = environ.PATH_INFO === '/204' ? '204 No Content' : '304 Not Modified';
      startResponse(status, [['Content-Length', '4'], ['Transfer-Encoding', 'chunked']]);
      return (async function* () {
        yield 'body';
      })();
    });
    const { text } = await exchange(port, get('/204') + get('/304') + get('/204'), {
      until: (t) => parseResponses(t).responses.length === 3,
    });
    const { responses, rest } = parseResponses(text);
    expect(responses.map((r) => r.status)).toEqual([204, 304, 204]);
    for (const response of responses) {
      expect(response.header('transfer-encoding')).toBeUndefined();
      expect(response.body).toBe('');
    }
    expect(responses[0]?.header('content-length')).toBeUndefined();
    expect(rest).toBe('');
    expect(text).not.toContain('body');
  });

  it('G3: a body shorter than its Content-Length closes the connection and is logged', async () => {
    const { port, log } = await start((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Length', '10']]);
      return (async function* () {
        yield '12345';
      })();
    });
    const { text, closed } = await exchange(port, get('/') + get('/'), { timeoutMs: 3000 });
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n12345$/);
    expect(log.join('')).toContain('app sent 5 of its Content-Length (10) bytes');
  });

  it('G3: a body longer than its Content-Length is cut to it, and the connection stays usable', async () => {
    const { port, log } = await start((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Length', '10']]);
      return ['0123456789', 'abcde'];
    });
    const { text, closed } = await exchange(port, get('/') + get('/'), {
      until: (t) => parseResponses(t).responses.length === 2,
    });
    const { responses, rest } = parseResponses(text);
    expect(closed).toBe(false);
    expect(responses.map((r) => r.body)).toEqual(['0123456789', '0123456789']);
    expect(rest).toBe('');
    expect(log.join('')).toContain('more than its Content-Length (10)');
  });

  it('G4: an array body gets a computed Content-Length', async () => {
    const { port } = await start((_environ, startResponse) => {
      startResponse('200 OK', []);
      return ['ab', 'cd', new Uint8Array([0x65])];
    });
    const { text } = await exchange(port, get('/'), { until: (t) => parseResponses(t).responses.length === 1 });
    const response = parseResponses(text).responses[0];
    expect(response?.header('content-length')).toBe('5');
    expect(response?.header('transfer-encoding')).toBeUndefined();
    expect(response?.body).toBe('abcde');
  });

  const streamed: App = (_environ, startResponse) => {
    startResponse('200 OK', []);
    return (async function* () {
      yield 'ab';
      yield 'cd';
    })();
  };

  it('G4: a streamed body is chunked on HTTP/1.1', async () => {
    const { port } = await start(streamed);
    const { text, closed } = await exchange(port, get('/'), { until: (t) => t.endsWith('0\r\n\r\n') });
    const response = parseResponses(text).responses[0];
    expect(closed).toBe(false);
    expect(response?.header('transfer-encoding')).toBe('chunked');
    expect(response?.header('content-length')).toBeUndefined();
    expect(response?.body).toBe('abcd');
  });

  it('G4: a streamed body is close-delimited on HTTP/1.0', async () => {
    const { port } = await start(streamed);
    const { text, closed } = await exchange(port, 'GET / HTTP/1.0\r\nHost: test\r\n\r\n');
    expect(closed).toBe(true);
    const response = parseResponses(text).responses[0];
    expect(text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
    expect(response?.header('transfer-encoding')).toBeUndefined();
    expect(response?.header('content-length')).toBeUndefined();
    expect(response?.body).toBe('abcd');
  });

  describe('G5/T34: bad framing is refused with 400 and never reaches the app', () => {
    const cases: Record<string, string> = {
      'Content-Length with Transfer-Encoding':
        'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'two equal Content-Length': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
      'two different Content-Length':
        'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      'Content-Length 5,5': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5,5\r\n\r\nhello',
      'Content-Length -1': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n',
      'Content-Length +5': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: +5\r\n\r\nhello',
      'Content-Length 0x10': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 0x10\r\n\r\n',
      'huge Content-Length': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 99999999999999999999999\r\n\r\n',
      'empty Content-Length': 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: \r\n\r\n',
      'Transfer-Encoding gzip (not chunked last)': 'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\nxxxx',
      'two Transfer-Encoding chunked':
        'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    };
    for (const [name, raw] of Object.entries(cases)) {
      it(name, async () => {
        const { port, calls } = await start(hello);
        const { text, closed } = await exchange(port, raw);
        expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(text).toMatch(/\r\nConnection: close\r\n/i);
        expect(closed).toBe(true);
        expect(calls).toHaveLength(0);
      });
    }

    it('a bad request pipelined after a good one is answered 400 after the good one, in order', async () => {
      const { port, calls } = await start(async (_environ, startResponse) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        startResponse('200 OK', []);
        return ['first'];
      });
      const raw = `${get('/')}POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`;
      const { text, closed } = await exchange(port, raw);
      const { responses } = parseResponses(text);
      expect(closed).toBe(true);
      expect(responses.map((r) => [r.status, r.body])).toEqual([
        [200, 'first'],
        [400, ''],
      ]);
      expect(calls).toHaveLength(1);
    });

    it('a chunked body that turns malformed while the app reads it fails the read with a 400: the client gets the 400, then the close', async () => {
      let readError: unknown;
      const { port, log } = await start(async (environ, startResponse) => {
        try {
          await environ['tsgi.input'].read();
        } catch (error) {
          readError = error;
          throw error;
        }
        startResponse('200 OK', []);
        return ['late'];
      });
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (data: Buffer) => (text += data.toString('latin1')));
      socket.write('POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write('zz\r\nnot hex\r\n');
      await once(socket, 'close');
      const { responses } = parseResponses(text);
      expect(responses.map((r) => [r.status, r.header('connection')])).toEqual([[400, 'close']]);
      expect((readError as Error).name).toBe('InputError');
      expect(log.join('')).toMatch(/HPE_INVALID_CHUNK_SIZE/);
    });

    it('a chunk size over 64 bits gets a 400 too, where the app would otherwise wait for it', async () => {
      const { port } = await start(async (environ, startResponse) => {
        await environ['tsgi.input'].read();
        startResponse('200 OK', []);
        return ['read'];
      });
      const raw = 'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\nabc';
      const { text, closed } = await exchange(port, raw);
      expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(closed).toBe(true);
    });

    it('a chunked body that turns malformed after the response head went out cuts the connection and fires tsgi.signal', async () => {
      let readError: unknown;
      let signalled = false;
      const { port } = await start(async (environ, startResponse) => {
        environ['tsgi.signal'].addEventListener('abort', () => (signalled = true));
        const write = startResponse('200 OK', []);
        await write('started');
        try {
          await environ['tsgi.input'].read();
        } catch (error) {
          readError = error;
        }
        return ['late'];
      });
      const socket = connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (data: Buffer) => (text += data.toString('latin1')));
      socket.write('POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write('zz\r\nnot hex\r\n');
      await once(socket, 'close');
      await waitFor(() => readError !== undefined);
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).not.toMatch(/late/);
      expect(signalled).toBe(true);
      expect((readError as Error).name).toBe('AbortError');
    });

    it('a coding besides chunked gets 501 and the connection closes', async () => {
      const { port, calls } = await start(hello);
      const raw = 'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n';
      const { text, closed } = await exchange(port, raw);
      expect(text).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n/);
      expect(closed).toBe(true);
      expect(calls).toHaveLength(0);
    });

    it('a parse error is logged to the error stream', async () => {
      const { port, log } = await start(hello);
      await exchange(port, 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n');
      expect(log.join('')).toMatch(/http: bad request refused \(HPE_/);
    });
  });

  describe('G6/T33: malformed heads are refused with 400 and never reach the app', () => {
    const cases: Record<string, string> = {
      'obs-fold': 'GET / HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n',
      'whitespace before ":"': 'GET / HTTP/1.1\r\nHost: test\r\nX-A : b\r\n\r\n',
      'no Host on HTTP/1.1': 'GET / HTTP/1.1\r\nX-A: b\r\n\r\n',
      'two Host headers': 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n',
      'Host with userinfo (T33)': 'GET / HTTP/1.1\r\nHost: a.com@evil.com\r\n\r\n',
      'absolute-form target naming another host (T33)': 'GET http://evil.com/ HTTP/1.1\r\nHost: a.com\r\n\r\n',
      'bare LF line ends': 'GET / HTTP/1.1\nHost: test\n\n',
      'CR inside a header value': 'GET / HTTP/1.1\r\nHost: test\r\nX-A: a\rb\r\n\r\n',
    };
    for (const [name, raw] of Object.entries(cases)) {
      it(name, async () => {
        const { port, calls } = await start(hello);
        const { text } = await exchange(port, raw, { until: (t) => t.includes('\r\n\r\n') });
        expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(calls).toHaveLength(0);
      });
    }

    it('an absolute-form target matching Host is served, with the path only in REQUEST_URI', async () => {
      const { port, calls } = await start(hello);
      const { text } = await exchange(port, 'GET http://A.com/p%20q?x=1 HTTP/1.1\r\nHost: a.com\r\n\r\n', {
        until: (t) => parseResponses(t).responses.length === 1,
      });
      expect(parseResponses(text).responses[0]?.status).toBe(200);
      expect(calls[0]?.PATH_INFO).toBe('/p q');
      expect(calls[0]?.REQUEST_URI).toBe('/p%20q?x=1');
      expect(calls[0]?.QUERY_STRING).toBe('x=1');
    });
  });

  it('G7: several Set-Cookie go out as separate lines', async () => {
    const { port } = await start((_environ, startResponse) => {
      startResponse('200 OK', [
        ['Set-Cookie', 'a=1; Path=/'],
        ['Set-Cookie', 'b=2, c=3'],
        ['X-Multi', 'x'],
        ['X-Multi', 'y'],
      ]);
      return [];
    });
    const { text } = await exchange(port, get('/'), { until: (t) => parseResponses(t).responses.length === 1 });
    expect(text).toContain('\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2, c=3\r\n');
    expect(parseResponses(text).responses[0]?.all('x-multi')).toEqual(['x', 'y']);
  });

  describe('G8: Expect: 100-continue', () => {
    it('sends 100 Continue only when the app reads the body', async () => {
      let reading = false;
      const { port } = await start(async (environ, startResponse) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        reading = true;
        const body = await environ['tsgi.input'].read();
        startResponse('200 OK', []);
        return [`got ${Buffer.from(body).toString()}`];
      });
      const socket = connect(port, '127.0.0.1');
      let text = '';
      let readingWhenContinued: boolean | undefined;
      socket.on('data', (data: Buffer) => {
        text += data.toString('latin1');
        if (readingWhenContinued === undefined && text.includes('100 Continue\r\n\r\n')) {
          readingWhenContinued = reading;
          socket.write('hello');
        }
      });
      socket.write('POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
      await waitFor(() => parseResponses(text).responses.some((r) => r.status === 200));
      socket.destroy();
      expect(text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')).toBe(true);
      expect(readingWhenContinued).toBe(true);
      expect(parseResponses(text).responses.at(-1)?.body).toBe('got hello');
    });

    it('sends no 100 Continue when the app answers without reading', async () => {
      const { port } = await start((_environ, startResponse) => {
        startResponse('413 Content Too Large', []);
        return ['no'];
      });
      const { text, closed } = await exchange(
        port,
        'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
      );
      expect(text).not.toContain('100 Continue');
      // The client may still send the body it held back: Node closes rather than parse it as a request.
      expect(closed).toBe(true);
      expect(text).toMatch(/\r\nConnection: close\r\n/);
      expect(text.startsWith('HTTP/1.1 413 Content Too Large\r\n')).toBe(true);
    });
  });

  it('G9: Date is present on 2xx and 4xx responses', async () => {
    const { port } = await start((environ, startResponse) => {
      startResponse(environ.PATH_INFO === '/missing' ? '404 Not Found' : '200 OK', []);
      return ['x'];
    });
    const { text } = await exchange(port, get('/') + get('/missing'), {
      until: (t) => parseResponses(t).responses.length === 2,
    });
    const { responses } = parseResponses(text);
    expect(responses.map((r) => r.status)).toEqual([200, 404]);
    for (const response of responses) {
      expect(Number.isNaN(Date.parse(response.header('date') ?? ''))).toBe(false);
    }
  });

  it('G10/T36: CR/LF in a header value gives a 500, with nothing split onto the wire', async () => {
    const { port, log } = await start((_environ, startResponse) => {
      startResponse('200 OK', [['X-A', 'a\r\nSet-Cookie: evil=1']]);
      return ['body'];
    });
    const { text } = await exchange(port, get('/'), { until: (t) => parseResponses(t).responses.length === 1 });
    expect(parseResponses(text).responses[0]?.status).toBe(500);
    expect(text).not.toContain('evil');
    expect(log.join('')).toContain('header value holds a control character');
  });

  it('a control character Node refuses to send gives a clean 500 too', async () => {
    const { port, log } = await start((_environ, startResponse) => {
      startResponse('200 OK', [['X-A', 'a\u0001b']]);
      return ['body'];
    });
    const { text } = await exchange(port, get('/') + get('/'), {
      until: (t) => parseResponses(t).responses.length === 2,
    });
    const { responses } = parseResponses(text);
    expect(responses.map((r) => [r.status, r.body])).toEqual([
      [500, '500 Internal Server Error\n'],
      [500, '500 Internal Server Error\n'],
    ]);
    expect(log.join('')).toContain('header value holds a control character (X-A');
  });

  it('strips hop-by-hop headers the app sets', async () => {
    const { port } = await start((_environ, startResponse) => {
      startResponse('200 OK', [
        ['Connection', 'close'],
        ['Keep-Alive', 'timeout=99'],
        ['Upgrade', 'h2c'],
        ['Proxy-Authenticate', 'x'],
        ['TE', 'trailers'],
        ['Trailer', 'X-T'],
        ['X-Kept', 'yes'],
      ]);
      return ['ok'];
    });
    const { text, closed } = await exchange(port, get('/') + get('/'), {
      until: (t) => parseResponses(t).responses.length === 2,
    });
    const response = parseResponses(text).responses[0];
    expect(closed).toBe(false);
    expect(response?.header('x-kept')).toBe('yes');
    for (const name of ['upgrade', 'proxy-authenticate', 'te', 'trailer']) expect(response?.header(name)).toBeUndefined();
    expect(response?.header('connection')).toBe('keep-alive');
    expect(response?.header('keep-alive')).not.toBe('timeout=99');
  });

  it('drains a body the app read only in part, so the next request on the connection parses', async () => {
    const { port } = await start(async (environ, startResponse) => {
      const first = await environ['tsgi.input'].read(3);
      startResponse('200 OK', []);
      return [`first ${Buffer.from(first).toString()}`];
    });
    const big = 'x'.repeat(1024 * 1024);
    const raw = `POST / HTTP/1.1\r\nHost: test\r\nContent-Length: ${big.length}\r\n\r\n${big}${get('/')}`;
    const { text } = await exchange(port, raw, { until: (t) => parseResponses(t).responses.length === 2, timeoutMs: 5000 });
    expect(parseResponses(text).responses.map((r) => r.body)).toEqual(['first xxx', 'first ']);
  });

  it('reads a chunked upload to its end (tsgi.input_terminated)', async () => {
    const { port, calls } = await start(async (environ, startResponse) => {
      const body = await environ['tsgi.input'].read();
      startResponse('200 OK', []);
      return [body];
    });
    const raw = 'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n';
    const { text } = await exchange(port, raw, { until: (t) => parseResponses(t).responses.length === 1 });
    expect(parseResponses(text).responses[0]?.body).toBe('abcde');
    expect(calls[0]?.['tsgi.input_terminated']).toBe(true);
    expect(calls[0]?.CONTENT_LENGTH).toBeUndefined();
  });

  it('tsgi.signal fires and the body is closed when the client disconnects mid-response', async () => {
    let closedBody = false;
    let signalFired = false;
    let produced = 0;
    const { port } = await start((environ, startResponse) => {
      environ['tsgi.signal'].addEventListener('abort', () => (signalFired = true));
      startResponse('200 OK', []);
      const chunk = new Uint8Array(16 * 1024).fill(0x61);
      const body = (async function* () {
        for (;;) {
          produced++;
          yield chunk;
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      return Object.assign(body, { close: () => void (closedBody = true) });
    });
    const socket = connect(port, '127.0.0.1');
    socket.write(get('/'));
    await once(socket, 'data');
    socket.destroy();
    await waitFor(() => closedBody && signalFired);
    const after = produced;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(produced).toBe(after);
  });

  it('streams 50 MB with backpressure: the generator pauses while the client does not read', async () => {
    const CHUNK_BYTES = 64 * 1024;
    const TOTAL_BYTES = 50 * 1024 * 1024;
    let produced = 0;
    const { port } = await start((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Length', String(TOTAL_BYTES)]]);
      return (async function* () {
        const chunk = new Uint8Array(CHUNK_BYTES).fill(0x62);
        for (let sent = 0; sent < TOTAL_BYTES; sent += CHUNK_BYTES) {
          produced++;
          yield chunk;
        }
      })();
    });
    const socket: Socket = connect(port, '127.0.0.1');
    let received = 0;
    socket.on('data', (data: Buffer) => {
      received += data.length;
    });
    socket.write(get('/'));
    await waitFor(() => received > 0);
    socket.pause();
    // Let the socket buffers fill, then check that production has stopped.
    let previous = -1;
    await waitFor(async () => {
      const now = produced;
      await new Promise((resolve) => setTimeout(resolve, 150));
      const stable = now === previous && produced === now;
      previous = produced;
      return stable;
    }, 10_000);
    expect(produced * CHUNK_BYTES).toBeLessThan(TOTAL_BYTES / 4);
    expect(received).toBeLessThan(TOTAL_BYTES / 4);
    socket.resume();
    await waitFor(() => received >= TOTAL_BYTES, 30_000);
    socket.destroy();
    expect(produced).toBe(TOTAL_BYTES / CHUNK_BYTES);
  });

  it('answers a head over maxHeaderSize with 431', async () => {
    const { port, calls } = await start(hello, { maxHeaderSize: 1024 });
    const { text } = await exchange(port, get('/', `X-Big: ${'y'.repeat(4096)}\r\n`));
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    expect(calls).toHaveLength(0);
  });

  it('answers a head that arrives slower than headersTimeoutMs with 408', async () => {
    const { port, calls } = await start(hello, { headersTimeoutMs: 200, requestTimeoutMs: 1000 });
    const started = Date.now();
    const { text, closed } = await exchange(port, 'GET / HTTP/1.1\r\nHost: test\r\n', { timeoutMs: 3000 });
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(calls).toHaveLength(0);
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs', async () => {
    const { port } = await start(hello, { keepAliveTimeoutMs: 100 });
    const started = Date.now();
    const { text, closed } = await exchange(port, get('/'), { timeoutMs: 3000 });
    expect(parseResponses(text).responses[0]?.body).toBe('hello');
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('writes an access log line per request', async () => {
    const lines: string[] = [];
    const { port } = await start(hello, { accessLog: (line) => void lines.push(line) });
    await exchange(port, get('/x?y=1'), { until: (t) => parseResponses(t).responses.length === 1 });
    await waitFor(() => lines.length === 1);
    expect(lines[0]).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/x\?y=1 HTTP\/1\.1" 200 5 [0-9.]+ms$/);
  });

  it('mounts the app under scriptName and gives 404 outside it', async () => {
    const { port, calls } = await start(hello, { scriptName: '/app' });
    const { text } = await exchange(port, get('/app/x') + get('/apple') + get('/app'), {
      until: (t) => parseResponses(t).responses.length === 3,
    });
    expect(parseResponses(text).responses.map((r) => r.status)).toEqual([200, 404, 200]);
    expect(calls.map((environ) => [environ.SCRIPT_NAME, environ.PATH_INFO])).toEqual([
      ['/app', '/x'],
      ['/app', ''],
    ]);
  });
});

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
