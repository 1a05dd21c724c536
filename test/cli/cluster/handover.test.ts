/**
 * Kept-alive FastCGI connections across a reload of `tsgi serve --workers`: real master and worker processes,
 * real sockets. With the handover (cli/cluster/handover.ts, servers/socket-handover.ts) the very connections a
 * web server keeps in its pool go on answering, from the new workers; without it (TSGI_SOCKET_HANDOVER=off, or
 * the public fallback of src/node-private/net.ts: TSGI_NODE_PRIVATE=0) the stopping workers close them cleanly: a
 * FIN, never a reset.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { FastCgiClient, parseFastCgiResponse } from '../../../src/testing/fastcgi-client.js';
import { freePort, waitForLine } from '../cli-helpers.js';

const ROOT = join(import.meta.dirname, '../../..');
const APP = join(ROOT, 'test/e2e/fixtures/fastcgi-app.ts');
const PARAMS = {
  REQUEST_METHOD: 'GET',
  REQUEST_URI: '/app/pid',
  SCRIPT_NAME: '/app',
  PATH_INFO: '/pid',
  QUERY_STRING: '',
  SERVER_NAME: 'test',
  SERVER_PORT: '80',
  SERVER_PROTOCOL: 'HTTP/1.1',
};

const children: ResultPromise[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
});

async function startMaster(env: Record<string, string>, transport: 'tcp' | 'unix' = 'tcp'): Promise<{ port: number | string; pid: number; output: () => string }> {
  const port = transport === 'tcp' ? await freePort() : join(await mkdtemp(join(tmpdir(), 'tsgi-handover-')), 'fcgi.sock');
  const address = typeof port === 'number' ? `127.0.0.1:${port}` : `unix:${port}`;
  const child = execa(process.execPath, [join(ROOT, 'bin', 'tsgi.js'), 'serve', APP, '--fastcgi', address, '--workers', '2', '--mount', '/app'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    reject: false,
    all: true,
  });
  children.push(child);
  let output = '';
  child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const line = await waitForLine(child, /^tsgi: serving .* \(pid (\d+)\)$/m);
  return { port, pid: Number(/\(pid (\d+)\)$/m.exec(line)?.[1]), output: () => output };
}

async function pidOf(client: FastCgiClient): Promise<number> {
  const reply = await client.request({ id: 1, keepConn: true, params: PARAMS }, 15_000);
  const { status, body } = parseFastCgiResponse(reply);
  expect(status).toBe(200);
  return (JSON.parse(body.toString()) as { pid: number }).pid;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tsgi serve --workers: kept-alive FastCGI connections across a reload', () => {
  for (const transport of ['tcp', 'unix'] as const) {
    it(`are handed to the new workers (${transport}): the same connections answer, from new pids`, { timeout: 90_000 }, async () => {
      const master = await startMaster({}, transport);
      const clients = await Promise.all(Array.from({ length: 6 }, () => FastCgiClient.connect(master.port)));
      const before = await Promise.all(clients.map(pidOf));
      process.kill(master.pid, 'SIGHUP');
      await waitFor('both old workers to exit', () => (master.output().match(/exited \(status 0\)/g) ?? []).length >= 2);
      const after = await Promise.all(clients.map(pidOf));
      for (const pid of after) expect(before).not.toContain(pid);
      for (const client of clients) {
        expect(client.socket.destroyed).toBe(false);
        client.socket.destroy();
      }
    });
  }

  it.each([
    ['TSGI_SOCKET_HANDOVER=off', { TSGI_SOCKET_HANDOVER: 'off' }, 'tcp'],
    ['TSGI_NODE_PRIVATE=0: no readStop, no private listening handle', { TSGI_NODE_PRIVATE: '0' }, 'tcp'],
    // The master accepts every connection on a unix socket and passes each on: the workers never listen.
    ['TSGI_NODE_PRIVATE=0 over a unix socket', { TSGI_NODE_PRIVATE: '0' }, 'unix'],
  ] as const)('without the handover (%s) they are closed cleanly: a FIN, no reset', { timeout: 90_000 }, async (_name, env, transport) => {
    const master = await startMaster(env, transport);
    const clients = await Promise.all(Array.from({ length: 4 }, () => FastCgiClient.connect(master.port)));
    const errors: string[] = [];
    const ended: boolean[] = clients.map(() => false);
    clients.forEach((client, index) => {
      client.socket.on('error', (error) => errors.push(error.message));
      client.socket.on('end', () => {
        ended[index] = true;
        // As a web server does when it sees the FIN of a pooled connection.
        client.socket.end();
      });
    });
    await Promise.all(clients.map(pidOf));
    process.kill(master.pid, 'SIGHUP');
    await waitFor('every connection to be closed by the server', () => ended.every(Boolean));
    await Promise.all(clients.map((client) => client.closed));
    expect(errors).toEqual([]);
  });
});
