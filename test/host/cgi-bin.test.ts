/**
 * cgiBin (src/host/cgi-bin.ts) with real scripts (sh, perl) behind the real HTTP and FastCGI servers, in
 * process: resolution, index scripts, the environment, interpreters, streamed bodies, local redirects, NPH,
 * and bad scripts (dead, silent, flooding, abandoned by their client).
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgiBin, type CgiBinOptions } from '../../src/host/cgi-bin.js';
import { createHttpServer } from '../../src/servers/http.js';
import { parseEnv } from './env-text.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';

let root: string;
let bin: string;

async function script(name: string, text: string, mode = 0o755): Promise<string> {
  const path = join(bin, name);
  await writeFile(path, text, { mode });
  return path;
}

/** True while `pid` is a live process (a zombie counts as dead). */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitUntil(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return predicate();
}

async function readPids(file: string): Promise<number[]> {
  let text = '';
  await waitUntil(async () => {
    text = await readFile(join(root, file), 'utf8').catch(() => '');
    return /\n/.test(text);
  }, 5_000);
  return text.trim().split(/\s+/).map(Number);
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A raw HTTP request (the path is sent as written: no URL normalisation). */
function send(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** An HTTP server for cgiBin(bin, options) mounted at /cgi-bin, with its log collected. */
async function serve(options: CgiBinOptions = {}): Promise<{ port: number; log: string[]; server: Server; close(): Promise<void> }> {
  const log: string[] = [];
  const server = createHttpServer(cgiBin(bin, { errors: { write: (text) => void log.push(text) }, ...options }), {
    scriptName: '/cgi-bin',
    errors: { write: (text) => void log.push(text) },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    log,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const ENV_SCRIPT = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
env
`;
const ECHO_SCRIPT = `#!/bin/sh
printf 'Content-Type: application/octet-stream\\r\\nX-Content-Length: %s\\r\\n\\r\\n' "\${CONTENT_LENGTH-unset}"
exec cat
`;

let http: Awaited<ReturnType<typeof serve>>;

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'tsgi-cgi-bin-')));
  bin = join(root, 'bin');
  await mkdir(join(bin, 'sub'), { recursive: true });
  await mkdir(join(bin, 'empty'));
  await mkdir(join(bin, 'php'));
  await mkdir(join(root, 'outside'));
  await script('env.cgi', ENV_SCRIPT);
  await script('echo.cgi', ECHO_SCRIPT);
  await script('sub/index.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nsub index $SCRIPT_NAME [$PATH_INFO]"\n');
  await script('index.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nroot index"\n');
  await script('plain.txt', 'not a script', 0o644);
  await script('hello.pl', 'print "Content-Type: text/plain\\n\\nperl says $ENV{SCRIPT_NAME}";\n', 0o644);
  await script('php/index.pl', 'print "Content-Type: text/plain\\n\\nperl index";\n', 0o644);
  await writeFile(join(root, 'outside', 'evil.cgi'), ENV_SCRIPT, { mode: 0o755 });
  await symlink(join(root, 'outside', 'evil.cgi'), join(bin, 'link-out.cgi'));
  await symlink(join(bin, 'env.cgi'), join(bin, 'link-in.cgi'));
  process.env.CGI_BIN_SECRET = 'must-not-leak';
  http = await serve({ env: { EXTRA_ONE: 'x1' }, interpreters: { '.pl': 'perl' } });
});

afterAll(async () => {
  delete process.env.CGI_BIN_SECRET;
  await http?.close();
  await rm(root, { recursive: true, force: true });
});

describe('cgiBin: finding the script', () => {
  it('runs the script the path names, with RFC 3875 variables', async () => {
    const reply = await send(http.port, '/cgi-bin/env.cgi/a%20b/c?x=1%2B2', { headers: { 'X-A': '1', Proxy: 'evil:1' } });
    expect(reply.status).toBe(200);
    const env = parseEnv(reply.body.toString());
    expect(env).toMatchObject({
      GATEWAY_INTERFACE: 'CGI/1.1',
      REQUEST_METHOD: 'GET',
      SCRIPT_NAME: '/cgi-bin/env.cgi',
      SCRIPT_FILENAME: join(bin, 'env.cgi'),
      PATH_INFO: '/a b/c',
      PATH_TRANSLATED: join(bin, 'a b/c'),
      DOCUMENT_ROOT: bin,
      QUERY_STRING: 'x=1%2B2',
      REQUEST_URI: '/cgi-bin/env.cgi/a%20b/c?x=1%2B2',
      REDIRECT_STATUS: '200',
      HTTP_X_A: '1',
      EXTRA_ONE: 'x1',
      PWD: bin,
    });
    expect(env).not.toHaveProperty('CONTENT_LENGTH');
    expect(env).not.toHaveProperty('CONTENT_TYPE');
    expect(env).not.toHaveProperty('HTTP_PROXY');
    expect(env).not.toHaveProperty('CGI_BIN_SECRET');
    expect(env).not.toHaveProperty('REDIRECT_URL');
  });

  it('follows a symlink inside the folder; SCRIPT_NAME keeps the name asked for', async () => {
    const env = parseEnv((await send(http.port, '/cgi-bin/link-in.cgi')).body.toString());
    expect(env.SCRIPT_NAME).toBe('/cgi-bin/link-in.cgi');
    expect(env.SCRIPT_FILENAME).toBe(join(bin, 'env.cgi'));
  });

  it.each([
    ['/cgi-bin/../outside/evil.cgi', 403],
    ['/cgi-bin/%2e%2e/outside/evil.cgi', 403],
    ['/cgi-bin/link-out.cgi', 403],
    ['/cgi-bin/plain.txt', 403],
    ['/cgi-bin/nope.cgi', 404],
    ['/cgi-bin/env.cgi%00x', 403],
    ['/cgi-bin/empty/', 403],
    ['/cgi-bin/empty', 403],
    ['/elsewhere/env.cgi', 404],
  ])('%s -> %i, nothing run', async (path, status) => {
    const reply = await send(http.port, path);
    expect(reply.status).toBe(status);
    expect(reply.body.toString()).not.toContain('GATEWAY_INTERFACE');
  });

  it('runs a folder\'s index script, and sends a folder URL without its slash to the slash form (301)', async () => {
    const index = await send(http.port, '/cgi-bin/sub/');
    expect(index.status).toBe(200);
    expect(index.body.toString()).toBe('sub index /cgi-bin/sub/index.cgi []');
    const redirect = await send(http.port, '/cgi-bin/sub?a=1');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('/cgi-bin/sub/?a=1');
    expect((await send(http.port, '/cgi-bin/')).body.toString()).toBe('root index');
    expect((await send(http.port, '/cgi-bin')).headers.location).toBe('/cgi-bin/');
    // index + an interpreter's extension (".pl" is mapped), for a script that is only readable.
    expect((await send(http.port, '/cgi-bin/php/')).body.toString()).toBe('perl index');
  });

  it('runs a mapped extension through its interpreter, executable or not', async () => {
    const reply = await send(http.port, '/cgi-bin/hello.pl');
    expect(reply.status).toBe(200);
    expect(reply.body.toString()).toBe('perl says /cgi-bin/hello.pl');
    const unmapped = await serve();
    try {
      expect((await send(unmapped.port, '/cgi-bin/hello.pl')).status).toBe(403);
    } finally {
      await unmapped.close();
    }
  });

  it('answers HEAD with the head only', async () => {
    const reply = await send(http.port, '/cgi-bin/env.cgi', { method: 'HEAD' });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.body.length).toBe(0);
  });
});

describe('cgiBin: request bodies', () => {
  it('passes a sized body with CONTENT_LENGTH and CONTENT_TYPE', async () => {
    const reply = await send(http.port, '/cgi-bin/echo.cgi', { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/x-a' } });
    expect(reply.headers['x-content-length']).toBe('5');
    expect(reply.body.toString()).toBe('hello');
    const env = parseEnv((await send(http.port, '/cgi-bin/env.cgi', { method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/x-a' } })).body.toString());
    expect(env).toMatchObject({ CONTENT_LENGTH: '3', CONTENT_TYPE: 'text/x-a', REQUEST_METHOD: 'POST' });
  });

  it('streams a chunked body to EOF on stdin, without CONTENT_LENGTH', async () => {
    const chunks = [Buffer.from('abc'), Buffer.alloc(200_000, 0x61), Buffer.from('xyz')];
    const reply = await send(http.port, '/cgi-bin/echo.cgi', { method: 'POST', chunks, headers: { 'Transfer-Encoding': 'chunked' } });
    expect(reply.status).toBe(200);
    expect(reply.headers['x-content-length']).toBe('unset');
    expect(reply.body.equals(Buffer.concat(chunks))).toBe(true);
  });

  it('with readAhead, counts a chunked body (CONTENT_LENGTH set) and refuses one over maxReadAheadBytes with 411', async () => {
    const ahead = await serve({ readAhead: true, maxReadAheadBytes: 1000 });
    try {
      const small = await send(ahead.port, '/cgi-bin/echo.cgi', { method: 'POST', chunks: [Buffer.from('ab'), Buffer.from('cd')], headers: { 'Transfer-Encoding': 'chunked' } });
      expect(small.headers['x-content-length']).toBe('4');
      expect(small.body.toString()).toBe('abcd');
      const large = await send(ahead.port, '/cgi-bin/echo.cgi', { method: 'POST', chunks: [Buffer.alloc(1001)], headers: { 'Transfer-Encoding': 'chunked' } });
      expect(large.status).toBe(411);
      expect(ahead.log.join('')).toMatch(/refused at the limit maxReadAheadBytes/);
    } finally {
      await ahead.close();
    }
  });

  it('streams bodies without CONTENT_LENGTH over FastCGI (STDIN to its end), with the mount re-splitting the path', async () => {
    const server = createFastCgiServer(cgiBin(bin), { mount: '/cgi-bin', errors: { write: () => {} } });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await FastCgiClient.connect((server.address() as AddressInfo).port);
    try {
      const common = { REQUEST_URI: '/cgi-bin/echo.cgi/x', SCRIPT_NAME: '/cgi-bin/echo.cgi', SERVER_PROTOCOL: 'HTTP/1.1' };
      const unsized = parseFastCgiResponse(await client.request({ id: 1, keepConn: true, params: { ...common, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '' }, stdin: 'streamed body' }));
      expect(unsized.headers).toContainEqual(['X-Content-Length', 'unset']);
      expect(unsized.body.toString()).toBe('streamed body');
      const sized = parseFastCgiResponse(await client.request({ id: 1, keepConn: true, params: { ...common, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '4' }, stdin: 'four' }));
      expect(sized.headers).toContainEqual(['X-Content-Length', '4']);
      const env = parseEnv(
        parseFastCgiResponse(await client.request({ id: 1, keepConn: true, params: { REQUEST_URI: '/cgi-bin/env.cgi/p?q', QUERY_STRING: 'q', REQUEST_METHOD: 'GET', SCRIPT_FILENAME: '/var/www/x' } })).body.toString(),
      );
      expect(env).toMatchObject({ SCRIPT_NAME: '/cgi-bin/env.cgi', PATH_INFO: '/p', SCRIPT_FILENAME: join(bin, 'env.cgi'), QUERY_STRING: 'q', FCGI_ROLE: 'RESPONDER' });
    } finally {
      client.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('cgiBin: local redirects (RFC 3875 6.2.2)', () => {
  it('serves the script a local Location names, with GET, no body and REDIRECT_* variables', async () => {
    await script('to-env.cgi', '#!/bin/sh\ncat >/dev/null\nprintf "Location: /cgi-bin/env.cgi/there?b=2\\r\\n\\r\\n"\n');
    const reply = await send(http.port, '/cgi-bin/to-env.cgi/here?a=1', { method: 'POST', body: 'data', headers: { 'Content-Type': 'text/plain' } });
    expect(reply.status).toBe(200);
    const env = parseEnv(reply.body.toString());
    expect(env).toMatchObject({
      REQUEST_METHOD: 'GET',
      SCRIPT_NAME: '/cgi-bin/env.cgi',
      PATH_INFO: '/there',
      QUERY_STRING: 'b=2',
      REDIRECT_URL: '/cgi-bin/to-env.cgi/here',
      REDIRECT_QUERY_STRING: 'a=1',
      REDIRECT_REQUEST_METHOD: 'POST',
      REDIRECT_STATUS: '200',
      REQUEST_URI: '/cgi-bin/to-env.cgi/here?a=1',
    });
    expect(env).not.toHaveProperty('CONTENT_LENGTH');
    expect(env).not.toHaveProperty('CONTENT_TYPE');
  });

  it('answers a Location outside the mount, or with other fields, with a 302', async () => {
    await script('away.cgi', '#!/bin/sh\nprintf "Location: /elsewhere/x\\r\\n\\r\\n"\n');
    await script('with-type.cgi', '#!/bin/sh\nprintf "Location: /cgi-bin/env.cgi\\r\\nContent-Type: text/plain\\r\\n\\r\\n"\n');
    const away = await send(http.port, '/cgi-bin/away.cgi');
    expect(away.status).toBe(302);
    expect(away.headers.location).toBe('/elsewhere/x');
    expect((await send(http.port, '/cgi-bin/with-type.cgi')).status).toBe(302);
  });

  it('answers 500 past maxRedirects local redirects in a row, and logs it once per interval', async () => {
    await script('loop.cgi', `#!/bin/sh\necho x >> "${root}/loop-count"\nprintf "Location: /cgi-bin/loop.cgi\\r\\n\\r\\n"\n`);
    const limited = await serve({ maxRedirects: 3 });
    try {
      const reply = await send(limited.port, '/cgi-bin/loop.cgi');
      expect(reply.status).toBe(500);
      // The first run and 3 redirects.
      expect((await readFile(join(root, 'loop-count'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(4);
      expect((await send(limited.port, '/cgi-bin/loop.cgi')).status).toBe(500);
      const lines = limited.log.join('').split('\n').filter((line) => line.includes('maxRedirects'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/more than 3 local redirects .* refused at the limit maxRedirects; to change it: option maxRedirects/);
    } finally {
      await limited.close();
    }
  });
});

describe('cgiBin: NPH scripts', () => {
  it('turns the NPH status line and head into the transport\'s head and streams the body', async () => {
    await script('nph-hello.cgi', '#!/bin/sh\nprintf "HTTP/1.1 299 Custom Thing\\r\\nX-A: 1\\r\\nConnection: close\\r\\nContent-Type: text/plain\\r\\n\\r\\nnph body"\n');
    const reply = await send(http.port, '/cgi-bin/nph-hello.cgi');
    expect(reply.status).toBe(299);
    expect(reply.headers['x-a']).toBe('1');
    expect(reply.headers.connection).not.toBe('close');
    expect(reply.body.toString()).toBe('nph body');
  });

  it('answers 502 for an NPH script that frames its own body (Transfer-Encoding)', async () => {
    await script('nph-chunked.cgi', '#!/bin/sh\nprintf "HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n3\\r\\nabc\\r\\n0\\r\\n\\r\\n"\n');
    expect((await send(http.port, '/cgi-bin/nph-chunked.cgi')).status).toBe(502);
  });
});

describe('cgiBin: bad scripts', () => {
  it('answers 500 for a script that dies before its head, with its stderr in the log', async () => {
    await script('dies.cgi', '#!/bin/sh\necho "something broke here" >&2\nexit 3\n');
    const reply = await send(http.port, '/cgi-bin/dies.cgi');
    expect(reply.status).toBe(500);
    await waitUntil(() => http.log.join('').includes('exited with code 3'), 3_000);
    const log = http.log.join('');
    expect(log).toContain('tsgi: cgi-bin: /cgi-bin/dies.cgi: something broke here\n');
    expect(log).toMatch(/tsgi: cgi-bin: \/cgi-bin\/dies.cgi: script exited with code 3/);
  });

  it('answers 504 for a script that never answers, and kills its process group', async () => {
    await script('silent.cgi', `#!/bin/sh\nsleep 60 &\necho "$$ $!" > "${root}/silent.pids"\nwait\n`);
    const quick = await serve({ timeoutMs: 500 });
    try {
      const reply = await send(quick.port, '/cgi-bin/silent.cgi');
      expect(reply.status).toBe(504);
      const pids = await readPids('silent.pids');
      expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)), 5_000)).toBe(true);
      expect(quick.log.join('')).toMatch(/no response head within 0.5 s: answered 504.* refused at the limit timeoutMs; to change it: --timeout SECONDS/);
    } finally {
      await quick.close();
    }
  });

  it('answers 500 for a script whose head floods past maxHeadBytes, and kills it', async () => {
    await script('flood.cgi', `#!/bin/sh\necho $$ > "${root}/flood.pids"\nwhile :; do echo "X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; done\n`);
    const reply = await send(http.port, '/cgi-bin/flood.cgi');
    expect(reply.status).toBe(500);
    const [pid] = await readPids('flood.pids');
    expect(await waitUntil(() => !isAlive(pid as number), 5_000)).toBe(true);
    expect(http.log.join('')).toMatch(/response head over 65536 bytes: answered 500, the script killed/);
  });

  it('kills the process group of a script whose client went away mid-response', async () => {
    await script('forever.cgi', `#!/bin/sh\nsleep 60 &\necho "$$ $!" > "${root}/forever.pids"\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nwhile :; do echo line; done\n`);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: http.port, path: '/cgi-bin/forever.cgi' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      setTimeout(() => reject(new Error('no response')), 5_000);
      req.end();
    });
    const pids = await readPids('forever.pids');
    expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)), 5_000)).toBe(true);
  });
});
