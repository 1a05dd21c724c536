/**
 * The scale-out recipe: conf/nginx-upstream.conf in front of three `tsgi serve --fastcgi` backends. Each
 * backend's app answers with its pid (and the backend's name), so the test sees which one served: all three
 * take requests; one killed with SIGKILL costs no GET (nginx retries on the next backend); restarted, it is
 * used again.
 */
import { expect, it, afterAll, beforeAll } from 'vitest';
import { answeredBy, get, RECIPE_APP_DIR, spawnProcess, type GetResponse, type ProcessHandle } from './recipes-harness.js';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  describeWithServer,
  findFreePort,
  NGINX_BIN,
  startNginx,
  TSGI_BIN,
  waitFor,
  type ServerHandle,
} from './servers.js';

const MOUNT = '/app';
const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];

/** One tsgi FastCGI backend on 127.0.0.1:port, its app labelled `name`. */
async function startBackend(name: Name, port: number): Promise<ProcessHandle> {
  const proc = spawnProcess(process.execPath, [TSGI_BIN, 'serve', 'app.js', '--fastcgi', `127.0.0.1:${port}`, '--mount', MOUNT], {
    cwd: RECIPE_APP_DIR,
    env: { RECIPE_BACKEND: name },
  });
  try {
    await proc.waitForOutput(new RegExp(`tsgi: serving app\\.js over FastCGI at 127\\.0\\.0\\.1:${port}\\b`));
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}

describeWithServer('scale-out recipe: conf/nginx-upstream.conf over three tsgi FastCGI backends', allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()), () => {
  const ports = {} as Record<Name, number>;
  const backends = {} as Record<Name, ProcessHandle>;
  const retired: ProcessHandle[] = [];
  let nginx: ServerHandle;

  beforeAll(async () => {
    for (const name of NAMES) ports[name] = await findFreePort();
    for (const name of NAMES) backends[name] = await startBackend(name, ports[name]);
    nginx = await startNginx('nginx-upstream.conf', {
      label: 'nginx-upstream',
      vars: { BACKEND_A: `127.0.0.1:${ports.a}`, BACKEND_B: `127.0.0.1:${ports.b}`, BACKEND_C: `127.0.0.1:${ports.c}`, MOUNT },
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    for (const proc of [...Object.values(backends), ...retired]) await proc.stop();
  });

  /** GET through nginx; fails the test unless it is a 200 from one of the backends, whose name it returns. */
  async function getOk(path: string): Promise<{ name: Name; response: GetResponse }> {
    const response = await get(`${nginx.baseUrl}${MOUNT}${path}`);
    const logs = async (): Promise<string> => `${await nginx.errorLog()}\n${NAMES.map((n) => backends[n].output()).join('\n')}`;
    if (response.status !== 200) expect.fail(`GET ${path}: ${response.status} ${response.text}\n${await logs()}`);
    const name = response.json?.backend as Name;
    expect(NAMES).toContain(name);
    expect(answeredBy(response.json, backends[name].pid), `${name} answered with ${response.text}`).toBe(true);
    expect(response.json).toMatchObject({ scriptName: MOUNT, pathInfo: path.replace(/\?.*$/, '') });
    return { name, response };
  }

  it('spreads requests over all three backends', async () => {
    const seen = new Map<Name, number>();
    for (let i = 0; i < 30; i++) {
      const { name } = await getOk(`/spread/${i}`);
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b', 'c']);
    // Round robin: each of the three serves a third, give or take a retry.
    for (const count of seen.values()) expect(count).toBeGreaterThanOrEqual(5);
  });

  it('keeps every GET succeeding while one backend is killed, and uses it again once restarted', async () => {
    const killed = backends.b;
    await killed.kill9();
    expect(killed.exitStatus()).toBe('SIGKILL');
    retired.push(killed);

    const afterKill = new Set<Name>();
    for (let i = 0; i < 30; i++) afterKill.add((await getOk(`/after-kill/${i}`)).name);
    expect([...afterKill].sort()).toEqual(['a', 'c']);
    // nginx did try the dead backend (and then passed the request on, as every GET above succeeded).
    expect(await nginx.errorLog()).toContain(`127.0.0.1:${ports.b}`);

    backends.b = await startBackend('b', ports.b);
    // nginx tries it again after fail_timeout (10 s); every request meanwhile must still succeed.
    let requests = 0;
    await waitFor(
      'nginx to send a request to the restarted backend',
      async () => (await getOk(`/after-restart/${requests++}`)).name === 'b',
      60_000,
    );
    const again = new Set<Name>();
    for (let i = 0; i < 30; i++) again.add((await getOk(`/back/${i}`)).name);
    expect([...again].sort()).toEqual(['a', 'b', 'c']);
  });
});
