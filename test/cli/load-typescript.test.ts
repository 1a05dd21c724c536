import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { firstLine } from './cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');

/**
 * A TypeScript app spread over files the way real ones are: relative imports written with `.js` and without an
 * extension, a tsconfig `paths` alias, a JSON file, a JavaScript module shared by two TypeScript files, a
 * CommonJS-style `.cts` file, each file's own import.meta / __dirname (also after a `#!` line), and a function
 * that throws from a known line of a nested file.
 */
const FILES: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@lib/*': ['./lib/*'] } } }),
  'package.json': JSON.stringify({ type: 'module' }),
  'data.json': JSON.stringify({ answer: 42 }),
  'counter.mjs': 'let count = 0;\nexport function next() {\n  return ++count;\n}\nexport const counterUrl = import.meta.url;\n',
  'app.ts': [
    "import type { App } from 'tsgi';",
    "import { next, counterUrl } from './counter.mjs';",
    "import { where as libWhere, countFromLib } from './lib/where.js';",
    "import { greet } from '@lib/greet';",
    "import { legacy } from './legacy.cjs';",
    "import data from './data.json';",
    "import { explode } from './lib/fail';",
    "import { shebangUrl } from './lib/shebang.ts';",
    '',
    'const app: App = (environ, startResponse) => {',
    "  if (environ.PATH_INFO === '/fail') explode();",
    "  startResponse('200 OK', [['Content-Type', 'application/json']]);",
    '  const body = {',
    '    app: import.meta.url,',
    '    appDirname: import.meta.dirname,',
    '    appFilename: import.meta.filename,',
    '    lib: libWhere(),',
    '    greeting: greet(),',
    '    legacy: legacy(),',
    '    answer: data.answer,',
    '    counts: [next(), countFromLib()],',
    '    counterUrl,',
    '    shebangUrl,',
    '  };',
    '  return [JSON.stringify(body)];',
    '};',
    'export default app;',
    '',
  ].join('\n'),
  'lib/where.ts': [
    "import { next } from '../counter.mjs';",
    'export const where = (): { url: string; dirname: string; filename: string } => ({ url: import.meta.url, dirname: __dirname, filename: __filename });',
    'export const countFromLib = (): number => next();',
    '',
  ].join('\n'),
  'lib/shebang.ts': "#!/usr/bin/env node\nexport const shebangUrl: string = import.meta.url;\n",
  'lib/greet.ts': "export const greet = (): string => 'hello from a paths alias';\n",
  'lib/fail.ts': ['// line 1', '// line 2', 'export function explode(): never {', "  throw new Error('exploded on purpose');", '}', ''].join('\n'),
  'legacy.cts': "const { basename } = require('node:path');\nmodule.exports = { legacy: (): string => basename(__filename) };\n",
  'broken.ts': 'const a: number = 1;\nconst b = a +;\nexport default () => [];\n',
};

let dir = '';
let scratch = '';
const children: ResultPromise[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-load-ts-'));
  for (const [name, text] of Object.entries(FILES)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
  scratch = '';
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `tsgi serve MODULE -w 0` with its own TMPDIR (so the test can see what the loader leaves there). */
async function serve(module: string, extra: string[] = []): Promise<{ child: ResultPromise; base: string; pid: number }> {
  scratch = await mkdtemp(join(tmpdir(), 'tsgi-load-ts-tmp-'));
  const child = execa('node', [BIN, 'serve', module, '--http', '127.0.0.1:0', '-w', '0', ...extra], {
    cwd: dir,
    reject: false,
    all: true,
    env: { TMPDIR: scratch },
  });
  children.push(child);
  const line = await firstLine(child);
  const base = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(line)?.[1];
  if (!base) throw new Error(`no address in ${line}`);
  return { child, base, pid: child.pid as number };
}

async function threadsOf(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/task`)).length;
}

async function childrenOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim();
}

describe('tsgi serve APP.ts: TypeScript without a loader', () => {
  it('resolves relative, extensionless, paths-alias, JSON and CommonJS imports; each file keeps its own location', async () => {
    const { base } = await serve('app.ts');
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.app).toBe(pathToFileURL(join(dir, 'app.ts')).href);
    expect(body.appDirname).toBe(dir);
    expect(body.appFilename).toBe(join(dir, 'app.ts'));
    expect(body.lib).toEqual({ url: pathToFileURL(join(dir, 'lib', 'where.ts')).href, dirname: join(dir, 'lib'), filename: join(dir, 'lib', 'where.ts') });
    expect(body.greeting).toBe('hello from a paths alias');
    expect(body.legacy).toBe('legacy.cts');
    expect(body.answer).toBe(42);
    // One instance of the JavaScript module, imported from its own place, for both TypeScript files.
    expect(body.counts).toEqual([1, 2]);
    expect(body.counterUrl).toBe(pathToFileURL(join(dir, 'counter.mjs')).href);
    expect(body.shebangUrl).toBe(pathToFileURL(join(dir, 'lib', 'shebang.ts')).href);
  });

  it('leaves no thread, process or file behind, and stack traces point at the .ts lines', async () => {
    const js = await serve(join(process.cwd(), 'bench', 'apps', 'hello-app.mjs'));
    const jsThreads = await threadsOf(js.pid);
    js.child.kill('SIGTERM');
    await js.child;
    const ts = await serve('app.ts');
    expect(await threadsOf(ts.pid)).toBe(jsThreads);
    expect(await childrenOf(ts.pid)).toBe('');
    expect(await readdir(scratch)).toEqual([]);
    const failed = await fetch(`${ts.base}/fail`);
    expect(failed.status).toBe(500);
    ts.child.kill('SIGTERM');
    const { all } = await ts.child;
    expect(all).toMatch(/exploded on purpose\n\s+at explode \(.*lib\/fail\.ts:4:\d+\)/);
  });

  it('a compile error is one clear line naming the file, line and column; exit 1', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tsgi-load-ts-tmp-'));
    const result = await execa('node', [BIN, 'serve', 'broken.ts', '--http', '127.0.0.1:0', '-w', '0'], { cwd: dir, reject: false, env: { TMPDIR: scratch } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^tsgi: cannot compile .*broken\.ts: .*broken\.ts:2:\d+: Unexpected ";"$/);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('under CGI (compiled in the process itself), the same app answers the same', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tsgi-load-ts-tmp-'));
    const result = await execa('node', [BIN, 'serve', '--cgi', 'app.ts'], {
      cwd: dir,
      env: { TMPDIR: scratch, GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '/app', PATH_INFO: '/' },
    });
    expect(result.stdout).toMatch(/^Status: 200 OK\r\n/);
    const body = JSON.parse(result.stdout.slice(result.stdout.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(body.lib).toEqual({ url: pathToFileURL(join(dir, 'lib', 'where.ts')).href, dirname: join(dir, 'lib'), filename: join(dir, 'lib', 'where.ts') });
    expect(body.counts).toEqual([1, 2]);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('under a master, the worker loads the same app', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tsgi-load-ts-tmp-'));
    const child = execa('node', [BIN, 'serve', 'app.ts', '--http', '127.0.0.1:0'], { cwd: dir, reject: false, env: { TMPDIR: scratch } });
    children.push(child);
    const base = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(await firstLine(child))?.[1];
    const body = (await (await fetch(`${base}/`)).json()) as Record<string, unknown>;
    expect(body.greeting).toBe('hello from a paths alias');
    expect(await readdir(scratch)).toEqual([]);
  });
});
