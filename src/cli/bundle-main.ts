/**
 * The build's last step (`npm run build`: `node dist/cli/bundle-main.js` after tsc): replaces tsc's
 * dist/cli/main.js with one bundled file holding the code a `tsgi serve` master runs (main, serve-command and
 * the static imports of both, cluster/master and its own).
 *
 * Why: a master loaded from tsc's output resolves about 30 module files, and resolving them calls Node's
 * file-URL-to-path code often enough for V8 to optimise it, which pages the optimising compiler into the
 * master (about 4 MiB of its RSS, measured; a master is otherwise an idle process). One file is one resolution.
 *
 * What stays out of the bundle: every other dynamic import (the other verbs, the in-process server, CGI, the
 * config file loader, the version) is left as an import of tsc's file next to the bundle, so a process that
 * loads an app or a server gets them from dist as before, and a master never loads them. What differs: the
 * modules the bundle holds are also loaded from dist by a process that goes on to load those (a second copy
 * of, say, servers/listen.js in an in-process server); the bundle's copies only ever see the plan and the
 * command line, never an app's objects. `import.meta.url` in a bundled module is its own file's URL in dist, as
 * before (worker-process.ts finds worker.js next to itself with it).
 *
 * Running tsc alone writes main.js unbundled again: everything still works, the master just loads more files.
 */
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';

/** The dynamic imports a master follows, relative to dist/cli: bundled (every other one stays a file in dist). */
export const MASTER_PATH_MODULES: readonly string[] = ['serve-command.js', 'cluster/master.js'];

/** The identifier a bundled module's `import.meta.url` becomes (declared at the top of that module). */
const MODULE_URL = '__tsgiModuleUrl';

/**
 * Bundles `cliDir`/main.js (tsc's output) into `cliDir`/main.js, as described above. Resolves with the
 * files the bundle holds, relative to `cliDir`.
 */
export async function bundleMain(cliDir: string): Promise<string[]> {
  const { build, transform } = await import('esbuild');
  const entry = resolve(cliDir, 'main.js');
  const bundled = new Set(MASTER_PATH_MODULES.map((path) => resolve(cliDir, path)));

  const masterPathOnly: Plugin = {
    name: 'tsgi-master-path-only',
    setup(setup) {
      // A dynamic import off the master's path: left as an import of its file in dist, relative to the bundle.
      setup.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        const target = resolve(args.resolveDir, args.path);
        if (bundled.has(target)) return undefined;
        const fromBundle = relative(cliDir, target);
        return { path: fromBundle.startsWith('.') ? fromBundle : `./${fromBundle}`, external: true };
      });
      // `import.meta.url` of a bundled module: its own file's URL, computed from the bundle's.
      setup.onLoad({ filter: /\.js$/ }, async (args) => {
        let contents = await readFile(args.path, 'utf8');
        if (contents.includes('import.meta')) {
          contents = (await transform(contents, { define: { 'import.meta.url': MODULE_URL }, format: 'esm', sourcemap: 'inline', sourcefile: args.path })).code;
          const fromBundle = relative(cliDir, args.path);
          contents = `const ${MODULE_URL} = new URL(${JSON.stringify(fromBundle)}, import.meta.url).href;\n${contents}`;
        }
        return { contents, loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };

  const result = await build({
    entryPoints: [entry],
    outfile: entry,
    allowOverwrite: true,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Packages (esbuild itself, tsx) are loaded from node_modules as before.
    packages: 'external',
    sourcemap: true,
    metafile: true,
    plugins: [masterPathOnly],
    logLevel: 'warning',
  });
  const output = Object.values(result.metafile.outputs).find((each) => each.entryPoint !== undefined);
  return Object.keys(output?.inputs ?? {}).map((path) => relative(cliDir, resolve(path)));
}

// Run as the build step: `node dist/cli/bundle-main.js` bundles the main.js next to it.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cliDir = dirname(fileURLToPath(import.meta.url));
  bundleMain(cliDir).then(
    (files) => process.stdout.write(`tsgi: bundled ${files.length} modules into ${relative(process.cwd(), resolve(cliDir, 'main.js'))}\n`),
    (error: unknown) => {
      process.stderr.write(`tsgi: bundling dist/cli/main.js failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
