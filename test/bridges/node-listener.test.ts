import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { toNodeListener, type NodeListenerOptions } from '../../src/bridges/node-listener.js';
import type { App, Environ } from '../../src/types.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Starts a plain node:http server running the listener; records each environ the app sees. */
async function start(
  options: NodeListenerOptions & { host?: string } = {},
  app: App = (_environ, startResponse) => {
    startResponse('200 OK', [['Content-Type', 'text/plain']]);
    return ['ok'];
  },
): Promise<{ port: number; calls: Environ[]; log: string[] }> {
  const calls: Environ[] = [];
  const log: string[] = [];
  const server = createServer(
    toNodeListener(
      (environ, startResponse) => {
        calls.push(environ);
        return app(environ, startResponse);
      },
      { errors: { write: (text) => void log.push(text) }, ...options },
    ),
  );
  servers.push(server);
  server.listen(0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, calls, log };
}

/** Sends raw bytes, resolves with the reply (latin-1) once it holds a complete head plus `bodyBytes`. */
function send(port: number, raw: string, host = '127.0.0.1'): Promise<{ text: string; clientPort: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text)?.[1];
      if (end >= 0 && length !== undefined && text.length >= end + 4 + Number(length)) {
        resolve({ text, clientPort: socket.localPort ?? 0 });
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, clientPort: socket.localPort ?? 0 }));
    socket.write(Buffer.from(raw, 'latin1'));
  });
}

describe('toNodeListener', () => {
  it('builds the CGI variables of a request', async () => {
    const { port, calls } = await start();
    const raw =
      'GET /a%2Fb/caf%C3%A9/x%20y?q=%C3%A9&r=1+2 HTTP/1.1\r\nHost: Example.test:8080\r\nUser-Agent: probe\r\n\r\n';
    const { clientPort } = await send(port, raw);
    const environ = calls[0] as Environ;
    expect(environ.REQUEST_METHOD).toBe('GET');
    expect(environ.SCRIPT_NAME).toBe('');
    expect(environ.PATH_INFO).toBe('/a/b/caf\u00c3\u00a9/x y');
    expect(environ.QUERY_STRING).toBe('q=%C3%A9&r=1+2');
    expect(environ.REQUEST_URI).toBe('/a%2Fb/caf%C3%A9/x%20y?q=%C3%A9&r=1+2');
    expect(environ.SERVER_NAME).toBe('Example.test');
    expect(environ.SERVER_PORT).toBe(String(port));
    expect(environ.SERVER_PROTOCOL).toBe('HTTP/1.1');
    expect(environ.SERVER_SOFTWARE).toBe(`tsgi/${VERSION}`);
    expect(environ.GATEWAY_INTERFACE).toBe('CGI/1.1');
    expect(environ.REMOTE_ADDR).toBe('127.0.0.1');
    expect(environ.REMOTE_PORT).toBe(String(clientPort));
    expect(environ.HTTP_HOST).toBe('Example.test:8080');
    expect(environ.HTTP_USER_AGENT).toBe('probe');
    expect('HTTPS' in environ).toBe(false);
    expect('CONTENT_LENGTH' in environ).toBe(false);
    expect(environ['tsgi.url_scheme']).toBe('http');
    expect(environ['tsgi.multithread']).toBe(true);
    expect(environ['tsgi.multiprocess']).toBe(false);
    expect(environ['tsgi.run_once']).toBe(false);
    expect(environ['tsgi.input_terminated']).toBe(false);
  });

  it('decodes escapes that are not UTF-8 and keeps raw header bytes, both as byte strings', async () => {
    const { port, calls } = await start();
    await send(port, 'GET /caf%E9%FF%zz HTTP/1.1\r\nHost: h\r\nX-Name: Jos\xe9 \xff\r\n\r\n');
    expect(calls[0]?.PATH_INFO).toBe('/caf\u00e9\u00ff%zz');
    expect(calls[0]?.HTTP_X_NAME).toBe('Jos\u00e9 \u00ff');
  });

  it('joins repeated headers with ", " and Cookie with "; ", keeping the first name case-insensitively', async () => {
    const { port, calls } = await start();
    await send(
      port,
      'GET / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\naccept: c/d\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n',
    );
    expect(calls[0]?.HTTP_ACCEPT).toBe('a/b, c/d');
    expect(calls[0]?.HTTP_COOKIE).toBe('a=1; b=2');
  });

  it('drops header names with "_" (T32), Proxy (httpoxy), and never sets HTTP_CONTENT_*', async () => {
    const { port, calls } = await start();
    await send(
      port,
      'POST / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded_For: 6.6.6.6\r\nX.Dotted: 1\r\n' +
        'Proxy: http://evil:1\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc',
    );
    const environ = calls[0] as Environ;
    expect(environ.HTTP_X_FORWARDED_FOR).toBe('1.1.1.1');
    expect(Object.keys(environ).filter((key) => key.startsWith('HTTP_')).sort()).toEqual([
      'HTTP_HOST',
      'HTTP_X_FORWARDED_FOR',
    ]);
    expect(environ.CONTENT_TYPE).toBe('text/plain');
    expect(environ.CONTENT_LENGTH).toBe('3');
  });

  it('gives the app the body through tsgi.input, never more than CONTENT_LENGTH', async () => {
    const { port } = await start({}, async (environ, startResponse) => {
      const body = await environ['tsgi.input'].read();
      startResponse('200 OK', []);
      return [`[${Buffer.from(body).toString()}]`];
    });
    const { text } = await send(port, 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello');
    expect(text.endsWith('\r\n\r\n[hello]')).toBe(true);
  });

  it('keeps "::ffff:" on an IPv4 client of a dual-stack socket, as node:http gives it (req.ip under Express)', async (context) => {
    let started: Awaited<ReturnType<typeof start>>;
    try {
      started = await start({ host: '::' });
    } catch {
      context.skip();
      return;
    }
    await send(started.port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n', '127.0.0.1');
    expect(started.calls[0]?.REMOTE_ADDR).toBe('::ffff:127.0.0.1');
  });

  it('uses the local address as SERVER_NAME on an HTTP/1.0 request without Host', async () => {
    const { port, calls } = await start();
    await send(port, 'GET /x HTTP/1.0\r\n\r\n');
    expect(calls[0]?.SERVER_NAME).toBe('127.0.0.1');
    expect(calls[0]?.SERVER_PROTOCOL).toBe('HTTP/1.0');
    expect(calls[0]?.HTTP_HOST).toBeUndefined();
  });

  it('gives OPTIONS * an empty PATH_INFO', async () => {
    const { port, calls } = await start();
    await send(port, 'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(calls[0]?.PATH_INFO).toBe('');
    expect(calls[0]?.REQUEST_URI).toBe('*');
  });

  it('mounts under scriptName: SCRIPT_NAME is the prefix, a path outside it gets 404 without the app', async () => {
    const { port, calls } = await start({ scriptName: '/app/' });
    const inside = await send(port, 'GET /app/x%2Fy?z HTTP/1.1\r\nHost: h\r\n\r\n');
    const outside = await send(port, 'GET /application HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(inside.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(outside.text).toMatch(/^HTTP\/1\.1 404 Not Found\r\n[^]*\r\n\r\n404 Not Found\n$/);
    expect(calls).toHaveLength(1);
    expect([calls[0]?.SCRIPT_NAME, calls[0]?.PATH_INFO, calls[0]?.QUERY_STRING]).toEqual(['/app', '/x/y', 'z']);
  });

  it('refuses a scriptName that is not a path', () => {
    expect(() => toNodeListener(() => [], { scriptName: 'app' })).toThrow(/http: scriptName must be/);
  });

  it('refuses two Host headers with 400, logs it, and does not call the app', async () => {
    const { port, calls, log } = await start();
    const { text } = await send(port, 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(text).toMatch(/\r\nConnection: close\r\n/);
    expect(calls).toHaveLength(0);
    expect(log.join('')).toContain('http: more than one Host header (2)');
  });

  it('sends header values above U+00FF as UTF-8 bytes', async () => {
    const { port } = await start({}, (_environ, startResponse) => {
      startResponse('200 OK', [['X-Text', 'caf\u00e9 \u20ac']]);
      return [];
    });
    const { text } = await send(port, 'GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(text).toContain(`\r\nX-Text: ${Buffer.from('caf\u00e9 \u20ac', 'utf8').toString('latin1')}\r\n`);
  });

  it('works on a plain server: Node sends 100 Continue itself', async () => {
    const { port } = await start({}, async (environ, startResponse) => {
      const body = await environ['tsgi.input'].read();
      startResponse('200 OK', []);
      return [body];
    });
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
      if (text === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write('abc');
    });
    socket.write('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n');
    while (!text.endsWith('\r\n\r\nabc')) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.destroy();
    expect(text.match(/100 Continue/g)).toHaveLength(1);
  });

  it('writes an access log line', async () => {
    const lines: string[] = [];
    const { port } = await start({ accessLog: (line) => void lines.push(line) });
    await send(port, 'GET /log HTTP/1.1\r\nHost: h\r\n\r\n');
    while (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(lines[0]).toMatch(/^127\.0\.0\.1 - - \[.+\] "GET \/log HTTP\/1\.1" 200 2 [0-9.]+ms$/);
  });

  it('sets HTTPS=on and tsgi.url_scheme https over TLS', async () => {
    // A self-signed test certificate committed with the tests (test/fixtures/tls, CN=localhost, 100 years).
    const dir = join(process.cwd(), 'test', 'fixtures', 'tls');
    {
      const calls: Environ[] = [];
      const server = createHttpsServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        toNodeListener((environ, startResponse) => {
          calls.push(environ);
          startResponse('200 OK', []);
          return ['tls'];
        }),
      );
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false }, (res) => {
          let text = '';
          res.on('data', (data: Buffer) => (text += data.toString()));
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end();
      });
      expect(body).toBe('tls');
      expect(calls[0]?.HTTPS).toBe('on');
      expect(calls[0]?.['tsgi.url_scheme']).toBe('https');
    }
  });
  it('on a node:http server left at its defaults, a request at the 1,000 header lines Node keeps gets 431 (its end may be lost)', async () => {
    const { port, calls, log } = await start();
    const fillers = (count: number): string => Array.from({ length: count }, (_, i) => `X-F${i}: 1\r\n`).join('');
    const refused = await send(port, `GET / HTTP/1.1\r\nHost: t\r\n${fillers(998)}X-Last: 1\r\n\r\n`);
    expect(refused.text).toMatch(/^HTTP\/1\.1 431 /);
    expect(calls).toHaveLength(0);
    expect(log.join('')).toMatch(/refused at the limit maxHeaders/);
    const served = await send(port, `GET / HTTP/1.1\r\nHost: t\r\n${fillers(998)}\r\n`);
    expect(served.text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('answers 505 to an HTTP major version other than 1', async () => {
    const { port, calls } = await start();
    expect((await send(port, 'GET / HTTP/2.0\r\nHost: t\r\n\r\n')).text).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    expect(calls).toHaveLength(0);
  });
});
