import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Options for importTypeScript. */
export interface ImportTypeScriptOptions {
  /**
   * Compile in this process instead of a helper process: about 80 ms sooner, for a process that answers one
   * request (CGI) and exits, where start-up time counts and memory does not. esbuild's service process is
   * stopped once the module is compiled. Default false.
   */
  inProcess?: boolean;
}

/** The most of the compiler's stderr (in characters) kept for the error message. */
const MAX_COMPILER_OUTPUT_CHARS = 64 * 1024;

/**
 * Imports a TypeScript module (.ts, .mts, .cts, .tsx) without a module loader: a helper process compiles it,
 * with the TypeScript files it imports, into one ES module in a temporary directory (compileTypeScript says
 * what stays as it was), which this process imports natively; the directory is removed once the module is
 * loaded. Node's source map support is turned on first, so stack traces point at the .ts lines.
 *
 * Why: a module loader (module.register, as tsx uses) runs its hooks in a thread with its own V8 isolate for
 * the life of the process (measured: 23 MiB of every serving process), and esbuild's API in the process stays
 * loaded once imported (about 2 MiB). The helper costs one short-lived process at start (about 80 ms).
 *
 * What differs from running the sources: an `import()` whose specifier is computed at run time (not a literal
 * or a template esbuild can expand) and `import.meta.resolve` resolve from the temporary file, so a relative
 * one fails; a .js file that imports a .ts file needs a loader (node --import tsx).
 * Rejects with an Error naming the first compile error (file:line:column).
 */
export async function importTypeScript(path: string, options: ImportTypeScriptOptions = {}): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'tsgi-app-'));
  try {
    const outfile = join(dir, `${basename(path, extname(path))}.mjs`);
    await (options.inProcess ? compileInProcess(path, outfile) : compileInHelper(path, outfile));
    process.setSourceMapsEnabled(true);
    return (await import(pathToFileURL(outfile).href)) as Record<string, unknown>;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function compileInProcess(entry: string, outfile: string): Promise<void> {
  const { compileTypeScript } = await import('./compile-typescript.js');
  try {
    await compileTypeScript(entry, outfile);
  } finally {
    await (await import('esbuild')).stop();
  }
}

/** Runs compile-typescript-main next to this file (through tsx when running from the sources, as in tests). */
function compileInHelper(entry: string, outfile: string): Promise<void> {
  const fromSource = import.meta.url.endsWith('.ts');
  const helper = fileURLToPath(new URL(fromSource ? './compile-typescript-main.ts' : './compile-typescript-main.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), helper, entry, outfile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      if (output.length < MAX_COMPILER_OUTPUT_CHARS) output += text.slice(0, MAX_COMPILER_OUTPUT_CHARS - output.length);
    });
    child.once('error', (error) => reject(new Error(`tsgi: cannot start the TypeScript compiler for ${entry} (${error.message})`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(output.trim() || `tsgi: cannot compile ${entry} (the compiler ${signal ? `was killed by ${signal}` : `exited with status ${code}`})`));
    });
  });
}
