import { PassThrough, Writable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import { runWithCgi } from '../../src/servers/cgi.js';
import { conformanceApp } from '../../src/testing/conformance-app.js';
import type { App, Environ } from '../../src/types.js';

/** Runs an app through runWithCgi with in-memory streams; stdin stays open unless `end` is set. */
async function runInMemory(app: App, env: Record<string, string>, stdinBytes?: string | Buffer, end = false) {
  const stdin = new PassThrough();
  if (stdinBytes !== undefined) stdin.write(stdinBytes);
  if (end) stdin.end();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const status = await runWithCgi(app, { env: { ...env }, stdin, stdout, stderr, exit: false });
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), stdin };
}

const BASE_ENV = { GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', SERVER_PROTOCOL: 'HTTP/1.1', SCRIPT_NAME: '/cgi-bin/t.cgi' };

const envApp: App = (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  const picked: Record<string, unknown> = {};
  for (const key of ['QUERY_STRING', 'PATH_INFO', 'SCRIPT_NAME', 'CONTENT_LENGTH', 'HTTP_PROXY']) picked[key] = environ[key];
  for (const key of ['tsgi.run_once', 'tsgi.multiprocess', 'tsgi.multithread', 'tsgi.url_scheme'] as const) picked[key] = environ[key];
  return [JSON.stringify(picked)];
};

function bodyOf(output: Buffer): Buffer {
  const end = output.indexOf('\r\n\r\n');
  return output.subarray(end + 4);
}

describe('runWithCgi in memory (conformance A1-A9)', () => {
  it('A1: reads exactly CONTENT_LENGTH bytes and never waits for EOF', async () => {
    const run = await runInMemory(
      async (environ: Environ, startResponse) => {
        const body = await environ['tsgi.input'].read();
        const after = await environ['tsgi.input'].read();
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return [`${Buffer.from(body).toString()}|${after.length}`];
      },
      { ...BASE_ENV, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5' },
      'helloEXTRA',
    );
    expect(bodyOf(run.stdout).toString()).toBe('hello|0');
    expect(run.status).toBe(0);
  });

  it('A2: no CONTENT_LENGTH (or empty) -> empty body, stdin never read', async () => {
    for (const env of [{ ...BASE_ENV }, { ...BASE_ENV, CONTENT_LENGTH: '' }]) {
      const run = await runInMemory(
        async (environ: Environ, startResponse) => {
          const body = await environ['tsgi.input'].read();
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return [`${body.length}`];
        },
        env,
        'unread bytes',
      );
      expect(bodyOf(run.stdout).toString()).toBe('0');
      expect(run.stdin.read()?.toString()).toBe('unread bytes');
    }
  });

  it('A3: QUERY_STRING unset -> ""; A7: run_once, multiprocess, http unless HTTPS is on', async () => {
    const run = await runInMemory(envApp, { ...BASE_ENV });
    const env = JSON.parse(bodyOf(run.stdout).toString());
    expect(env.QUERY_STRING).toBe('');
    expect(env['tsgi.run_once']).toBe(true);
    expect(env['tsgi.multiprocess']).toBe(true);
    expect(env['tsgi.multithread']).toBe(false);
    expect(env['tsgi.url_scheme']).toBe('http');
    for (const on of ['on', 'ON', '1', 'yes']) {
      const secure = await runInMemory(envApp, { ...BASE_ENV, HTTPS: on });
      expect(JSON.parse(bodyOf(secure.stdout).toString())['tsgi.url_scheme']).toBe('https');
    }
    const off = await runInMemory(envApp, { ...BASE_ENV, HTTPS: 'off' });
    expect(JSON.parse(bodyOf(off.stdout).toString())['tsgi.url_scheme']).toBe('http');
  });

  it('A4: output is Status, headers, CRLF, body — byte-exact, no HTTP/ line', async () => {
    const run = await runInMemory(
      (_environ, startResponse) => {
        startResponse('404 Not Here', [['Content-Type', 'text/plain'], ['X-A', '1']]);
        return ['gone'];
      },
      { ...BASE_ENV },
    );
    expect(run.stdout.toString('latin1')).toBe(
      'Status: 404 Not Here\r\nContent-Type: text/plain\r\nX-A: 1\r\nContent-Length: 4\r\n\r\ngone',
    );
  });

  it('NPH scripts (nph- prefix) send a full status line', async () => {
    const run = await runInMemory(
      (_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return ['x'];
      },
      { ...BASE_ENV, SCRIPT_NAME: '/cgi-bin/nph-t.cgi' },
    );
    expect(run.stdout.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('NPH only when the script\'s own name starts with nph- (not a folder on its path)', async () => {
    const app: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return ['x'];
    };
    for (const [scriptName, nph] of [['nph-t.cgi', true], ['/nph-dir/t.cgi', false], ['/cgi-bin/t-nph-.cgi', false], ['', false]] as const) {
      const run = await runInMemory(app, { ...BASE_ENV, SCRIPT_NAME: scriptName });
      expect(run.stdout.toString().startsWith('HTTP/1.1 200 OK\r\n'), scriptName).toBe(nph);
    }
  });

  it('A5: exception before the first byte -> Status 500, details to stderr only', async () => {
    const run = await runInMemory(() => {
      throw new Error('secret detail');
    }, { ...BASE_ENV });
    const out = run.stdout.toString();
    expect(out).toMatch(/^Status: 500 Internal Server Error\r\nContent-Type: text\/plain/);
    expect(out).not.toContain('secret detail');
    expect(run.stderr).toContain('secret detail');
    expect(run.status).toBe(0);
  });

  it('A5: exception after headers -> logged, exit status 1, never a second header block', async () => {
    const run = await runInMemory(
      (_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return (function* () {
          yield 'partial';
          throw new Error('late failure');
        })();
      },
      { ...BASE_ENV },
    );
    const out = run.stdout.toString();
    expect(out).toBe('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\npartial');
    expect(out.match(/Status:/g)).toHaveLength(1);
    expect(run.stderr).toContain('late failure');
    expect(run.status).toBe(1);
  });

  it('A6: a 1 MiB body to a slow reader arrives whole (backpressure)', async () => {
    const stdin = new PassThrough();
    const received: Buffer[] = [];
    let produced = 0;
    const stdout = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        setTimeout(callback, 1);
      },
    });
    const stderr = new PassThrough();
    const app: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return (function* () {
        for (let i = 0; i < 64; i++) {
          produced++;
          yield new Uint8Array(16384).fill(i);
        }
      })();
    };
    const status = await runWithCgi(app, { env: { ...BASE_ENV }, stdin, stdout, stderr, exit: false });
    const all = Buffer.concat(received);
    expect(status).toBe(0);
    expect(produced).toBe(64);
    expect(bodyOf(all).length).toBe(64 * 16384);
    expect(bodyOf(all)[16384 * 63]).toBe(63);
  });

  it('A8: PATH_INFO bytes follow the latin-1 policy; a lossy env falls back to REQUEST_URI', async () => {
    const utf8 = await runInMemory(envApp, { ...BASE_ENV, PATH_INFO: '/caf\u00e9' });
    expect(JSON.parse(bodyOf(utf8.stdout).toString()).PATH_INFO).toBe('/caf\u00c3\u00a9');
    const lossy = await runInMemory(envApp, {
      ...BASE_ENV,
      PATH_INFO: '/caf\ufffd',
      REQUEST_URI: '/cgi-bin/t.cgi/caf%E9?x=1',
    });
    expect(JSON.parse(bodyOf(lossy.stdout).toString()).PATH_INFO).toBe('/caf\u00e9');
  });

  it('A9: CONTENT_LENGTH=10 and EOF after 5 bytes -> 400, no hang', async () => {
    const run = await runInMemory(
      async (environ: Environ, startResponse) => {
        await environ['tsgi.input'].read();
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return ['unreachable'];
      },
      { ...BASE_ENV, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '10' },
      'hello',
      true,
    );
    expect(run.stdout.toString()).toMatch(/^Status: 400 Bad Request\r\n/);
    expect(run.stderr).toContain('body ended after 5 of 10 bytes');
  });

  it.each(['-1', '+5', '5,5', '0x10', '99999999999999999999', 'abc', '1e3'])(
    'A9: CONTENT_LENGTH %j -> 400 and the app is never called',
    async (length) => {
      let called = false;
      const run = await runInMemory(
        (_environ, startResponse) => {
          called = true;
          startResponse('200 OK', [['Content-Type', 'text/plain']]);
          return ['x'];
        },
        { ...BASE_ENV, REQUEST_METHOD: 'POST', CONTENT_LENGTH: length },
        'hello',
        true,
      );
      expect(called).toBe(false);
      expect(run.stdout.toString()).toMatch(/^Status: 400 Bad Request\r\n/);
      expect(run.stderr).toContain('bad CONTENT_LENGTH');
    },
  );

  it('T22: an empty body gets Content-Length: 0; Location alone is sent with its status', async () => {
    const run = await runInMemory(
      (_environ, startResponse) => {
        startResponse('302 Found', [['Location', '/elsewhere']]);
        return [];
      },
      { ...BASE_ENV },
    );
    expect(run.stdout.toString()).toBe('Status: 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n');
  });

  it('Authorization falls back to REDIRECT_HTTP_AUTHORIZATION (shared-hosting rewrite)', async () => {
    const app: App = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return [String(environ.HTTP_AUTHORIZATION)];
    };
    const run = await runInMemory(app, { ...BASE_ENV, REDIRECT_HTTP_AUTHORIZATION: 'Basic dTpw' });
    expect(bodyOf(run.stdout).toString()).toBe('Basic dTpw');
  });

  it('T31: HTTP_PROXY is removed from the environment it was given', async () => {
    const env: Record<string, string> = { ...BASE_ENV, HTTP_PROXY: 'http://evil.test:8080' };
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c));
    await runWithCgi(envApp, { env, stdin: new PassThrough(), stdout, stderr: new PassThrough(), exit: false });
    expect(env.HTTP_PROXY).toBeUndefined();
    expect(JSON.parse(bodyOf(Buffer.concat(chunks)).toString()).HTTP_PROXY).toBeUndefined();
  });
});

/** Runs an app through runWithCgi into a Writable that records each write (empty ones left out). */
async function recordWrites(app: App, env: Record<string, string> = BASE_ENV): Promise<Buffer[]> {
  const writes: Buffer[] = [];
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (chunk.length > 0) writes.push(Buffer.from(chunk));
      callback();
    },
  });
  await runWithCgi(app, { env: { ...env }, stdin: new PassThrough(), stdout, stderr: new PassThrough(), exit: false });
  return writes;
}

describe('runWithCgi: how the response is written', () => {
  it('the head and a small first chunk leave in one write; a large first chunk is written after the head', async () => {
    const small = await recordWrites((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return ['hello', ' world'];
    });
    expect(small.map(String)).toEqual(['Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello', ' world']);
    const big = Buffer.alloc(64 * 1024, 'b');
    const large = await recordWrites((_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
      return [big];
    });
    expect(large.map((chunk) => chunk.length)).toEqual(['Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 65536\r\n\r\n'.length, big.length]);
  });

  it('an empty chunk sends the head before the app goes on; a HEAD answer and an empty body still get their head', async () => {
    let writesAtSecondChunk = -1;
    const writes: Buffer[] = [];
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if (chunk.length > 0) writes.push(Buffer.from(chunk));
        callback();
      },
    });
    const streaming: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/event-stream']]);
      return (async function* () {
        yield '';
        await new Promise((resolve) => setTimeout(resolve, 20));
        writesAtSecondChunk = writes.length;
        yield 'data: 1\n\n';
      })();
    };
    await runWithCgi(streaming, { env: { ...BASE_ENV }, stdin: new PassThrough(), stdout, stderr: new PassThrough(), exit: false });
    expect(writesAtSecondChunk).toBe(1);
    expect(writes.map(String)).toEqual(['Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n', 'data: 1\n\n']);

    const hello: App = (_environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'text/plain']]);
      return ['hello'];
    };
    const head = await recordWrites(hello, { ...BASE_ENV, REQUEST_METHOD: 'HEAD' });
    expect(head.map(String)).toEqual(['Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n']);
    const empty = await recordWrites((_environ, startResponse) => {
      startResponse('204 No Content', []);
      return [];
    });
    expect(empty.map(String)).toEqual(['Status: 204 No Content\r\n\r\n']);
  });
});

describe('runWithCgi as a real process through pipes', () => {
  let dir: string;
  let conformanceScript: string;
  let probeScript: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgi-cgi-'));
    conformanceScript = join(dir, 'conformance.cgi');
    probeScript = join(dir, 'probe.cgi');
    await buildCgi('cgi-bin/conformance.ts', conformanceScript);
    await buildCgi('test/fixtures/httpoxy-probe.ts', probeScript);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const childEnv = (extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...BASE_ENV,
    SCRIPT_NAME: '/cgi-bin/conformance.cgi',
    ...extra,
  });

  it('A1/T20: CONTENT_LENGTH=5 with stdin left open -> answers and exits', async () => {
    const child = execa(conformanceScript, [], {
      env: childEnv({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '5', PATH_INFO: '/echo', CONTENT_TYPE: 'text/plain' }),
      extendEnv: false,
      stdin: 'pipe',
      encoding: 'buffer',
      timeout: 10_000,
    });
    child.stdin?.write('helloEXTRA');
    const result = await child;
    expect(Buffer.from(result.stdout).toString()).toMatch(/\r\n\r\nhello$/);
    expect(result.exitCode).toBe(0);
  });

  it('T20: CONTENT_LENGTH=10 with EOF after 5 bytes -> 400, exit promptly', async () => {
    const result = await execa(conformanceScript, [], {
      env: childEnv({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: '10', PATH_INFO: '/read' }),
      extendEnv: false,
      input: 'hello',
      timeout: 10_000,
    });
    expect(result.stdout).toMatch(/^Status: 400 Bad Request\r\n/);
    expect(result.stderr).toContain('body ended after 5 of 10 bytes');
  });

  it('T19: a 3 MB response to a slow reader arrives in full', async () => {
    const child = execa(conformanceScript, [], {
      env: childEnv({ PATH_INFO: '/big', QUERY_STRING: 'bytes=3000000' }),
      extendEnv: false,
      buffer: false,
      timeout: 30_000,
    });
    let total = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      total += chunk.length;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const result = await child;
    expect(result.exitCode).toBe(0);
    const headLength = 'Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3000000\r\n\r\n'.length;
    expect(total).toBe(headLength + 3_000_000);
  });

  it('an echo works when the web server writes the whole body before reading (Apache): no pipe deadlock', async () => {
    const size = 4 * 1024 * 1024;
    const child = spawn(conformanceScript, [], {
      env: childEnv({ REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(size), PATH_INFO: '/echo' }),
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const block = Buffer.alloc(64 * 1024, 0x5a);
    // Like Apache: the whole body first, the response only after.
    for (let sent = 0; sent < size; sent += block.length) {
      if (!child.stdin.write(block)) await new Promise((resolve) => child.stdin.once('drain', resolve));
    }
    let total = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) total += chunk.length;
    expect(await exited).toBe(0);
    expect(total).toBe('Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n'.length + size);
  });

  it('T21: an uncaught exception before headers -> a proper Status: 500', async () => {
    const result = await execa(conformanceScript, [], {
      env: childEnv({ PATH_INFO: '/throw' }),
      extendEnv: false,
      reject: false,
    });
    expect(result.stdout).toMatch(/^Status: 500 Internal Server Error\r\n/);
    expect(result.stderr).toContain('thrown on purpose');
  });

  it('A8: a raw 0xE9 byte in PATH_INFO is recovered from REQUEST_URI', async () => {
    const result = await execa('bash', ['-c', `PATH_INFO=$'/env/caf\\xe9' exec "$0"`, conformanceScript], {
      env: childEnv({ REQUEST_URI: '/cgi-bin/conformance.cgi/env/caf%E9' }),
      extendEnv: false,
    });
    const env = JSON.parse(result.stdout.slice(result.stdout.indexOf('\r\n\r\n') + 4));
    expect(env.PATH_INFO).toBe('/env/caf\u00e9');
  });

  it('T31: HTTP_PROXY is gone before app modules load', async () => {
    const result = await execa(probeScript, [], {
      env: childEnv({ HTTP_PROXY: 'http://evil.test:8080', SCRIPT_NAME: '/cgi-bin/probe.cgi' }),
      extendEnv: false,
    });
    const seen = JSON.parse(result.stdout.slice(result.stdout.indexOf('\r\n\r\n') + 4));
    expect(seen).toEqual({ seenAtLoad: null, seenAtRun: null, inEnviron: null });
  });

  it('SIGTERM from the web server ends even an app that ignores tsgi.signal, within TERM_GRACE_MS', async () => {
    const stuck = join(dir, 'stuck.cgi');
    await buildCgi('test/fixtures/stuck-app.ts', stuck);
    const child = execa(stuck, [], { env: childEnv({ SCRIPT_NAME: '/cgi-bin/stuck.cgi' }), extendEnv: false, reject: false });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(143);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('the conformance app runs from the built file', async () => {
    const result = await execa(conformanceScript, [], { env: childEnv({ PATH_INFO: '/hello' }), extendEnv: false });
    expect(result.stdout).toBe('Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nHello, tsgi');
    void conformanceApp;
  });
});
