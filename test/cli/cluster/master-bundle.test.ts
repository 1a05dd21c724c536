/**
 * The master's code is one bundled file (src/cli/bundle-main.ts, run by `npm run build`): a `tsgi serve` master
 * loads bin/tsgi.js and dist/cli/main.js and no other module file, its workers still start from dist (the
 * bundle's `import.meta.url` is each module's own), and the verbs left out of the bundle load from dist.
 *
 * Which files a process loads is read from NODE_DEBUG=esm (Node's debug log of its ES module loader: one
 * "Translating StandardModule URL" line per module file, each line tagged with the process's pid).
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { freePort, firstLine } from '../cli-helpers.js';
import { LISTEN_PATHS } from '../listen-paths.js';

const ROOT = process.cwd();
const BIN = join(ROOT, 'bin', 'tsgi.js');

/** The module files (relative to the repository) that process `pid` loaded, from NODE_DEBUG=esm lines. */
function moduleFilesOf(debugLog: string, pid: number): string[] {
  const pattern = new RegExp(`^ESM ${pid}: Translating StandardModule file://(\\S+)`, 'gm');
  return [...debugLog.matchAll(pattern)].map((match) => (match[1] as string).replace(`${ROOT}/`, '')).sort();
}

describe.each(LISTEN_PATHS)('the bundled master ($name)', ({ env }) => {
  it('loads two module files, and its worker serves', async () => {
    const port = await freePort();
    const child = execa('node', [BIN, 'serve', 'examples/hello.ts', '--http', `127.0.0.1:${port}`], {
      reject: false,
      env: { ...env, NODE_DEBUG: 'esm' },
    });
    try {
      const line = await firstLine(child);
      const pid = Number(/\(pid (\d+)\)/.exec(line)?.[1]);
      const response = await fetch(`http://127.0.0.1:${port}/bundle`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('Hello from tsgi! You asked for /bundle');
      child.kill('SIGTERM');
      const { stderr } = await child;
      const files = moduleFilesOf(String(stderr), pid);
      expect(files, 'no NODE_DEBUG=esm lines for the master: did their format change?').not.toEqual([]);
      expect(files).toEqual(['bin/tsgi.js', 'dist/cli/main.js']);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('the verbs outside the bundle', () => {
  it('load from dist: version, help of each verb, ping usage error', async () => {
    const version = await execa('node', [BIN, '--version']);
    expect(version.stdout).toMatch(/^tsgi \d+\.\d+\.\d+/);
    for (const verb of ['serve', 'build', 'cgi', 'ping']) {
      const help = await execa('node', [BIN, 'help', verb]);
      expect(help.stdout).toContain(`tsgi ${verb}`);
    }
    const ping = await execa('node', [BIN, 'ping'], { reject: false });
    expect(ping.exitCode).toBe(2);
  });
});
