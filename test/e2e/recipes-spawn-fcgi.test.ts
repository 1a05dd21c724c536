/**
 * The spawn-fcgi recipe: conf/spawn-fcgi.sh run as shipped (settings from the environment), behind nginx
 * (conf/nginx-fastcgi.conf). spawn-fcgi opens the socket, puts it on fd 0 and execs `tsgi serve app.js`, which
 * detects the socket and serves FastCGI on it.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import {
  answeredBy,
  commandLine,
  get,
  listeningSockets,
  processTree,
  RECIPE_APP_DIR,
  spawnProcess,
  SPAWN_FCGI_BIN,
  type ProcessHandle,
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
  type ServerHandle,
} from './servers.js';

const SCRIPT = join(PROJECT_ROOT, 'conf', 'spawn-fcgi.sh');
const MOUNT = '/app';

const availability = allAvailable(
  checkFiles([{ path: SPAWN_FCGI_BIN, package: 'spawn-fcgi' }]),
  checkBinary(NGINX_BIN),
  checkFastCgiBuild(),
);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Runs conf/spawn-fcgi.sh with `settings` and waits for tsgi's startup line. */
async function runScript(settings: Record<string, string>): Promise<ProcessHandle> {
  const proc = spawnProcess('/bin/sh', [SCRIPT], {
    cwd: PROJECT_ROOT,
    env: { APP_DIR: RECIPE_APP_DIR, APP: 'app.js', MOUNT, TSGI: TSGI_BIN, ...settings },
  });
  cleanups.push(() => proc.stop());
  await proc.waitForOutput(/tsgi: serving app\.js over FastCGI at fd:0\b.*\(pid \d+\)/);
  return proc;
}

async function expectServes(nginx: ServerHandle, proc: ProcessHandle): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const response = await get(`${nginx.baseUrl}${MOUNT}/item/${i}?q=${i}`);
    expect(response.status, `${proc.output()}\n${await nginx.errorLog()}`).toBe(200);
    // -n: the shell exec'd spawn-fcgi, which exec'd tsgi: the pid started is the one serving.
    expect(answeredBy(response.json, proc.pid), response.text).toBe(true);
    expect(response.json).toMatchObject({ scriptName: MOUNT, pathInfo: `/item/${i}`, query: `q=${i}` });
  }
  expect(await commandLine(proc.pid)).toContain(`${TSGI_BIN} serve app.js --mount ${MOUNT}`);
}

async function expectCleanStop(proc: ProcessHandle): Promise<void> {
  proc.signal('SIGTERM');
  const status = await Promise.race([proc.exited, sleep(30_000).then(() => 'still running 30 s after SIGTERM')]);
  expect(status, proc.output()).toBe(0);
}

describeWithServer('spawn-fcgi recipe: conf/spawn-fcgi.sh behind nginx', availability, () => {
  it('serves FastCGI on the TCP socket spawn-fcgi opened (fd 0)', async () => {
    const port = await findFreePort();
    const proc = await runScript({ FCGI_ADDR: '127.0.0.1', FCGI_PORT: String(port) });
    expect(await listeningSockets(await processTree(proc.pid))).toEqual({ tcp: [`127.0.0.1:${port}`], unix: [] });
    const nginx = await startNginx('nginx-fastcgi.conf', { label: 'nginx-spawn-fcgi', vars: { BACKEND: `127.0.0.1:${port}`, MOUNT } });
    cleanups.push(() => nginx.stop());
    await expectServes(nginx, proc);
    await expectCleanStop(proc);
  });

  it('serves FastCGI on a unix socket with the mode and group the script sets', async () => {
    const dir = await makeScratchDir('spawn-fcgi');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const socketPath = join(dir, 'app.sock');
    const account = serverAccount();
    const proc = await runScript({ FCGI_SOCKET: socketPath, FCGI_SOCKET_MODE: '0660', FCGI_SOCKET_GROUP: account.group });
    expect(await listeningSockets(await processTree(proc.pid))).toEqual({ tcp: [], unix: [socketPath] });
    const { stat } = await import('node:fs/promises');
    const info = await stat(socketPath);
    expect(info.mode & 0o777).toBe(0o660);
    expect(info.gid).toBe(account.gid);
    // nginx's worker runs as `account` (www-data under root): it connects through the group permission.
    const nginx = await startNginx('nginx-fastcgi.conf', { label: 'nginx-spawn-fcgi-unix', vars: { BACKEND: `unix:${socketPath}`, MOUNT } });
    cleanups.push(() => nginx.stop());
    await expectServes(nginx, proc);
    await expectCleanStop(proc);
  });
});
