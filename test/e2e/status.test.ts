/**
 * Health checks and metrics behind real web servers: `tsgi serve --fastcgi --workers 2 --ping-path
 * --status-path --slow-log` behind nginx (conf/nginx-fastcgi.conf) and Apache mod_proxy_fcgi
 * (conf/apache-proxy-fcgi.conf). The ping answers through the web server; the status page lists the process
 * tree the test finds on the machine, counts requests, shows a request in flight, keeps a slot's counters
 * when its worker is killed and replaced; the slow log names a slow request; `tsgi ping` checks the backend
 * directly, as the Docker and Kubernetes recipes in conf/ run it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { get } from './recipes-harness.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  findDescendants,
  NGINX_BIN,
  PROJECT_ROOT,
  PROXY_FCGI_MODULE,
  startApache,
  startBackend,
  startNginx,
  TSGI_BIN,
  waitFor,
  type BackendHandle,
  type ServerHandle,
} from './servers.js';

const MOUNT = '/app';
const APP = 'test/e2e/fixtures/status/app.mjs';
const FLAGS = ['--workers', '2', '--ping-path', `${MOUNT}/ping`, '--status-path', `${MOUNT}/status`, '--slow-log', '0.3'];

interface StatusJson {
  master: { pid: number };
  totals: { workers: number; requests: number; slow: number; busy: number };
  workers: Array<{ id: number; pid: number; state: string; requests: number; restarts: number; lastRestart: string | null; running: Array<{ method: string; uri: string; seconds: number }> }>;
}

const webServers = [
  {
    name: 'nginx',
    availability: allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()),
    start: (backend: BackendHandle) => startNginx('nginx-fastcgi.conf', { label: 'nginx-status', vars: { BACKEND: backend.nginxAddress, MOUNT } }),
  },
  {
    name: 'Apache mod_proxy_fcgi',
    availability: allAvailable(checkBinary(APACHE_BIN), checkFiles([{ path: PROXY_FCGI_MODULE, package: 'apache2', executable: false }]), checkFastCgiBuild()),
    start: (backend: BackendHandle) => startApache('apache-proxy-fcgi.conf', { label: 'apache-status', vars: { BACKEND_URL: `fcgi://${backend.address}`, MOUNT } }),
  },
] as const;

for (const webServer of webServers) {
  describeWithServer(`status, ping and slow log behind ${webServer.name}`, webServer.availability, () => {
    let backend: BackendHandle;
    let server: ServerHandle;

    beforeAll(async () => {
      backend = await startBackend(APP, 'tcp', { mount: MOUNT, args: FLAGS });
      server = await webServer.start(backend);
    });
    afterAll(async () => {
      await server?.stop();
      await backend?.stop();
    });

    const status = async (): Promise<StatusJson> => {
      const response = await get(`${server.baseUrl}${MOUNT}/status?json`);
      if (response.status !== 200 || response.json === undefined) expect.fail(`status: ${response.status} ${response.text}\n${backend.output()}`);
      return response.json as unknown as StatusJson;
    };

    it('answers the ping path itself, through the web server', async () => {
      const response = await get(`${server.baseUrl}${MOUNT}/ping`);
      expect(response.status).toBe(200);
      expect(response.text).toBe('pong\n');
    });

    it('shows the process tree, the requests served and a request in flight', async () => {
      for (let i = 0; i < 10; i++) expect((await get(`${server.baseUrl}${MOUNT}/hello/${i}`)).status).toBe(200);
      const slow = get(`${server.baseUrl}${MOUNT}/slow?ms=1500`);
      const seen = await waitFor('the slow request on the status page', async () => {
        const page = await status();
        return page.workers.some((worker) => worker.running.some((request) => request.uri.startsWith(`${MOUNT}/slow`) && request.seconds >= 0.3)) && page;
      });
      const workerPids = await findDescendants(backend.pid, 'cluster/worker');
      expect(seen.master.pid).toBe(backend.pid);
      expect(seen.totals.workers).toBe(2);
      expect(seen.workers.map((worker) => worker.pid).sort()).toEqual([...workerPids].sort());
      expect(seen.workers.map((worker) => worker.id)).toEqual([1, 2]);
      expect(seen.totals.requests).toBeGreaterThanOrEqual(11);
      expect(seen.totals.busy).toBeGreaterThanOrEqual(1);
      const busy = seen.workers.find((worker) => worker.running.length > 0);
      expect(busy?.state).toBe('busy');
      expect(busy?.running[0]?.method).toBe('GET');
      expect((await slow).status).toBe(200);
      // The slow log named it (the worker's stderr is the backend's output).
      await waitFor('the slow log line', () => /slow request \(--slow-log 0\.3\): GET \/app\/slow\?ms=1500 still running after 0\.\d s/.test(backend.output()));
      expect((await status()).totals.slow).toBeGreaterThanOrEqual(1);

      const text = await get(`${server.baseUrl}${MOUNT}/status`);
      expect(text.status).toBe(200);
      expect(text.text).toContain(`master pid:        ${backend.pid}`);
      expect(text.text).toMatch(/^worker 1: pid \d+, (idle|busy)/m);
    });

    it('exposes OpenMetrics whose counters survive a worker killed and replaced', async () => {
      const metrics = async (): Promise<Map<string, number>> => {
        const response = await get(`${server.baseUrl}${MOUNT}/status?openmetrics`);
        expect(response.status).toBe(200);
        expect(response.text.endsWith('# EOF\n')).toBe(true);
        const values = new Map<string, number>();
        for (const line of response.text.split('\n')) {
          const match = /^(tsgi_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
          if (match) values.set(match[1] as string, Number(match[2]));
        }
        return values;
      };
      for (let i = 0; i < 6; i++) await get(`${server.baseUrl}${MOUNT}/count/${i}`);
      const before = await metrics();
      expect(before.get('tsgi_workers')).toBe(2);
      const total = (values: Map<string, number>): number =>
        (values.get('tsgi_requests_total{worker="1"}') ?? 0) + (values.get('tsgi_requests_total{worker="2"}') ?? 0);
      expect(total(before)).toBeGreaterThanOrEqual(6);
      // Kill worker 1: the master starts another in its slot.
      const page = await status();
      const victim = page.workers.find((worker) => worker.id === 1);
      expect(victim).toBeDefined();
      const countBefore = before.get('tsgi_requests_total{worker="1"}') ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 1_200)); // One periodic report after the last request.
      process.kill(victim?.pid as number, 'SIGKILL');
      // (A web server may answer one request on a kept-alive connection to the killed worker with 502/503.)
      const after = await waitFor('worker 1 replaced', async () => {
        const response = await get(`${server.baseUrl}${MOUNT}/status?json`);
        if (response.status !== 200 || response.json === undefined) return false;
        const next = response.json as unknown as StatusJson;
        const slot = next.workers.find((worker) => worker.id === 1);
        return slot !== undefined && slot.pid !== victim?.pid && slot.state !== 'booting' && next;
      }, 20_000);
      const slot1 = after.workers.find((worker) => worker.id === 1);
      expect(slot1?.restarts).toBe(1);
      expect(slot1?.lastRestart).toMatch(/^crash: exited with signal SIGKILL/);
      const later = await metrics();
      expect(later.get('tsgi_requests_total{worker="1"}') ?? 0).toBeGreaterThanOrEqual(countBefore);
      expect(later.get('tsgi_worker_restarts_total{reason="crash"}')).toBe(1);
    });

    it('tsgi ping checks the backend directly (what conf/docker and conf/kubernetes run)', async () => {
      const ok = await execa(process.execPath, [TSGI_BIN, 'ping', '--fastcgi', backend.address, '--path', `${MOUNT}/ping`], { reject: false });
      expect(ok.exitCode, ok.stderr).toBe(0);
      expect(ok.stdout).toMatch(/answered 200 OK/);
    });
  });
}

describeWithServer('the status page is refused to addresses outside --status-allow', allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()), () => {
  let backend: BackendHandle;
  let server: ServerHandle;
  beforeAll(async () => {
    backend = await startBackend(APP, 'tcp', { mount: MOUNT, args: [...FLAGS, '--status-allow', '10.0.0.0/8'] });
    server = await startNginx('nginx-fastcgi.conf', { label: 'nginx-status-allow', vars: { BACKEND: backend.nginxAddress, MOUNT } });
  });
  afterAll(async () => {
    await server?.stop();
    await backend?.stop();
  });

  it('403 for 127.0.0.1, while the ping still answers', async () => {
    const page = await get(`${server.baseUrl}${MOUNT}/status?json`);
    expect(page.status).toBe(403);
    expect(page.text).not.toContain('pid');
    expect((await get(`${server.baseUrl}${MOUNT}/ping`)).status).toBe(200);
  });
});

describeWithServer('the health check recipes run tsgi ping as written', checkFastCgiBuild(), () => {
  let backend: BackendHandle;
  beforeAll(async () => {
    backend = await startBackend(APP, 'tcp', { args: ['--ping-path', '/ping'] });
  });
  afterAll(async () => backend?.stop());

  /** The command of a recipe, with the recipe's address replaced by the backend's. */
  const runRecipe = async (argv: string[]): Promise<number> => {
    const [program, ...rest] = argv;
    expect(program === 'npx' || program === 'tsgi').toBe(true);
    const args = (program === 'npx' ? rest.slice(1) : rest).map((arg) => arg.replace(/^127\.0\.0\.1:9000$/, backend.address));
    expect(args[0]).toBe('ping');
    const result = await execa(process.execPath, [TSGI_BIN, ...args], { reject: false, cwd: PROJECT_ROOT });
    return result.exitCode ?? -1;
  };

  it('conf/docker/Dockerfile: the HEALTHCHECK command exits 0 for a serving backend, 1 for a stopped one', async () => {
    const dockerfile = await readFile(join(PROJECT_ROOT, 'conf', 'docker', 'Dockerfile'), 'utf8');
    const match = /^HEALTHCHECK .*CMD (\[.*\])\s*$/m.exec(dockerfile);
    expect(match, 'a HEALTHCHECK ... CMD ["..."] line').not.toBeNull();
    const argv = JSON.parse(match?.[1] as string) as string[];
    expect(await runRecipe(argv)).toBe(0);
  });

  it('conf/kubernetes/deployment.yaml: the liveness and readiness exec probes exit 0', async () => {
    const yaml = await readFile(join(PROJECT_ROOT, 'conf', 'kubernetes', 'deployment.yaml'), 'utf8');
    const commands = [...yaml.matchAll(/command: (\[.*\])/g)].map((match) => JSON.parse(match[1] as string) as string[]);
    expect(commands.length).toBeGreaterThanOrEqual(2);
    for (const command of commands) expect(await runRecipe(command)).toBe(0);
    await backend.stop();
    expect(await runRecipe(commands[0] as string[])).toBe(1);
  });
});
