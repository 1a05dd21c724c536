import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  inheritedBacklog,
  inspectDescriptor,
  SD_LISTEN_FDS_START,
  socketActivationTarget,
  type DescriptorInfo,
} from '../../src/servers/listen.js';

const PID = 4242;
const LISTENING: DescriptorInfo = { kind: 'listening', description: 'a listening TCP socket' };

/** An inspector that answers `info` for every descriptor and records which ones it was asked about. */
function inspector(info: DescriptorInfo = LISTENING): { inspect: (fd: number) => DescriptorInfo; asked: number[] } {
  const asked: number[] = [];
  return { asked, inspect: (fd) => (asked.push(fd), info) };
}

describe('socketActivationTarget: the LISTEN_* variables', () => {
  it('returns fd 3 when LISTEN_PID is this process and LISTEN_FDS is 1, and removes the variables', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'web', PATH: '/bin' };
    const { inspect, asked } = inspector();
    expect(socketActivationTarget(env, PID, { inspect })).toEqual({ kind: 'fd', fd: SD_LISTEN_FDS_START });
    expect(SD_LISTEN_FDS_START).toBe(3);
    expect(asked).toEqual([3]);
    expect(env).toEqual({ PATH: '/bin' });
  });

  it('ignores (and removes) variables meant for another process: a wrapper such as npx got them', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID + 1), LISTEN_FDS: '1' };
    const { inspect, asked } = inspector();
    expect(socketActivationTarget(env, PID, { inspect })).toBeUndefined();
    expect(asked).toEqual([]);
    expect(env).toEqual({});
  });

  it('is undefined without the variables, or with only one of them', () => {
    const { inspect, asked } = inspector();
    expect(socketActivationTarget({}, PID, { inspect })).toBeUndefined();
    const onlyFds: NodeJS.ProcessEnv = { LISTEN_FDS: '1' };
    expect(socketActivationTarget(onlyFds, PID, { inspect })).toBeUndefined();
    expect(onlyFds).toEqual({});
    expect(socketActivationTarget({ LISTEN_PID: String(PID) }, PID, { inspect })).toBeUndefined();
    expect(asked).toEqual([]);
  });

  it('is undefined when systemd passed no socket (LISTEN_FDS=0)', () => {
    expect(socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '0' }, PID, inspector())).toBeUndefined();
  });

  it('says why when the socket is required and this process was not activated', () => {
    const required = { required: true, ...inspector() };
    expect(() => socketActivationTarget({}, PID, required)).toThrow(/LISTEN_PID and LISTEN_FDS are not set/);
    expect(() => socketActivationTarget({ LISTEN_PID: '17', LISTEN_FDS: '1' }, PID, required)).toThrow(
      /LISTEN_PID=17 names another process than this one \(pid 4242\).*npx/,
    );
    expect(() => socketActivationTarget({ LISTEN_PID: 'abc', LISTEN_FDS: '1' }, PID, required)).toThrow(/LISTEN_PID=abc/);
    expect(() => socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '0' }, PID, required)).toThrow(/LISTEN_FDS=0/);
  });

  it('refuses a LISTEN_FDS that is not a number, and still removes the variables', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: 'three', LISTEN_FDNAMES: 'x' };
    expect(() => socketActivationTarget(env, PID, inspector())).toThrow(/LISTEN_FDS=three is not a number/);
    expect(env).toEqual({});
    expect(() => socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '-1' }, PID, inspector())).toThrow(/LISTEN_FDS=-1/);
  });

  it('takes the first of several sockets and says so', () => {
    const lines: string[] = [];
    const { inspect, asked } = inspector();
    const env = { LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'fcgi:http:admin' };
    expect(socketActivationTarget(env, PID, { inspect, warn: (line) => lines.push(line) })).toEqual({ kind: 'fd', fd: 3 });
    expect(asked).toEqual([3]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/systemd passed 3 sockets \(fd 3-5\); serving on the first, fd 3 \("fcgi"\)/);
  });

  it('picks a socket by its FileDescriptorName (LISTEN_FDNAMES) without a warning', () => {
    const lines: string[] = [];
    const { inspect, asked } = inspector();
    const env = { LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'fcgi:http:admin' };
    expect(socketActivationTarget(env, PID, { inspect, name: 'http', warn: (line) => lines.push(line) })).toEqual({ kind: 'fd', fd: 4 });
    expect(asked).toEqual([4]);
    expect(lines).toEqual([]);
  });

  it('refuses a name that is not there, or names that do not match the count', () => {
    const env = (): NodeJS.ProcessEnv => ({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b' });
    expect(() => socketActivationTarget(env(), PID, { ...inspector(), name: 'c' })).toThrow(/no socket named "c" \(LISTEN_FDNAMES=a:b\)/);
    expect(() => socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '2' }, PID, { ...inspector(), name: 'a' })).toThrow(
      /without names to match \(LISTEN_FDNAMES=unset; set FileDescriptorName=/,
    );
    expect(() =>
      socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, PID, { ...inspector(), name: 'a' }),
    ).toThrow(/without names to match/);
  });

  it.each([
    [{ kind: 'datagram', description: 'a UDP socket' }, /fd 3 from systemd is not a listening stream socket but a UDP socket.*ListenStream=/],
    [{ kind: 'connected', description: 'a TCP socket that is not listening' }, /but a TCP socket that is not listening.*Accept=no/],
    [{ kind: 'not-socket', description: 'a regular file' }, /but a regular file/],
    [{ kind: 'closed', description: 'not an open descriptor' }, /but not an open descriptor/],
  ] as const)('refuses a descriptor that is %o', (info, message) => {
    expect(() => socketActivationTarget({ LISTEN_PID: String(PID), LISTEN_FDS: '1' }, PID, inspector(info))).toThrow(message);
  });

  it('names the socket in the error when systemd named it', () => {
    const env = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'tsgi-http.socket' };
    expect(() => socketActivationTarget(env, PID, inspector({ kind: 'datagram', description: 'a UDP socket' }))).toThrow(
      /fd 3 \("tsgi-http.socket"\) from systemd/,
    );
  });

  it('gives a socket /proc cannot classify the benefit of the doubt', () => {
    const env = { LISTEN_PID: String(PID), LISTEN_FDS: '1' };
    expect(socketActivationTarget(env, PID, inspector({ kind: 'socket', description: 'a socket' }))).toEqual({ kind: 'fd', fd: 3 });
  });

  describe('with process.env and process.pid by default', () => {
    const saved = { ...process.env };
    afterEach(() => {
      for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    it('reads and clears process.env', () => {
      process.env.LISTEN_PID = String(process.pid + 1);
      process.env.LISTEN_FDS = '1';
      process.env.LISTEN_FDNAMES = 'x';
      expect(socketActivationTarget()).toBeUndefined();
      expect(process.env.LISTEN_PID).toBeUndefined();
      expect(process.env.LISTEN_FDS).toBeUndefined();
      expect(process.env.LISTEN_FDNAMES).toBeUndefined();
    });

    it('checks the real descriptor 3 when the variables name this process', () => {
      process.env.LISTEN_PID = String(process.pid);
      process.env.LISTEN_FDS = '1';
      // Whatever fd 3 is in the test runner (an IPC channel, a pipe, or nothing), it is not a listening socket.
      const info = inspectDescriptor(3);
      expect(info.kind).not.toBe('listening');
      expect(() => socketActivationTarget()).toThrow(/fd 3 from systemd is not a listening stream socket/);
    });
  });
});

/** The descriptor number behind a net.Server, net.Socket or dgram socket (libuv's handle; Unix only). */
function fdOf(handleOwner: Server | Socket | UdpSocket): number {
  const fd = (handleOwner as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no descriptor behind this handle');
  return fd;
}

function listen(server: Server, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
  });
}

describe('inspectDescriptor on real descriptors', () => {
  let dir: string;
  const cleanups: Array<() => void | Promise<void>> = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsgi-listen-'));
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('recognises a listening TCP socket and a connected one', async () => {
    const server = createServer((socket) => socket.on('error', () => {}));
    await listen(server, 0, '127.0.0.1');
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    expect(inspectDescriptor(fdOf(server))).toEqual({ kind: 'listening', description: 'a listening TCP socket' });

    const address = server.address();
    const client = connect({ host: '127.0.0.1', port: typeof address === 'object' && address ? address.port : 0 });
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    cleanups.push(() => void client.destroy());
    expect(inspectDescriptor(fdOf(client))).toEqual({ kind: 'connected', description: 'a TCP socket that is not listening' });
  });

  it('recognises a listening unix socket and a connected one', async () => {
    const path = join(dir, 'app.sock');
    const server = createServer((socket) => socket.on('error', () => {}));
    await listen(server, path);
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    expect(inspectDescriptor(fdOf(server))).toEqual({ kind: 'listening', description: 'a listening unix socket' });

    const client = connect(path);
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    cleanups.push(() => void client.destroy());
    expect(inspectDescriptor(fdOf(client)).kind).toBe('connected');
  });

  it('recognises a UDP socket as a datagram socket', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => udp.close(() => resolve())));
    expect(inspectDescriptor(fdOf(udp))).toEqual({ kind: 'datagram', description: 'a UDP socket' });
  });

  it('tells a file and a closed descriptor from a socket', () => {
    const file = openSync(join(dir, 'plain.txt'), 'w');
    try {
      expect(inspectDescriptor(file)).toEqual({ kind: 'not-socket', description: 'a regular file' });
    } finally {
      closeSync(file);
    }
    expect(inspectDescriptor(file)).toEqual({ kind: 'closed', description: 'not an open descriptor' });
  });
});

describe('inheritedBacklog', () => {
  it('is net.core.somaxconn when /proc has it', async () => {
    const { readFile } = await import('node:fs/promises');
    const somaxconn = await readFile('/proc/sys/net/core/somaxconn', 'latin1').then(
      (text) => Number(text.trim()),
      () => 511,
    );
    expect(inheritedBacklog()).toBe(somaxconn);
    expect(inheritedBacklog()).toBeGreaterThan(0);
  });

  it('falls back to 511 when /proc cannot tell', () => {
    const unreadable = (path: string): string => {
      throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    };
    expect(inheritedBacklog(unreadable)).toBe(511);
    expect(inheritedBacklog(() => 'not a number\n')).toBe(511);
    expect(inheritedBacklog(() => '0\n')).toBe(511);
    expect(inheritedBacklog(() => '4096\n')).toBe(4096);
  });
});
