/**
 * A `tsgi serve` worker runs with V8's semi-spaces capped (WORKER_SEMI_SPACE_MIB, worker-process.ts) unless the
 * user set the young generation's size: the worker's own process.execArgv says which.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setsSemiSpace, WORKER_SEMI_SPACE_MIB } from '../../../src/cli/cluster/worker-process.js';
import { freePort, firstLine } from '../cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
let dir = '';
let app = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-semi-'));
  app = join(dir, 'flags.mjs');
  // Answers with the worker's Node flags.
  await writeFile(
    app,
    `export default (environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  return [JSON.stringify({ execArgv: process.execArgv })];
};
`,
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Serves the flags app under `tsgi serve` with `nodeOptions`, returns what its worker says. */
async function workerFlags(nodeOptions: string | undefined): Promise<{ execArgv: string[] }> {
  const port = await freePort();
  const env = { ...process.env, NODE_OPTIONS: nodeOptions };
  if (nodeOptions === undefined) delete env.NODE_OPTIONS;
  const child = execa('node', [BIN, 'serve', app, '--http', `127.0.0.1:${port}`], { reject: false, env, extendEnv: false });
  try {
    await firstLine(child);
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).toBe(200);
    return (await response.json()) as { execArgv: string[] };
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}

describe('the worker young generation cap', () => {
  it('is set by default', async () => {
    const flags = await workerFlags(undefined);
    expect(flags.execArgv).toContain(`--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`);
  });

  it('is left to the user who set one in NODE_OPTIONS', async () => {
    const flags = await workerFlags('--max-semi-space-size=32');
    expect(flags.execArgv.some((arg) => arg.includes('semi-space'))).toBe(false);
  });

  it('recognises the flag in its spellings', () => {
    expect(setsSemiSpace([], undefined)).toBe(false);
    expect(setsSemiSpace(['--max-old-space-size=512'], '--trace-gc')).toBe(false);
    expect(setsSemiSpace(['--max-semi-space-size=4'], undefined)).toBe(true);
    expect(setsSemiSpace([], '--max_semi_space_size=4')).toBe(true);
    expect(setsSemiSpace([], '--min-semi-space-size=1 --trace-gc')).toBe(true);
  });
});
