import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { execa } from 'execa';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runPingCommand } from '../../src/cli/ping-command.js';
import { createFastCgiServer } from '../../src/servers/fastcgi.js';
import { createHttpServer } from '../../src/servers/http.js';
import { createScgiServer } from '../../src/servers/scgi.js';
import { createUwsgiServer } from '../../src/servers/uwsgi.js';
import type { App } from '../../src/types.js';

const dir = mkdtempSync(join(tmpdir(), 'tsgi-ping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    (server as { destroyConnections?: () => void }).destroyConnections?.();
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    server.close();
  }
});

/** 200 at /ping, 503 at /down, the path echoed (so the test sees what reached the app). */
const app: App = (environ, start) => {
  const path = environ.SCRIPT_NAME + environ.PATH_INFO;
  start(path === '/down' ? '503 Service Unavailable' : '200 OK', [['Content-Type', 'text/plain']]);
  return [`${environ.REQUEST_METHOD} ${path} ${environ.HTTP_HOST ?? ''}`];
};

const quiet = { errors: { write: () => {} } };
const makers = {
  fastcgi: () => createFastCgiServer(app, quiet),
  scgi: () => createScgiServer(app, quiet),
  uwsgi: () => createUwsgiServer(app, quiet),
  http: () => createHttpServer(app, quiet),
} as const;

async function listen(server: Server, where: number | string = 0): Promise<string> {
  servers.push(server);
  if (typeof where === 'string') server.listen(where);
  else server.listen(where, '127.0.0.1');
  await once(server, 'listening');
  return typeof where === 'string' ? `unix:${where}` : `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdout = new Writable({ write: (chunk, _e, done) => ((out += String(chunk)), done()) });
  const stderr = new Writable({ write: (chunk, _e, done) => ((err += String(chunk)), done()) });
  const code = await runPingCommand(args, { stdout, stderr });
  return { code, out, err };
}

describe('tsgi ping', () => {
  for (const protocol of ['fastcgi', 'scgi', 'uwsgi', 'http'] as const) {
    it(`${protocol}: exits 0 on a 2xx answer, 1 with the status otherwise`, async () => {
      const address = await listen(makers[protocol]());
      const ok = await run([`--${protocol}`, address]);
      expect(ok).toMatchObject({ code: 0, err: '' });
      expect(ok.out).toMatch(new RegExp(`^tsgi ping: answered 200 OK for /ping on ${protocol} ${address} in \\d+ ms\\n$`));
      const down = await run([`--${protocol}`, address, '--path', '/down']);
      expect(down.code).toBe(1);
      expect(down.err).toContain('answered 503 Service Unavailable');
      expect((await run([`--${protocol}`, address, '-q'])).out).toBe('');
    });
  }

  it('works over a unix socket', async () => {
    const address = await listen(makers.fastcgi(), join(dir, 'fcgi.sock'));
    expect((await run(['--fastcgi', address, '--path', '/x?y=1', '--host', 'example.com'])).code).toBe(0);
  });

  it('says why it failed: nothing listening, a silent backend (timeout), another protocol, a close', async () => {
    const refused = await listen(createNetServer());
    servers.pop()?.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await run(['--fastcgi', refused])).err).toMatch(/connection refused: nothing listens on 127\.0\.0\.1:\d+/);

    const silent = await listen(createNetServer((socket) => socket.resume()));
    const slow = await run(['--scgi', silent, '--timeout', '0.3']);
    expect(slow.code).toBe(1);
    expect(slow.err).toContain('no complete answer within 0.3 s');

    const http = await listen(makers.http());
    const wrong = await run(['--fastcgi', http, '--timeout', '2']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/not a FastCGI answer|closed the connection/);

    const closer = await listen(createNetServer((socket) => socket.end()));
    expect((await run(['--uwsgi', closer])).err).toContain('closed the connection without an answer');
  });

  it('refuses bad options with status 2', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['--fastcgi', '127.0.0.1:1', '--http', '127.0.0.1:2'])).code).toBe(2);
    expect((await run(['--fastcgi', 'nonsense:port'])).code).toBe(2);
    expect((await run(['--fastcgi', '127.0.0.1:1', '--path', 'no-slash'])).code).toBe(2);
    expect((await run(['--fastcgi', '127.0.0.1:1', '--timeout', '-1'])).code).toBe(2);
    expect((await run(['--fastcgi', 'fd:0'])).code).toBe(2);
  });

  it('runs as `tsgi ping` from the command line (exit status for HEALTHCHECK)', async () => {
    const address = await listen(makers.fastcgi());
    const ok = await execa('node', ['bin/tsgi.js', 'ping', '--fastcgi', address], { reject: false });
    expect(ok.exitCode).toBe(0);
    const bad = await execa('node', ['bin/tsgi.js', 'ping', '--fastcgi', address, '--path', '/down'], { reject: false });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('503');
  });
});
