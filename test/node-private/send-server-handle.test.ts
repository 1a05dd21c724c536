/**
 * src/node-private/net.ts sendServerHandle: a socket bound with `net._createServerHandle` (not listening) sent
 * to another process over its IPC channel, which puts it in the listening state on its copy and exits. The
 * state belongs to the socket: it stays listening while this process holds its descriptor. Real processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NODE_PRIVATE_ENV, probeCreateServerHandle, sendServerHandle, type ServerHandle } from '../../src/node-private/net.js';

/** A child that listens on the handle it is sent, then exits at once (status 0 when listening). */
const LISTENER = `process.on('message', (message, handle) => {
  const server = require('node:net').createServer();
  server.listen({ fd: handle.fd });
  process.exit(server.listening ? 0 : 1);
});
process.send('ready');`;

function startListener(): ChildProcess {
  return spawn(process.execPath, ['-e', LISTENER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Whether another process-like listener (this process, SO_REUSEADDR as libuv sets it) can take 127.0.0.1:`port`. */
async function bindOutcome(port: number): Promise<string> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve('listening')));
  });
}

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

function portOf(handle: ServerHandle): number {
  const out: { port?: number } = {};
  (handle as unknown as { getsockname(out: object): number }).getsockname(out);
  return out.port ?? 0;
}

const handles: ServerHandle[] = [];
afterEach(() => {
  for (const handle of handles.splice(0)) handle.close();
  delete process.env[NODE_PRIVATE_ENV];
});

function bound(): ServerHandle {
  const create = probeCreateServerHandle();
  if (create === null) throw new Error('net._createServerHandle is not usable on this Node');
  const handle = create('127.0.0.1', 0, 4);
  if (typeof handle === 'number') throw new Error(`bind failed (${handle})`);
  handles.push(handle);
  return handle;
}

describe('sendServerHandle', () => {
  it('another process listens on the sent socket; it stays listening after that process exits', async () => {
    const handle = bound();
    const port = portOf(handle);
    // Bound, not listening: connections are refused and another SO_REUSEADDR socket could take the port.
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
    const child = startListener();
    await once(child, 'message');
    const sent = await new Promise<Error | null>((resolve) => sendServerHandle(child, { type: 'listen' }, handle, resolve));
    expect(sent).toBeNull();
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(await bindOutcome(port)).toBe('EADDRINUSE');
    // Nobody accepts, but the kernel completes the handshake: the connection waits in the backlog.
    expect(await connectOutcome(port)).toBe('connected');
  });

  it(`sends nothing and reports why when ${NODE_PRIVATE_ENV}=0, or when the channel is closed`, async () => {
    const handle = bound();
    const child = startListener();
    await once(child, 'message');
    process.env[NODE_PRIVATE_ENV] = '0';
    const refused = await new Promise<Error | null>((resolve) => sendServerHandle(child, { type: 'listen' }, handle, resolve));
    expect(refused?.message).toContain(`${NODE_PRIVATE_ENV}=0`);
    delete process.env[NODE_PRIVATE_ENV];
    child.disconnect();
    const closed = await new Promise<Error | null>((resolve) => sendServerHandle(child, { type: 'listen' }, handle, resolve));
    expect(closed?.message).toMatch(/closed/);
    child.kill();
    await once(child, 'exit');
    expect(await connectOutcome(portOf(handle))).toBe('ECONNREFUSED');
  });
});
