/**
 * `tsgi serve --workers N` holds its port from the moment it has it (cli/cluster/listen-socket.ts): while the
 * first worker is still loading the app, the socket is already listening, so another process that binds the
 * same address with SO_REUSEADDR (what libuv, hence any Node server, does) fails with EADDRINUSE, and a client
 * that connects then waits in the backlog and is served once the worker is ready. The app's import waits on a
 * file the test writes, which holds the worker inside that start-up window as long as the test needs.
 * Real processes and sockets, on both ways the master holds its socket (test/cli/listen-paths.ts).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../cli-helpers.js';
import { probeCreateServerHandle } from '../../../src/node-private/net.js';
import { LISTEN_PATHS } from '../listen-paths.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const WAIT_MS = 30_000;

/** An app whose import writes `<gate>.importing`, then waits (bounded) until the file `<gate>` exists. */
const gatedApp = (gate: string): string => `import { existsSync, writeFileSync } from 'node:fs';
writeFileSync(${JSON.stringify(`${gate}.importing`)}, '');
const deadline = Date.now() + 60_000;
while (!existsSync(${JSON.stringify(gate)}) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
export default (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['gated app'];
};
`;

/** Waits (bounded) until `read()` matches `pattern`; the error shows what was read. */
async function waitForText(read: () => string, pattern: RegExp, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits (bounded) until `path` exists. */
async function waitForFile(path: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Another process binds and listens on 127.0.0.1:`port` the way any Node server does (libuv sets
 * SO_REUSEADDR); resolves with 'listening' or the error code it got.
 */
async function intrude(port: number): Promise<string> {
  const code = `const server = require('node:net').createServer();
server.on('error', (error) => { process.stdout.write(String(error.code)); process.exit(0); });
server.listen(${port}, '127.0.0.1', () => { process.stdout.write('listening'); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await once(child, 'exit');
  return output;
}

/** Connects and sends one HTTP request; resolves with the connection (or the connect error's code) once connected. */
function connectAndAsk(options: { port: number; host: string } | { path: string }): Promise<{ socket: Socket; response: Promise<string> } | string> {
  return new Promise((resolve) => {
    const socket = connect(options);
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('connect', () => {
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      // Bounded: a connection nobody answers fails the test instead of hanging it.
      socket.setTimeout(WAIT_MS, () => socket.destroy());
      const response = new Promise<string>((done) => {
        socket.on('close', () => done(text));
        socket.on('error', () => done(text));
      });
      socket.write('GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n');
      resolve({ socket, response });
    });
  });
}

/**
 * Connects to 127.0.0.1:`port` every few milliseconds (refused until something listens) until `wanted`
 * connections are open, each sending one request; resolves with those connections' responses.
 */
async function connectUntilOpen(port: number, wanted: number, timeoutMs = WAIT_MS): Promise<Array<Promise<string>>> {
  const responses: Array<Promise<string>> = [];
  const deadline = Date.now() + timeoutMs;
  while (responses.length < wanted) {
    if (Date.now() > deadline) throw new Error(`only ${responses.length} connections within ${timeoutMs} ms`);
    const attempt = await connectAndAsk({ port, host: '127.0.0.1' });
    if (typeof attempt === 'object') responses.push(attempt.response);
    else await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return responses;
}

/**
 * While the worker imports the gated app: a TCP port refuses an intruder's bind (EADDRINUSE), and a client that
 * connects now (TCP or unix socket) is accepted, then served once the gate opens.
 */
async function expectHeldWhileImporting(gate: string, target: { port: number; host: string } | { path: string }): Promise<void> {
  await waitForFile(`${gate}.importing`);
  if ('port' in target) expect(await intrude(target.port)).toBe('EADDRINUSE');
  const early = await connectAndAsk(target);
  expect(typeof early).toBe('object');
  await writeFile(gate, '');
  const response = await (early as { response: Promise<string> }).response;
  expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\ngated app$/);
}

async function stop(child: ResultPromise): Promise<void> {
  if (child.exitCode === null && child.pid !== undefined) child.kill('SIGTERM');
  await child;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-listen-race-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.each(LISTEN_PATHS)('tsgi serve holds its socket while the first worker starts ($name)', ({ name, env }) => {
  const tag = name.startsWith('private') ? 'private' : 'public';

  it('TCP: an intruder binding the same port fails with EADDRINUSE; a client that connects early is served', async () => {
    const gate = join(dir, `tcp-${tag}.gate`);
    const app = join(dir, `tcp-${tag}.mjs`);
    await writeFile(app, gatedApp(gate));
    const port = await freePort();
    const child = execa('node', [BIN, 'serve', app, '--http', `127.0.0.1:${port}`, '--workers', '2'], { env, reject: false, all: true });
    let output = '';
    child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      // The worker is importing the app: it has not listened on anything yet.
      await expectHeldWhileImporting(gate, { port, host: '127.0.0.1' });
      await waitForText(() => output, new RegExp(`serving .* at http://127\\.0\\.0\\.1:${port}/ with 2 workers`));
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('gated app');
      expect(output).not.toMatch(/cannot listen|listen helper/);
    } finally {
      await stop(child);
    }
  });

  it('TCP: connections from the moment the port listens are all served, none reset', async () => {
    const gate = join(dir, `loop-${tag}.gate`);
    const app = join(dir, `loop-${tag}.mjs`);
    await writeFile(app, gatedApp(gate));
    const port = await freePort();
    // The connections start before tsgi does: the first ones are refused, then one lands as the socket starts
    // listening (the listen helper's moment), the others wait in the backlog while the workers load the app.
    const opened = connectUntilOpen(port, 8);
    const child = execa('node', [BIN, 'serve', app, '--http', `127.0.0.1:${port}`, '--workers', '2'], { env, reject: false });
    try {
      const responses = await opened;
      await writeFile(gate, '');
      for (const response of await Promise.all(responses)) expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\ngated app$/);
    } finally {
      await stop(child);
    }
  });

  it('fd:N bound but not listening (inherited): it listens before the worker loads the app', async () => {
    const gate = join(dir, `fd-${tag}.gate`);
    const app = join(dir, `fd-${tag}.mjs`);
    await writeFile(app, gatedApp(gate));
    const create = probeCreateServerHandle();
    if (create === null) throw new Error('net._createServerHandle is not usable on this Node');
    const port = await freePort();
    const handle = create('127.0.0.1', port, 4);
    if (typeof handle === 'number') throw new Error(`bind failed (${handle})`);
    const child = spawn(process.execPath, [BIN, 'serve', app, '--http', 'fd:3', '--workers', '1'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', handle.fd],
    });
    // The socket is the child's now.
    handle.close();
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await expectHeldWhileImporting(gate, { port, host: '127.0.0.1' });
      expect(output).not.toMatch(/cannot listen|listen helper/);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });

  it('unix socket: a client that connects before the first worker is ready waits and is served', async () => {
    const gate = join(dir, `unix-${tag}.gate`);
    const app = join(dir, `unix-${tag}.mjs`);
    const path = join(dir, `unix-${tag}.sock`);
    await writeFile(app, gatedApp(gate));
    const child = execa('node', [BIN, 'serve', app, '--http', `unix:${path}`, '--workers', '1'], { env, reject: false });
    try {
      await expectHeldWhileImporting(gate, { path });
    } finally {
      await stop(child);
    }
  });
});
