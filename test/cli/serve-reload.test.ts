import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const WAIT_MS = 30_000;


const appSource = (text: string): string => `export default (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return [${JSON.stringify(text)}];
};
`;

/** GET / until the body is `expected` (bounded); returns the last body seen. */
async function pollFor(port: number, expected: string, timeoutMs = WAIT_MS): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
      last = await response.text();
      if (last === expected) return last;
    } catch (error) {
      last = `(${(error as Error).message})`;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return last;
}

/** Waits (bounded) until `read()` matches `pattern`. */
async function waitForText(read: () => string, pattern: RegExp, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-reload-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tsgi serve --reload', () => {
  it('restarts on a change, waits after a crash, ignores node_modules, and stops on SIGTERM', async () => {
    const app = join(dir, 'app.mjs');
    await writeFile(app, appSource('v1'));
    await mkdir(join(dir, 'node_modules'));
    const port = await freePort();
    let output = '';
    const child: ResultPromise = execa('node', [BIN, 'serve', app, '--http', `127.0.0.1:${port}`, '--workers', '0', '--reload'], {
      reject: false,
      all: true,
    });
    child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const servers = (): number[] => [...output.matchAll(/over HTTP at .* \(pid (\d+)\)/g)].map((match) => Number(match[1]));
    try {
      expect(await pollFor(port, 'v1')).toBe('v1');
      expect(output).toMatch(/tsgi: reload: watching .* in pid \d+/);

      await writeFile(app, appSource('v2'));
      expect(await pollFor(port, 'v2')).toBe('v2');
      await waitForText(() => output, /app\.mjs changed; restarting the server/);
      const [first, second] = servers();
      expect(second).toBeDefined();
      expect(first).not.toBe(second);
      expect(isAlive(first as number)).toBe(false);

      // node_modules and files that are not code are not watched: no restart.
      await writeFile(join(dir, 'node_modules', 'dep.js'), 'export default 1;\n');
      await writeFile(join(dir, 'notes.txt'), 'hello');
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(servers()).toHaveLength(2);

      // A broken app: the server exits, and the parent waits for the next change instead of looping.
      await writeFile(app, 'export default (;\n');
      await waitForText(() => output, /the server exited \(status 1\); waiting for a file change/);
      const restartsBefore = output.match(/restarting the server/g)?.length;
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(output.match(/restarting the server/g)?.length).toBe(restartsBefore);
      expect(output.match(/the server exited/g)).toHaveLength(1);

      await writeFile(app, appSource('v3'));
      expect(await pollFor(port, 'v3')).toBe('v3');
      const last = servers().at(-1) as number;

      child.kill('SIGTERM');
      const result = await child;
      expect(result.exitCode).toBe(0);
      expect(output).toContain('tsgi: reload: SIGTERM received; stopping the server');
      expect(isAlive(last)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await child;
    }
  }, 120_000);

  it('a server whose watching parent dies does not linger', async () => {
    const app = join(dir, 'orphan.mjs');
    await writeFile(app, appSource('alive'));
    const port = await freePort();
    let output = '';
    let server = 0;
    const child = execa('node', [BIN, 'serve', app, '--http', `127.0.0.1:${port}`, '--workers', '0', '--reload'], { reject: false, all: true });
    child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      expect(await pollFor(port, 'alive')).toBe('alive');
      server = Number(/over HTTP at .* \(pid (\d+)\)/.exec(output)?.[1]);
      expect(server).toBeGreaterThan(0);
      child.kill('SIGKILL');
      await child;
      const deadline = Date.now() + WAIT_MS;
      while (isAlive(server) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(isAlive(server)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await child;
      if (server > 0 && isAlive(server)) process.kill(server, 'SIGKILL');
    }
  }, 60_000);
});
