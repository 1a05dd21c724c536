import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { percentDecodeToByteString } from '../../src/environ/byte-policy.js';
import { encodeScgiHeader, encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { listenOn } from '../../src/servers/listen.js';
import { createScgiServer, type ScgiServer, type ScgiServerOptions } from '../../src/servers/scgi.js';
import { conformanceApp, conformanceCases } from '../../src/testing/conformance.js';
import type { App } from '../../src/types.js';
import { collect, delay, exchange, open, parseReply } from './raw-socket.js';

const servers: ScgiServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function start(app: App, options: ScgiServerOptions = {}): Promise<{ server: ScgiServer; port: number; log: string[] }> {
  const log: string[] = [];
  const server = createScgiServer(app, { errors: { write: (text) => void log.push(text) }, ...options });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { server, port: (server.address() as AddressInfo).port, log };
}

/** nginx's scgi_params for a GET of `uri` (nginx adds CONTENT_LENGTH itself, first). */
function nginxVars(uri: string, extra: Record<string, string> = {}): Record<string, string> {
  const path = uri.split('?')[0] as string;
  return {
    REQUEST_METHOD: 'GET',
    REQUEST_URI: uri,
    QUERY_STRING: uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '',
    CONTENT_TYPE: '',
    DOCUMENT_URI: percentDecodeToByteString(path),
    DOCUMENT_ROOT: '/srv/htdocs',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_SCHEME: 'http',
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '50000',
    SERVER_PORT: '80',
    SERVER_NAME: 'localhost',
    HTTP_HOST: 'localhost',
    ...extra,
  };
}

const text = (body: string): App => (_e, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [body]);
const where: App = (environ, s) => (s('200 OK', [['Content-Type', 'text/plain']]), [`${environ.SCRIPT_NAME}|${environ.PATH_INFO}|${environ['tsgi.url_scheme']}`]);

describe('SCGI: requests and responses (D1, D4, D5)', () => {
  it('D1: the spec example: a 27-byte body; D5: a CGI-style answer, byte-exact, then the connection closes', async () => {
    const { port } = await start(async (environ, s) => {
      const body = Buffer.from(await environ['tsgi.input'].read()).toString();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${environ.REQUEST_METHOD} ${environ.REQUEST_URI} ${environ.CONTENT_LENGTH} ${body}`];
    });
    const reply = await exchange(port, encodeScgiRequest({ REQUEST_METHOD: 'POST', REQUEST_URI: '/deepthought' }, 'What is the answer to life?'));
    const body = 'POST /deepthought 27 What is the answer to life?';
    expect(reply.bytes.toString('latin1')).toBe(`Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(reply.ending).toBe('end');
  });

  it('D4: the app gets exactly CONTENT_LENGTH bytes, even when more follow', async () => {
    const { port } = await start(async (environ, s) => {
      const chunks: Uint8Array[] = [];
      for await (const chunk of environ['tsgi.input']) chunks.push(chunk);
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [Buffer.concat(chunks)];
    });
    const request = encodeScgiRequest({ REQUEST_METHOD: 'POST' }, 'exactly');
    expect(parseReply(await exchange(port, request, Buffer.from('and more'))).body.toString()).toBe('exactly');
  });

  it('a header and body split at every byte still arrive whole', async () => {
    const { port } = await start(async (environ, s) => {
      const body = Buffer.from(await environ['tsgi.input'].read()).toString();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${environ.HTTP_X_A}:${body}`];
    });
    const request = encodeScgiRequest({ REQUEST_METHOD: 'POST', HTTP_X_A: 'split' }, 'body!');
    const reply = await exchange(port, ...[...request].map((byte) => Uint8Array.of(byte)));
    expect(parseReply(reply).body.toString()).toBe('split:body!');
  });

  it('D3: CONTENT_LENGTH "0" or "" means no body: the environ has none, the input is empty', async () => {
    const { port } = await start(async (environ, s) => {
      const body = await environ['tsgi.input'].read();
      s('200 OK', [['Content-Type', 'text/plain']]);
      return [`${String(environ.CONTENT_LENGTH)}|${String(environ.CONTENT_TYPE)}|${body.length}`];
    });
    const empty = encodeScgiHeader([['CONTENT_LENGTH', ''], ['SCGI', '1'], ['CONTENT_TYPE', '']]);
    expect(parseReply(await exchange(port, empty)).body.toString()).toBe('undefined|undefined|0');
    expect(parseReply(await exchange(port, encodeScgiRequest({}))).body.toString()).toBe('0|undefined|0');
  });

  it('a large streamed response and HEAD (no body, same headers)', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { port } = await start((_e, s) => {
      s('201 Created', [['Content-Type', 'application/octet-stream'], ['X-Y', 'z']]);
      return (async function* () {
        for (let at = 0; at < big.length; at += 65536) yield big.subarray(at, at + 65536);
      })();
    });
    const got = parseReply(await exchange(port, encodeScgiRequest({ REQUEST_METHOD: 'GET' })));
    expect(got.status).toBe(201);
    expect(got.body.equals(big)).toBe(true);
    const head = parseReply(await exchange(port, encodeScgiRequest({ REQUEST_METHOD: 'HEAD' })));
    expect(head.head).toBe('Status: 201 Created\r\nContent-Type: application/octet-stream\r\nX-Y: z\r\n\r\n');
    expect(head.body.length).toBe(0);
  });

  it('an app that throws gets a 500 page, the details go to the log', async () => {
    const { port, log } = await start(() => {
      throw new Error('boom');
    });
    const reply = parseReply(await exchange(port, encodeScgiRequest({})));
    expect(reply.status).toBe(500);
    expect(reply.body.toString()).toBe('500 Internal Server Error\n');
    expect(log.join('')).toContain('boom');
  });

  it('a failure after the head resets the connection (the web server sees a failed response, not a short one)', async () => {
    const { port, log } = await start((_e, s) => {
      s('200 OK', [['Content-Type', 'text/plain']]);
      return (async function* () {
        yield 'partial';
        await delay(20);
        throw new Error('late failure');
      })();
    });
    const reply = await exchange(port, encodeScgiRequest({}));
    expect(reply.ending).toBe('ECONNRESET');
    expect(log.join('')).toContain('late failure');
  });
});

describe('SCGI: paths and scheme (D6)', () => {
  it('D6: nginx sends no SCRIPT_NAME/PATH_INFO: PATH_INFO is the decoded request path', async () => {
    const { port } = await start(where);
    const reply = await exchange(port, encodeScgiRequest(nginxVars('/app/a%20b/caf%C3%A9?x=1')));
    // The app's string goes out as UTF-8; its chars are the latin-1 byte string of the path.
    expect(parseReply(reply).body.toString('utf8')).toBe('|/app/a b/caf\u00c3\u00a9|http');
  });

  it('D6: under a mount the path is re-split; SCRIPT_NAME/PATH_INFO sent by the server are kept without one', async () => {
    const mounted = await start(where, { mount: '/app' });
    expect(parseReply(await exchange(mounted.port, encodeScgiRequest(nginxVars('/app/users/42')))).body.toString()).toBe('/app|/users/42|http');
    const plain = await start(where);
    const apache = encodeScgiRequest({ ...nginxVars('/app/users/42'), SCRIPT_NAME: '/app', PATH_INFO: '/users/42' });
    expect(parseReply(await exchange(plain.port, apache)).body.toString()).toBe('/app|/users/42|http');
  });

  it('the scheme comes from HTTPS or REQUEST_SCHEME', async () => {
    const { port } = await start(where);
    expect(parseReply(await exchange(port, encodeScgiRequest(nginxVars('/', { HTTPS: 'on' })))).body.toString()).toBe('|/|https');
    expect(parseReply(await exchange(port, encodeScgiRequest(nginxVars('/', { REQUEST_SCHEME: 'https' })))).body.toString()).toBe('|/|https');
  });
});

describe('SCGI: malformed input and limits (D2, D3)', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a leading zero', Buffer.from('024:CONTENT_LENGTH\x000\x00SCGI\x001\x00,', 'latin1'), /leading zero/],
    ['CONTENT_LENGTH not first', encodeScgiHeader([['SCGI', '1'], ['CONTENT_LENGTH', '0']]), /first header must be CONTENT_LENGTH/],
    ['no SCGI=1', encodeScgiHeader([['CONTENT_LENGTH', '0']]), /SCGI header must be "1"/],
    ['no ","', Buffer.from('24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;', 'latin1'), /must end with ","/],
    ['not a netstring (an HTTP request)', Buffer.from('GET / HTTP/1.1\r\n\r\n'), /decimal digits \(0x47\)/],
  ];
  for (const [what, bytes, message] of cases) {
    it(`${what}: logged, answered 400, closed`, async () => {
      const { port, log } = await start(text('never'));
      const reply = await exchange(port, bytes);
      expect(parseReply(reply).status).toBe(400);
      expect(reply.ending).toBe('end');
      expect(log.join('')).toMatch(message);
    });
  }

  it('a header over maxHeaderBytes is refused from its length alone', async () => {
    const { port, log } = await start(text('never'), { maxHeaderBytes: 100 });
    const socket = await open(port);
    const reply = collect(socket);
    socket.write('101:');
    expect(parseReply(await reply).status).toBe(400);
    expect(log.join('')).toContain('scgi: header exceeds maxHeaderBytes (100)');
  });

  it('a body over maxBodyBytes: 413 without running the app', async () => {
    let ran = false;
    const { port } = await start(() => ((ran = true), []), { maxBodyBytes: 10 });
    const reply = await exchange(port, encodeScgiRequest({ REQUEST_METHOD: 'POST' }, 'x'.repeat(11)));
    expect(parseReply(reply).status).toBe(413);
    expect(ran).toBe(false);
  });

  it('a body cut short: the read fails with an InputError -> 400', async () => {
    const { port, log } = await start(async (environ, s) => {
      await environ['tsgi.input'].read();
      s('200 OK', []);
      return [];
    });
    const socket = await open(port);
    const reply = collect(socket);
    socket.end(encodeScgiRequest({ REQUEST_METHOD: 'POST' }, 'abcdefghij').subarray(0, -4));
    expect(parseReply(await reply).status).toBe(400);
    expect(log.join('')).toContain('body ended after 6 of 10 bytes');
  });

  it('a connection closed inside the header: logged, nothing thrown', async () => {
    const { port, log } = await start(text('never'));
    const socket = await open(port);
    const reply = collect(socket);
    socket.end('70:CONTENT_LENGTH');
    expect((await reply).bytes.length).toBe(0);
    await delay(20);
    expect(log.join('')).toContain('closed inside the request head');
  });

  it('a CONTENT_LENGTH shorter than the Content-Length header (nginx with scgi_request_buffering off): 502, app not run', async () => {
    let ran = false;
    const { port, log } = await start(() => ((ran = true), []));
    const request = encodeScgiHeader([['CONTENT_LENGTH', '3'], ['SCGI', '1'], ['REQUEST_METHOD', 'POST'], ['HTTP_CONTENT_LENGTH', '10']]);
    const reply = await exchange(port, request, Buffer.from('0123456789'));
    expect(parseReply(reply).status).toBe(502);
    expect(ran).toBe(false);
    expect(log.join('')).toContain('CONTENT_LENGTH is shorter than the Content-Length request header (3 < 10)');
  });

  it('webServerAddrs: other peers are closed at once', async () => {
    const { port, log } = await start(text('ok'), { webServerAddrs: ['10.0.0.2'] });
    const reply = await exchange(port, encodeScgiRequest({}));
    expect(reply.bytes.length).toBe(0);
    expect(log.join('')).toContain('refused a connection from 127.0.0.1');
    const allowed = await start(text('ok'), { webServerAddrs: ['::ffff:127.0.0.1'] });
    expect(parseReply(await exchange(allowed.port, encodeScgiRequest({}))).body.toString()).toBe('ok');
  });
});

describe('SCGI: the client going away, backpressure', () => {
  it('a socket closed mid-response fires tsgi.signal and runs close() once', async () => {
    let closes = 0;
    let signalled: unknown = null;
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const { port, server } = await start((environ, s) => {
      environ['tsgi.signal'].addEventListener('abort', () => (signalled = environ['tsgi.signal'].reason));
      s('200 OK', [['Content-Type', 'application/octet-stream']]);
      const body = (async function* () {
        for (;;) {
          yield new Uint8Array(65536);
          await delay(1);
        }
      })();
      return Object.assign(body, {
        close: () => {
          closes++;
          resolveDone();
        },
      });
    });
    const socket = await open(port);
    socket.write(encodeScgiRequest({}));
    await new Promise<void>((resolve) => {
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > 256 * 1024) {
          socket.destroy();
          resolve();
        }
      });
    });
    await done;
    expect(closes).toBe(1);
    expect(String(signalled)).toMatch(/closed the connection/);
    await delay(20);
    expect(server.activeRequests).toBe(0);
  });

  it('a slow client pauses the app: the body generator is not run ahead unboundedly', async () => {
    let produced = 0;
    const { port } = await start((_e, s) => {
      s('200 OK', [['Content-Type', 'application/octet-stream']]);
      return (function* () {
        for (let i = 0; i < 2000; i++) {
          produced++;
          yield new Uint8Array(65536);
        }
      })();
    });
    const socket = await open(port);
    socket.pause();
    socket.write(encodeScgiRequest({}));
    await delay(300);
    expect(produced).toBeLessThan(200);
    socket.destroy();
  });

  it('a slow app pauses the socket: input beyond the high-water mark is not buffered', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { port } = await start(
      async (environ, s) => {
        await gate;
        let received = 0;
        for await (const chunk of environ['tsgi.input']) received += chunk.length;
        s('200 OK', [['Content-Type', 'text/plain']]);
        return [String(received)];
      },
      { inputHighWaterBytes: 256 * 1024 },
    );
    const total = 32 * 1024 * 1024;
    const socket = await open(port);
    const reply = collect(socket, 30_000);
    socket.write(encodeScgiHeader([['CONTENT_LENGTH', String(total)], ['SCGI', '1']]));
    const piece = Buffer.alloc(65536, 1);
    let sent = 0;
    let blocked = false;
    while (sent < total) {
      const ok = socket.write(piece);
      sent += piece.length;
      if (!ok && !(await Promise.race([new Promise((resolve) => socket.once('drain', () => resolve(true))), delay(300).then(() => false)]))) {
        blocked = true;
        break;
      }
    }
    expect(blocked).toBe(true);
    expect(sent).toBeLessThan(total);
    release();
    while (sent < total) {
      if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve));
      sent += piece.length;
    }
    expect(parseReply(await reply).body.toString()).toBe(String(total));
  });
});

describe('SCGI: listening on a unix socket', () => {
  it('serves over a unix socket made by listenOn', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsgi-scgi-'));
    const server = createScgiServer(text('over unix'));
    try {
      await listenOn(server, { kind: 'unix', path: join(dir, 'app.sock') }, { mode: 0o660 });
      expect(parseReply(await exchange(join(dir, 'app.sock'), encodeScgiRequest({}))).body.toString()).toBe('over unix');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('conformance suite over SCGI (in-process raw client, nginx scgi_params)', () => {
  for (const testCase of conformanceCases) {
    it(testCase.name, async () => {
      const { port } = await start(conformanceApp);
      const { method, path, headers = [], body } = testCase.request;
      const vars = nginxVars(path, { REQUEST_METHOD: method });
      // As nginx sends them: a header given twice is two variables (the conformance case "repeated-header").
      const pairs: Array<[string, string]> = [];
      for (const [name, value] of headers) {
        if (name.toLowerCase() === 'content-type') vars.CONTENT_TYPE = value;
        else if (name.toLowerCase() !== 'proxy') pairs.push([`HTTP_${name.toUpperCase().replace(/-/g, '_')}`, value]);
      }
      const response = parseReply(await exchange(port, encodeScgiRequest([...Object.entries(vars), ...pairs], body ?? new Uint8Array(0))));
      testCase.check(
        { status: response.status, headers: response.headers, body: method === 'HEAD' ? new Uint8Array(0) : response.body },
        { scriptName: '', transport: 'scgi' },
      );
    });
  }
});
