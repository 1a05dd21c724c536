import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { freePort, listenerBelongsTo } from './free-port.js';

const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

async function listenOn(port: number): Promise<Server> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('freePort', () => {
  it('hands out distinct, bindable ports below the ephemeral range, even when asked all at once', async () => {
    const ports = await Promise.all(Array.from({ length: 200 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeLessThan(ephemeralLow);
      expect(port).toBeGreaterThanOrEqual(1024);
    }
    const servers = await Promise.all(ports.slice(0, 20).map(listenOn));
    await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  });

  it('skips a port something else holds', async () => {
    const next = await freePort();
    // Hold the ports that would come next, then ask again: none of them may be handed out.
    const held = await Promise.all([1, 2, 3].map((step) => listenOn(next + step).catch(() => null)));
    const given = await freePort();
    const heldPorts = held.flatMap((server) => (server ? [(server.address() as { port: number }).port] : []));
    expect(heldPorts).not.toContain(given);
    await Promise.all(held.map((server) => server && new Promise((done) => server.close(done))));
  });
});

describe('listenerBelongsTo', () => {
  it('tells this process\'s listener from another process\'s', async () => {
    const own = await listenOn(await freePort());
    expect(await listenerBelongsTo((own.address() as { port: number }).port, process.pid)).toBe(true);
    own.close();

    const port = await freePort();
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await once(child.stdout!, 'data');
      expect(await listenerBelongsTo(port, child.pid!)).toBe(true);
      expect(await listenerBelongsTo(port, process.pid)).toBe(true); // the child descends from this process
      const stranger = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
      try {
        expect(await listenerBelongsTo(port, stranger.pid!)).toBe(false);
      } finally {
        stranger.kill();
      }
    } finally {
      child.kill();
    }
  });
});
