/**
 * The systemd recipes (conf/systemd/*.socket + *.service), run the way systemd runs them. There is no systemd
 * as PID 1 here, so systemd-socket-activate plays its part: it listens on the unit's ListenStream= (a free
 * loopback port, or a unix socket in a scratch directory), waits for the first connection, then execs the
 * service's ExecStart= in its own process with LISTEN_FDS=1 and LISTEN_PID=its pid, the socket on fd 3. The test
 * reads ListenStream=, SocketMode=, WorkingDirectory=, Environment=, ExecStart=, KillSignal= and TimeoutStopSec=
 * from the shipped files (replacing /srv/app and the port), so the files are what is tested.
 */
import { chmod, chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  answeredBy,
  commandLine,
  execStartArgv,
  get,
  listenBacklog,
  listeningSockets,
  processTree,
  readUnit,
  RECIPE_APP_DIR,
  SOCKET_ACTIVATE_BIN,
  somaxconn,
  spawnProcess,
  SS_BIN,
  SYSTEMD_ANALYZE_BIN,
  timeSpanMs,
  unitEnvironment,
  type ProcessHandle,
  type UnitFile,
} from './recipes-harness.js';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  findFreePort,
  makeScratchDir,
  NGINX_BIN,
  PROJECT_ROOT,
  serverAccount,
  sleep,
  startNginx,
  TSGI_BIN,
  waitFor,
  type ServerHandle,
} from './servers.js';

const availability = allAvailable(
  checkFiles([
    { path: SOCKET_ACTIVATE_BIN, package: 'systemd' },
    { path: SS_BIN, package: 'iproute2' },
    { path: SYSTEMD_ANALYZE_BIN, package: 'systemd' },
  ]),
  checkBinary(NGINX_BIN),
  checkFastCgiBuild(),
);

/** What the units call the app's home and the tsgi script, and what stands in for them here. */
const SUBSTITUTIONS = { '/srv/app/node_modules/.bin/tsgi': TSGI_BIN };

/** Everything a test started, stopped after it whatever happened. */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Starts `service`'s ExecStart= under systemd-socket-activate listening on `listen`, as systemd would for its
 * .socket unit: cwd = WorkingDirectory=, Environment= passed on, `argv` optionally edited by `edit`.
 */
async function activate(service: UnitFile, listen: string, options: { datagram?: boolean; edit?: (argv: string[]) => string[] } = {}): Promise<ProcessHandle> {
  expect(service.value('Service', 'WorkingDirectory')).toBe('/srv/app');
  let argv = execStartArgv(service.value('Service', 'ExecStart'), SUBSTITUTIONS);
  expect(argv[0]).toBe(TSGI_BIN);
  if (options.edit) argv = options.edit(argv);
  const env = unitEnvironment(service);
  const args = [
    `--listen=${listen}`,
    ...(options.datagram ? ['--datagram'] : []),
    ...Object.entries(env).map(([name, value]) => `--setenv=${name}=${value}`),
    '--',
    ...argv,
  ];
  const proc = spawnProcess(SOCKET_ACTIVATE_BIN, args, { cwd: RECIPE_APP_DIR });
  cleanups.push(() => proc.stop());
  await proc.waitForOutput(/Listening on .* as 3\./);
  return proc;
}

/** Asserts the activator has not started tsgi yet: it is still systemd-socket-activate, waiting. */
async function expectNotStarted(proc: ProcessHandle): Promise<void> {
  expect(await commandLine(proc.pid)).toMatch(/systemd-socket-activate/);
  expect(proc.output()).not.toMatch(/tsgi: serving/);
}

/** Sends KillSignal= and expects a clean exit within TimeoutStopSec=. */
async function expectCleanStop(service: UnitFile, proc: ProcessHandle): Promise<void> {
  const signal = service.value('Service', 'KillSignal') as NodeJS.Signals;
  expect(signal).toBe('SIGTERM');
  const limitMs = timeSpanMs(service.value('Service', 'TimeoutStopSec'));
  proc.signal(signal);
  const status = await Promise.race([proc.exited, sleep(limitMs).then(() => 'still running after TimeoutStopSec')]);
  expect(status, proc.output()).toBe(0);
}

/** The value following `flag` in argv. */
function flagValue(argv: string[], flag: string): string {
  const index = argv.indexOf(flag);
  if (index < 0 || argv[index + 1] === undefined) throw new Error(`e2e: ExecStart= has no ${flag} VALUE (${argv.join(' ')})`);
  return argv[index + 1] as string;
}

/** A group's gid from /etc/group, or undefined. */
function gidOf(group: string): number | undefined {
  const entry = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === group);
  return entry?.[2] !== undefined ? Number(entry[2]) : undefined;
}

describeWithServer('systemd recipe: the unit files', availability, () => {
  it('pass systemd-analyze verify (no unknown keys or bad values), with ExecStart= pointing at this checkout', async () => {
    const dir = await makeScratchDir('systemd-units');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const names = ['tsgi-fastcgi.socket', 'tsgi-fastcgi.service', 'tsgi-http.socket', 'tsgi-http.service'];
    for (const name of names) {
      let text = await readFile(join(PROJECT_ROOT, 'conf', 'systemd', name), 'utf8');
      // The only complaint expected from the files as shipped: /srv/app/node_modules/.bin/tsgi does not exist here.
      for (const [from, to] of Object.entries(SUBSTITUTIONS)) text = text.split(from).join(to);
      await writeFile(join(dir, name), text);
    }
    const proc = spawnProcess(SYSTEMD_ANALYZE_BIN, ['verify', ...names.map((name) => join(dir, name))], { cwd: dir });
    cleanups.push(() => proc.stop());
    const status = await Promise.race([proc.exited, sleep(60_000).then(() => 'timed out')]);
    expect(status, proc.output()).toBe(0);
    expect(proc.output().trim()).toBe('');
  });
});

describeWithServer('systemd recipe: tsgi-http.socket + tsgi-http.service (socket activation, HTTP)', availability, () => {
  it('the connection that triggers activation is served, on the activated socket and no other', async () => {
    const socket = await readUnit('tsgi-http.socket');
    const service = await readUnit('tsgi-http.service');
    const shipped = socket.value('Socket', 'ListenStream');
    expect(shipped).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(socket.value('Socket', 'Accept')).toBe('no');
    expect(execStartArgv(service.value('Service', 'ExecStart'))).toContain('systemd');
    const port = await findFreePort();
    const proc = await activate(service, shipped.replace(/:\d+$/, `:${port}`));
    await expectNotStarted(proc);

    // This connection is what makes the activator exec tsgi: it waits in the socket's queue until tsgi accepts.
    const first = await get(`http://127.0.0.1:${port}/first?x=1`);
    expect(first.status, proc.output()).toBe(200);
    expect(answeredBy(first.json, proc.pid), first.text).toBe(true);
    expect(first.json).toMatchObject({ method: 'GET', scriptName: '', pathInfo: '/first', query: 'x=1', listenPid: null, listenFds: null });
    // The master prints its line once it hears the worker is ready, which may be just after the first answer.
    await waitFor('the startup line', () => /tsgi: serving app\.js over HTTP at fd:3\b/.test(proc.output()));
    expect(proc.output()).toMatch(/tsgi: serving app\.js over HTTP at fd:3\b/);
    expect(await commandLine(proc.pid)).toContain(`${TSGI_BIN} serve app.js --http systemd`);

    const sockets = await listeningSockets(await processTree(proc.pid));
    expect(sockets).toEqual({ tcp: [`127.0.0.1:${port}`], unix: [] });
    // Node re-issues listen(2) on the inherited socket; tsgi asks for the kernel's ceiling, not Node's 511.
    expect(await listenBacklog({ port })).toBe(await somaxconn());

    for (let i = 0; i < 5; i++) {
      const again = await get(`http://127.0.0.1:${port}/again/${i}`);
      expect(again.status).toBe(200);
      expect(answeredBy(again.json, proc.pid)).toBe(true);
    }
    await expectCleanStop(service, proc);
  });

  it('without a transport flag a socket-activated tsgi serves HTTP on the socket', async () => {
    const service = await readUnit('tsgi-http.service');
    const port = await findFreePort();
    const proc = await activate(service, `127.0.0.1:${port}`, {
      edit: (argv) => argv.filter((word, index) => word !== '--http' && argv[index - 1] !== '--http'),
    });
    expect(await commandLine(proc.pid)).not.toContain('--http');
    const response = await get(`http://127.0.0.1:${port}/bare`);
    expect(response.status, proc.output()).toBe(200);
    expect(answeredBy(response.json, proc.pid)).toBe(true);
    expect(proc.output()).toMatch(/over HTTP at fd:3\b/);
    expect(await commandLine(proc.pid)).not.toContain('--http');
  });

  it('refuses the socket when ExecStart= runs tsgi through a wrapper (LISTEN_PID is not its pid)', async () => {
    const service = await readUnit('tsgi-http.service');
    const port = await findFreePort();
    // A shell that runs tsgi as its child instead of exec'ing it (the trailing command keeps it from exec'ing).
    const proc = await activate(service, `127.0.0.1:${port}`, {
      edit: (argv) => ['/bin/sh', '-c', `${argv.join(' ')}; echo "tsgi exit status $?"`],
    });
    const connection = connect({ host: '127.0.0.1', port });
    connection.on('error', () => {});
    cleanups.push(async () => void connection.destroy());
    await proc.waitForOutput(/tsgi exit status \d+/, 30_000);
    expect(proc.output()).toMatch(/tsgi exit status 1/);
    expect(proc.output()).toMatch(/systemd/);
    expect(proc.output()).not.toMatch(/tsgi: serving/);
  });

  it('refuses a datagram socket with a clear error', async () => {
    const service = await readUnit('tsgi-http.service');
    const port = await findFreePort();
    const proc = await activate(service, `127.0.0.1:${port}`, { datagram: true });
    const udp = createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => udp.close(() => resolve())));
    // A datagram is what triggers activation of a datagram socket; send until tsgi has started and failed.
    await waitFor(
      'tsgi to refuse the datagram socket',
      async () => {
        udp.send('wake up', port, '127.0.0.1');
        return proc.exitStatus() !== null;
      },
      30_000,
    );
    expect(proc.exitStatus(), proc.output()).toBe(1);
    expect(proc.output()).toMatch(/fd 3 from systemd is not a listening stream socket but a UDP socket/);
  });
});

describeWithServer('systemd recipe: tsgi-fastcgi.socket + tsgi-fastcgi.service behind nginx (socket activation, FastCGI)', availability, () => {
  let nginx: ServerHandle | undefined;
  afterEach(async () => {
    await nginx?.stop();
    nginx = undefined;
  });

  async function deploy(variant: 'unix' | 'tcp'): Promise<void> {
    const socket = await readUnit('tsgi-fastcgi.socket');
    const service = await readUnit('tsgi-fastcgi.service');
    expect(socket.value('Socket', 'Accept')).toBe('no');
    const argv = execStartArgv(service.value('Service', 'ExecStart'), SUBSTITUTIONS);
    expect(flagValue(argv, '--fastcgi')).toBe('systemd');
    const mount = flagValue(argv, '--mount');

    let listen: string;
    let backend: string;
    let socketPath = '';
    let port = 0;
    if (variant === 'unix') {
      const shipped = socket.value('Socket', 'ListenStream');
      expect(shipped).toBe('/run/tsgi/app.sock');
      const dir = await makeScratchDir('systemd-fcgi');
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      socketPath = join(dir, 'app.sock');
      listen = socketPath;
      backend = `unix:${socketPath}`;
    } else {
      const alternatives = socket.commented('Socket', 'ListenStream');
      expect(alternatives).toEqual(['127.0.0.1:9000']);
      port = await findFreePort();
      listen = (alternatives[0] as string).replace(/:\d+$/, `:${port}`);
      backend = listen;
    }
    const proc = await activate(service, listen);
    if (variant === 'unix') {
      // What systemd does with SocketMode= and SocketGroup= (systemd-socket-activate has no such options).
      await waitFor('the unix socket', () => stat(socketPath).then(() => true, () => false));
      await chmod(socketPath, Number.parseInt(socket.value('Socket', 'SocketMode'), 8));
      const account = serverAccount();
      if (process.getuid?.() === 0) await chown(socketPath, 0, gidOf(socket.value('Socket', 'SocketGroup')) ?? account.gid);
    }
    nginx = await startNginx('nginx-fastcgi.conf', { label: `nginx-systemd-${variant}`, vars: { BACKEND: backend, MOUNT: mount } });
    await expectNotStarted(proc);

    const first = await get(`${nginx.baseUrl}${mount}/hello/world?x=1`);
    expect(first.status, `${proc.output()}\n${await nginx.errorLog()}`).toBe(200);
    expect(answeredBy(first.json, proc.pid), first.text).toBe(true);
    expect(first.json).toMatchObject({ scriptName: mount, pathInfo: '/hello/world', query: 'x=1', listenPid: null, listenFds: null });
    // The master prints its line once it hears the worker is ready, which may be just after the first answer.
    await waitFor('the startup line', () => /tsgi: serving app\.js over FastCGI at fd:3\b/.test(proc.output()));
    expect(proc.output()).toMatch(/tsgi: serving app\.js over FastCGI at fd:3\b/);

    const sockets = await listeningSockets(await processTree(proc.pid));
    expect(sockets).toEqual(variant === 'unix' ? { tcp: [], unix: [socketPath] } : { tcp: [`127.0.0.1:${port}`], unix: [] });
    expect(await listenBacklog(variant === 'unix' ? { path: socketPath } : { port })).toBe(await somaxconn());

    for (let i = 0; i < 20; i++) {
      const again = await get(`${nginx.baseUrl}${mount}/n/${i}`);
      expect(again.status).toBe(200);
      expect(answeredBy(again.json, proc.pid)).toBe(true);
      expect(again.json?.pathInfo).toBe(`/n/${i}`);
    }
    await expectCleanStop(service, proc);
  }

  it('on the unix socket of ListenStream= (as shipped)', () => deploy('unix'));
  it('on the TCP port of the commented ListenStream= alternative', () => deploy('tcp'));
});
