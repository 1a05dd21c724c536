import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');

/**
 * A CGI script that uses Node builtins every way an import can: named (crypto, zlib), a namespace (os), a
 * default import of a module that is a function (assert), a class extended at load time (stream), and a
 * CommonJS require (`node:dns`). With `?use=1` it uses them; without, it only reports whether
 * the builtins it never touched were loaded (process.moduleLoadList, a diagnostic list Node keeps). It imports
 * tsgi by path (the temporary folder has no node_modules).
 */
const SCRIPT = `
import { createHash } from 'node:crypto';
import { gzipSync, gunzipSync } from 'node:zlib';
import * as os from 'node:os';
import assert from 'node:assert';
import { Readable } from 'node:stream';
import { runWithCgi, type App } from '${join(process.cwd(), 'src', 'index.js')}';

class Numbers extends Readable {
  #next = 0;
  override _read(): void {
    this.push(this.#next < 3 ? String(this.#next++) : null);
  }
}

const app: App = async (environ, startResponse) => {
  const report: Record<string, unknown> = { strict: (function (this: unknown) { return this; })() === undefined };
  if (environ.QUERY_STRING === 'use=1') {
    report.sha = createHash('sha256').update('tsgi').digest('hex').slice(0, 8);
    report.zlib = gunzipSync(gzipSync('round trip')).toString();
    report.cpus = os.cpus().length > 0;
    assert(true);
    assert.strictEqual(1, 1);
    report.assertThrows = (() => { try { assert(false, 'no'); return false; } catch (error) { return error instanceof assert.AssertionError; } })();
    let text = '';
    for await (const chunk of new Numbers()) text += String(chunk);
    report.stream = text;
    const dns = require('node:dns') as typeof import('node:dns');
    report.dns = typeof dns.lookup;
  } else {
    const loaded = (process as unknown as { moduleLoadList: string[] }).moduleLoadList;
    report.loaded = ['crypto', 'zlib', 'dns'].filter((name) => loaded.includes(\`NativeModule \${name}\`));
  }
  startResponse('200 OK', [['Content-Type', 'application/json']]);
  return [JSON.stringify(report)];
};

void runWithCgi(app);
`;

let dir = '';
let cgi = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-build-lazy-'));
  await writeFile(join(dir, 'builtins.ts'), SCRIPT);
  cgi = join(dir, 'builtins.cgi');
  await execa('node', [BIN, 'build', join(dir, 'builtins.ts'), '-o', cgi]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(query: string): Promise<Record<string, unknown>> {
  const result = await execa(cgi, [], {
    env: { PATH: process.env.PATH ?? '', GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', QUERY_STRING: query },
    extendEnv: false,
  });
  expect(result.stdout).toMatch(/^Status: 200 OK\r\n/);
  return JSON.parse(result.stdout.slice(result.stdout.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

describe('tsgi build: Node builtins load when first used', () => {
  it('a request that does not use a builtin does not load it; the bundle runs in strict mode', async () => {
    expect(await run('')).toEqual({ strict: true, loaded: [] });
  });

  it('named, namespace and default imports, a subclass and require() all see the real modules', async () => {
    expect(await run('use=1')).toEqual({
      strict: true,
      sha: '8deff8a8',
      zlib: 'round trip',
      cpus: true,
      assertThrows: true,
      stream: '012',
      dns: 'function',
    });
  });
});

describe('tsgi build: the lines before the bundle', () => {
  it('a script that requires no deferred builtin gets no lazy-require prelude, and runs', async () => {
    const plain = join(dir, 'plain.cgi');
    await execa('node', [BIN, 'build', join(process.cwd(), 'cgi-bin', 'hello.ts'), '-o', plain]);
    const text = await readFile(plain, 'utf8');
    expect(text.split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    expect(text).not.toContain('var require = ');
    expect(await readFile(cgi, 'utf8')).toContain('var require = ');
    const result = await execa(plain, [], {
      env: { PATH: process.env.PATH ?? '', GATEWAY_INTERFACE: 'CGI/1.1', SCRIPT_NAME: '/h.cgi' },
      extendEnv: false,
      stripFinalNewline: false,
    });
    expect(result.stdout).toBe('Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 38\r\n\r\nHello from tsgi! You asked for /h.cgi\n');
  });

  it('--shebang writes that interpreter line, and the file runs through it without env on the PATH', async () => {
    const direct = join(dir, 'direct.cgi');
    await execa('node', [BIN, 'build', join(process.cwd(), 'cgi-bin', 'hello.ts'), '-o', direct, '--shebang', process.execPath]);
    expect((await readFile(direct, 'utf8')).split('\n', 1)[0]).toBe(`#!${process.execPath}`);
    // An empty PATH: `#!/usr/bin/env node` could not find node; the absolute path needs no search.
    const result = await execa(direct, [], {
      env: { PATH: '', GATEWAY_INTERFACE: 'CGI/1.1', SCRIPT_NAME: '/d.cgi' },
      extendEnv: false,
      stripFinalNewline: false,
    });
    expect(result.stdout).toMatch(/^Status: 200 OK\r\n[^]*\r\n\r\nHello from tsgi! You asked for \/d\.cgi\n$/);
  });

  it('a --shebang that is not an absolute path, holds a newline or is too long is refused (exit 2, no file)', async () => {
    for (const [shebang, reason] of [
      ['node', 'absolute path'],
      ['/usr/bin/node\nprocess.exit()', 'control characters'],
      [`/${'x'.repeat(200)}`, 'longer than'],
    ] as const) {
      const out = join(dir, 'refused.cgi');
      const result = await execa('node', [BIN, 'build', join(process.cwd(), 'cgi-bin', 'hello.ts'), '-o', out, '--shebang', shebang], { reject: false });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(reason);
      await expect(readFile(out)).rejects.toThrow();
    }
  });
});
