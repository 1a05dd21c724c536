/**
 * End-to-end tests of the process manager (`tsgi serve --workers N`): real master and worker processes,
 * real sockets, load from wrk on loopback, nginx in front for FastCGI. Every load run is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allAvailable,
  checkBinary,
  checkFastCgiBuild,
  describeWithServer,
  makeScratchDir,
  NGINX_BIN,
  NODE_DIR,
  PROJECT_ROOT,
  sleep,
  startBackend,
  startNginx,
  TSGI_BIN,
  waitFor,
} from './servers.js';

const FIXTURES = join(PROJECT_ROOT, 'test/e2e/fixtures/workers');
const APP = join(FIXTURES, 'app.ts');
const WRK = '/usr/bin/wrk';
const START_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Master {
  /** "http://127.0.0.1:PORT" (no trailing slash). */
  base: string;
  pid: number;
  /** The pid of the process spawned (the wrapper when there is one). */
  spawnedPid: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

const started: Master[] = [];

/** Starts `tsgi serve APP --http 127.0.0.1:0 ARGS` (optionally under a wrapper) and waits for its startup line. */
async function startMaster(args: string[], options: { app?: string; env?: Record<string, string>; wrapper?: 'sh' | 'npx' } = {}): Promise<Master> {
  const serveArgs = ['serve', options.app ?? APP, '--http', '127.0.0.1:0', ...args];
  const env = { PATH: `${NODE_DIR}:/usr/local/bin:/usr/bin:/bin`, LANG: 'C', HOME: process.env.HOME ?? '/tmp', ...options.env };
  let child: ChildProcess;
  if (options.wrapper === 'sh') {
    // "; true": the shell stays (it cannot exec the command), so the master's parent is the wrapper.
    const quoted = [process.execPath, TSGI_BIN, ...serveArgs].map((arg) => `'${arg}'`).join(' ');
    child = spawn('/bin/sh', ['-c', `${quoted}; true`], { cwd: PROJECT_ROOT, detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
  } else if (options.wrapper === 'npx') {
    child = spawn(join(NODE_DIR, 'npx'), ['--no-install', 'tsgi', ...serveArgs], { cwd: PROJECT_ROOT, detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    child = spawn(process.execPath, [TSGI_BIN, ...serveArgs], { cwd: PROJECT_ROOT, detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  const stop = async (): Promise<void> => {
    if (!done && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Gone.
      }
      if (await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)])) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Gone.
        }
      }
    }
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let match: RegExpExecArray | null = null;
  while (!(match = /^tsgi: serving .* at (http:\/\/127\.0\.0\.1:\d+)\/ with \d+ workers? \(pid (\d+)\)$/m.exec(output))) {
    if (done || Date.now() > deadline) {
      await stop();
      throw new Error(`tsgi serve ${args.join(' ')} did not start\n--- output ---\n${output}`);
    }
    await sleep(25);
  }
  const master: Master = { base: match[1] as string, pid: Number(match[2]), spawnedPid: child.pid ?? 0, output: () => output, exited, stop };
  started.push(master);
  return master;
}

afterAll(async () => {
  for (const master of started) await master.stop();
});

/** One GET on a fresh connection. */
function get(url: string, timeoutMs = 20_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The pids whose parent is `pid` (from /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state: a zombie is gone for our purposes.
    if (Number(fields[1]) === pid && fields[0] !== 'Z') found.push(Number(entry));
  }
  return found.sort((a, b) => a - b);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0).
  return true;
}

async function isRunning(pid: number): Promise<boolean> {
  if (!isAlive(pid)) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat !== null && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

interface WrkResult {
  requests: number;
  socketErrors: string | null;
  non2xx: number;
  raw: string;
}

/** wrk -t1 -cC -dSs URL: bounded in time. */
async function runWrk(url: string, seconds: number, connections = 8): Promise<WrkResult> {
  const { stdout } = await execa(WRK, ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', url], { timeout: (seconds + 30) * 1000 });
  return {
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1] ?? Number.NaN),
    socketErrors: /Socket errors: (.*)/.exec(stdout)?.[1] ?? null,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
    raw: stdout,
  };
}

function socketErrorCount(result: WrkResult): number {
  if (!result.socketErrors) return 0;
  return [...result.socketErrors.matchAll(/(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
}

function expectNoLoss(result: WrkResult, output: string): void {
  const context = `${result.raw}\n--- tsgi output ---\n${output}`;
  expect(result.requests, context).toBeGreaterThan(50);
  expect(result.socketErrors, context).toBeNull();
  expect(result.non2xx, context).toBe(0);
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(new RegExp(pattern.source, 'g'))].length;
}

const available = allAvailable(checkBinary(WRK), checkBinary(process.execPath));

// ---------------------------------------------------------------------------------------------------------

describeWithServer('tsgi serve --workers: recycling and reload under load (HTTP)', available, () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await makeScratchDir('workers');
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('SIGHUP reloads with zero failed requests: new workers (new pids) serve the changed app', { timeout: 90_000 }, async () => {
    // A copy of the app, next to a version.txt the test changes before the reload.
    const app = join(scratch, 'app.ts');
    await copyFile(APP, app);
    await writeFile(join(scratch, 'version.txt'), 'v1\n');
    const master = await startMaster(['--workers', '2'], { app });
    expect((await get(`${master.base}/`)).body).toMatch(/^v1 pid \d+$/);
    const before = await childrenOf(master.pid);
    expect(before).toHaveLength(2);
    await writeFile(join(scratch, 'version.txt'), 'v2\n');
    const load = runWrk(`${master.base}/`, 5);
    await sleep(1_000);
    process.kill(master.pid, 'SIGHUP');
    const result = await load;
    expectNoLoss(result, master.output());
    // Both old workers stopped after their replacements were ready.
    await waitFor('the old workers to exit', () => count(master.output(), /worker \d+ \(pid \d+\) exited \(status 0\)/) >= 2, 20_000);
    const after = await childrenOf(master.pid);
    expect(after).toHaveLength(2);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    const answer = await get(`${master.base}/`);
    expect(answer.body).toMatch(/^v2 pid \d+$/);
    expect(after).toContain(Number(answer.body.split(' ')[2]));
    await master.stop();
    expect((await master.exited).code).toBe(0);
  });

  it('--max-requests recycles workers under load with zero failed requests', { timeout: 90_000 }, async () => {
    const master = await startMaster(['--workers', '2', '--max-requests', '400', '--max-requests-jitter', '100']);
    const result = await runWrk(`${master.base}/`, 5);
    expectNoLoss(result, master.output());
    expect(count(master.output(), /recycled because max-requests/), master.output()).toBeGreaterThanOrEqual(2);
    await waitFor('two workers again', async () => (await childrenOf(master.pid)).length === 2 || undefined, 20_000);
    expect((await get(`${master.base}/`)).status).toBe(200);
  });

  it('kill -9 of a worker under load loses at most its in-flight requests; a new worker comes back', { timeout: 90_000 }, async () => {
    const master = await startMaster(['--workers', '2']);
    const before = await childrenOf(master.pid);
    expect(before).toHaveLength(2);
    const victim = before[0] as number;
    const connections = 8;
    const load = runWrk(`${master.base}/`, 5, connections);
    await sleep(1_500);
    process.kill(victim, 'SIGKILL');
    const result = await load;
    const context = `${result.raw}\n${master.output()}`;
    expect(result.requests, context).toBeGreaterThan(50);
    // Only the requests on the victim's connections can fail: at most one per connection.
    expect(socketErrorCount(result) + result.non2xx, context).toBeLessThanOrEqual(connections);
    expect(master.output()).toMatch(new RegExp(`pid ${victim}\\) died unexpectedly \\(signal SIGKILL\\)`));
    const after = await waitFor('a replacement worker', async () => {
      const pids = await childrenOf(master.pid);
      return pids.length === 2 && !pids.includes(victim) ? pids : undefined;
    }, 20_000);
    expect(after).toContain(before[1]);
    expect((await get(`${master.base}/`)).status).toBe(200);
  });

  it('--max-rss recycles a worker whose memory grew, after its requests', { timeout: 60_000 }, async () => {
    const master = await startMaster(['--workers', '1', '--max-rss', '200']);
    const [before] = await childrenOf(master.pid);
    const grown = await get(`${master.base}/grow?mib=256`);
    expect(grown.body).toBe(`grown pid ${before}`);
    await waitFor('the recycle', () => /recycled because max-rss: RSS [\d.]+ MiB is over --max-rss 200/.test(master.output()) || undefined, 20_000);
    await waitFor('a new worker', async () => {
      const pids = await childrenOf(master.pid);
      return pids.length === 1 && pids[0] !== before ? pids : undefined;
    }, 20_000);
    expect((await get(`${master.base}/`)).body).not.toContain(`pid ${before}`);
  });

  it('SIGTTIN adds a worker, SIGTTOU removes one (never below 1)', { timeout: 60_000 }, async () => {
    const master = await startMaster(['--workers', '1']);
    expect(await childrenOf(master.pid)).toHaveLength(1);
    expect((await get(`${master.base}/multiprocess`)).body).toBe('false');
    process.kill(master.pid, 'SIGTTIN');
    await waitFor('2 workers', async () => (await childrenOf(master.pid)).length === 2 || undefined, 20_000);
    await waitFor('the new worker ready', () => count(master.output(), /\) ready/) >= 2, 20_000);
    process.kill(master.pid, 'SIGTTOU');
    await waitFor('1 worker', async () => (await childrenOf(master.pid)).length === 1 || undefined, 20_000);
    process.kill(master.pid, 'SIGTTOU');
    await sleep(500);
    expect(await childrenOf(master.pid)).toHaveLength(1);
    expect(master.output()).toContain('SIGTTIN received: workers 1 -> 2');
    expect(master.output()).toContain('SIGTTOU received: workers 2 -> 1');
    expect(master.output()).toContain('SIGTTOU received: workers 1 -> 1');
    expect((await get(`${master.base}/`)).status).toBe(200);
  });
});

describeWithServer('tsgi serve --workers: --timeout', available, () => {
  let master: Master;
  beforeAll(async () => {
    master = await startMaster(['--workers', '2', '--timeout', '1.5']);
  }, START_TIMEOUT_MS + 5_000);

  it('two workers: the environ says tsgi.multiprocess', async () => {
    expect((await get(`${master.base}/multiprocess`)).body).toBe('true');
  });

  it('a request hanging on a promise gets 504; its worker is replaced while other requests keep answering', { timeout: 60_000 }, async () => {
    const hanging = get(`${master.base}/hang`);
    // Meanwhile, the other paths answer.
    for (let i = 0; i < 3; i++) expect((await get(`${master.base}/`)).status).toBe(200);
    const answer = await hanging;
    expect(answer.status).toBe(504);
    expect(answer.body).toBe('504 Gateway Timeout\n');
    const line = await waitFor('the timeout log line', () => /worker \d+ \(pid (\d+)\): GET \/hang timed out/.exec(master.output()) ?? undefined);
    const pid = Number(line[1]);
    await waitFor('the timed-out worker replaced', async () => {
      const pids = await childrenOf(master.pid);
      return pids.length === 2 && !pids.includes(pid) ? pids : undefined;
    }, 20_000);
    expect(master.output()).toMatch(new RegExp(`pid ${pid}\\) recycled because timeout`));
  });

  it('a body that stops yielding gets 504 too', { timeout: 60_000 }, async () => {
    const answer = await get(`${master.base}/hang-body`);
    expect(answer.status).toBe(504);
    await waitFor('the timeout log line', () => /GET \/hang-body timed out/.test(master.output()) || undefined);
  });

  it('a synchronous busy loop: the stack is logged, the worker is killed and replaced, others keep answering', { timeout: 60_000 }, async () => {
    await waitFor('two ready workers', async () => (await childrenOf(master.pid)).length === 2 || undefined, 20_000);
    const spinning = get(`${master.base}/spin`).then(
      (answer) => `answered ${answer.status}`,
      (error: Error) => `failed: ${error.message}`,
    );
    // The spinning worker accepts nothing while it is blocked: every request now goes to the other one.
    await sleep(300);
    for (let i = 0; i < 5; i++) expect((await get(`${master.base}/`)).status).toBe(200);
    // Killed with its connection: the client sees the connection end without an answer.
    expect(await spinning).toMatch(/^failed: /);
    const output = await waitFor('the stack in the log', () => (/the app's stack:/.test(master.output()) ? master.output() : undefined), 20_000);
    expect(output).toMatch(/the event loop has been blocked for [\d.]+ s \(--timeout 1\.5\)/);
    expect(output).toMatch(/at spinForever \(.*fixtures\/workers\/app\.ts:\d+:\d+\)/);
    const pid = Number(/worker \d+ \(pid (\d+)\): the event loop has been blocked/.exec(output)?.[1]);
    await waitFor('the blocked worker replaced', async () => {
      const pids = await childrenOf(master.pid);
      return pids.length === 2 && !pids.includes(pid) ? pids : undefined;
    }, 20_000);
    expect(await isRunning(pid)).toBe(false);
    expect((await get(`${master.base}/`)).status).toBe(200);
  });
});

describeWithServer('tsgi serve --workers: stopping', available, () => {
  it('SIGTERM lets an in-flight slow request finish, then the master exits 0 with no worker left', { timeout: 60_000 }, async () => {
    const master = await startMaster(['--workers', '1']);
    const workers = await childrenOf(master.pid);
    const slow = get(`${master.base}/slow?ms=2000`);
    await sleep(500);
    process.kill(master.pid, 'SIGTERM');
    const answer = await slow;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatch(/^slow done pid \d+$/);
    const { code } = await master.exited;
    expect(code).toBe(0);
    expect(master.output()).toContain('SIGTERM received, stopping 1 worker');
    for (const pid of workers) expect(await isRunning(pid)).toBe(false);
  });

  for (const wrapper of ['sh', 'npx'] as const) {
    it(`kill -9 of the master (under ${wrapper === 'sh' ? 'sh -c' : 'npx'}) leaves no worker behind`, { timeout: 60_000 }, async () => {
      const master = await startMaster(['--workers', '2'], { wrapper });
      expect(master.spawnedPid).not.toBe(master.pid);
      const workers = await childrenOf(master.pid);
      expect(workers).toHaveLength(2);
      process.kill(master.pid, 'SIGKILL');
      await waitFor('the workers to exit', async () => {
        for (const pid of workers) if (await isRunning(pid)) return undefined;
        return true;
      }, 15_000);
    });
  }

  it('workers that cannot start: a failed reload keeps the old workers; a crash loop ends the master (exit 1)', { timeout: 90_000 }, async () => {
    const scratch = await makeScratchDir('workers-gate');
    const gate = join(scratch, 'gate');
    try {
      const master = await startMaster(['--workers', '1'], { app: join(FIXTURES, 'boot-gate.ts'), env: { TSGI_TEST_BOOT_GATE: gate } });
      const first = await get(`${master.base}/`);
      expect(first.body).toMatch(/^gate pid \d+$/);
      // Broken code deployed, then SIGHUP: the new worker cannot start; the old one keeps serving.
      await writeFile(gate, 'closed');
      process.kill(master.pid, 'SIGHUP');
      await waitFor('the failed reload', () => /keeps serving the code it had loaded \(reload failed\)/.test(master.output()) || undefined, 30_000);
      expect(master.output()).toContain('boot-gate: refusing to load');
      expect((await get(`${master.base}/`)).body).toBe(first.body);
      // Its worker dies: every replacement fails at boot; after a bounded number of tries the master gives up.
      process.kill(Number(first.body.split(' ')[2]), 'SIGKILL');
      const { code } = await master.exited;
      expect(code).toBe(1);
      expect(master.output()).toMatch(/workers failed to start 5 times in a row; giving up/);
    } finally {
      await unlink(gate).catch(() => {});
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('an app that cannot load: exit 1 with the loader\'s message', { timeout: 60_000 }, async () => {
    const result = await execa(process.execPath, [TSGI_BIN, 'serve', 'no/such/app.ts', '--http', '127.0.0.1:0', '--workers', '2'], {
      cwd: PROJECT_ROOT,
      reject: false,
      timeout: 30_000,
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('tsgi: module not found (no/such/app.ts)');
    expect(result.stdout).toBe('');
  });
});

describeWithServer(
  'tsgi serve --workers behind nginx (FastCGI): SIGHUP and max-requests under load lose nothing',
  allAvailable(available, checkBinary(NGINX_BIN), checkFastCgiBuild()),
  () => {
    for (const transport of ['unix', 'tcp'] as const) {
      it(`over ${transport === 'unix' ? 'a unix socket' : 'TCP'}`, { timeout: 120_000 }, async () => {
        const backend = await startBackend(join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts'), transport, {
          mount: '/app',
          args: ['--workers', '2', '--max-requests', '700'],
        });
        try {
          expect(backend.startupLine).toMatch(/with 2 workers \(pid \d+\)$/);
          const nginx = await startNginx('nginx-fastcgi.conf', { label: `nginx-workers-${transport}`, vars: { BACKEND: backend.nginxAddress, MOUNT: '/app' } });
          try {
            const before = await childrenOf(backend.pid);
            expect(before).toHaveLength(2);
            const load = runWrk(`${nginx.baseUrl}/app/hello`, 5);
            await sleep(1_500);
            process.kill(backend.pid, 'SIGHUP');
            const result = await load;
            expectNoLoss(result, `${backend.output()}\n--- nginx ---\n${await nginx.errorLog()}`);
            expect(backend.output()).toContain('recycled because reload (SIGHUP)');
            await waitFor('new workers', async () => {
              const pids = await childrenOf(backend.pid);
              return pids.length === 2 && pids.every((pid) => !before.includes(pid)) ? pids : undefined;
            }, 20_000);
          } finally {
            await nginx.stop();
          }
        } finally {
          await backend.stop();
        }
      });
    }
  },
);
