import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BuildFailure, Loader, Message, Plugin } from 'esbuild';

/**
 * Compiles the TypeScript module `entry` and every TypeScript (and JSON) file it imports into one ES module,
 * `outfile`, that Node imports natively wherever it is written. Run by importTypeScript in a helper process
 * (compile-typescript-main.ts), so a server never holds esbuild.
 *
 * What it keeps of running the sources directly:
 * - every JavaScript file (the app's own .js/.mjs/.cjs, and every package, whether reached by name, through
 *   tsconfig `paths` or by a relative path) stays outside the bundle and is imported by the absolute path Node
 *   would resolve (the "import"/"require" and "node" conditions, "main" not "module"): one instance of each,
 *   shared with the rest of the process;
 * - tsconfig.json (paths, jsx, decorators...) as esbuild reads it for each file;
 * - `import.meta.url`, `import.meta.dirname`, `import.meta.filename`, `__dirname`, `__filename` and `require`
 *   name each TypeScript file's own location;
 * - every import runs (no module dropped for a package.json "sideEffects": false), and function and class
 *   names stay those of the sources;
 * - an inline source map (without the sources' text) maps stack traces back to the .ts lines.
 * Throws an Error naming the first compile error's file, line and column.
 */
export async function compileTypeScript(entry: string, outfile: string): Promise<void> {
  const { build } = await import('esbuild');
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node}`,
      // Node's own resolution: no "module" field or condition.
      mainFields: ['main'],
      conditions: [],
      sourcemap: 'inline',
      sourcesContent: false,
      banner: { js: REQUIRE_BANNER },
      define: LOCATION_DEFINES,
      ignoreAnnotations: true,
      keepNames: true,
      logLevel: 'silent',
      plugins: [typeScriptOnly],
    });
  } catch (error) {
    const failure = error as Partial<BuildFailure>;
    if (!Array.isArray(failure.errors) || failure.errors.length === 0) throw error;
    const more = failure.errors.length > 1 ? ` (and ${failure.errors.length - 1} more)` : '';
    throw new Error(`tsgi: cannot compile ${entry}: ${describeMessage(failure.errors[0] as Message)}${more}`);
  }
}

const TYPESCRIPT_FILE = /\.[cm]?tsx?$/;
/** What goes into the bundle: TypeScript, and JSON (which Node imports only with `with { type: 'json' }`). */
const BUNDLED_FILE = /\.(?:[cm]?tsx?|json)$/;

/** What a compiled file's own location is read through (declared per file: see withLocation). */
const LOCATION_DEFINES = {
  'import.meta.url': '__tsgiImportMetaUrl',
  'import.meta.dirname': '__tsgiImportMetaDirname',
  'import.meta.filename': '__tsgiImportMetaFilename',
  __dirname: '__tsgiDirname',
  __filename: '__tsgiFilename',
} as const;

/** Before the bundle: `require` for CommonJS-style TypeScript (esbuild's __require calls the global one). */
const REQUIRE_BANNER = "import { createRequire as __tsgiCreateRequire } from 'node:module'; const require = __tsgiCreateRequire(import.meta.url);";

/** "app.ts:3:7: Expected ";" but found "x"". */
function describeMessage(message: Message): string {
  const where = message.location ? `${message.location.file}:${message.location.line}:${message.location.column + 1}: ` : '';
  return `${where}${message.text}`;
}

/** Marks build.resolve's own calls, which the plugin's onResolve leaves to esbuild. */
const RESOLVING = Symbol('tsgi resolving');

/**
 * Bundles the TypeScript (and JSON) files only: builtins stay as they are, everything else is external at the
 * absolute path esbuild resolved (a file URL for `import`, a path for `require`); each TypeScript file gets
 * its own location constants.
 */
const typeScriptOnly: Plugin = {
  name: 'tsgi-typescript-only',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind === 'entry-point' || args.pluginData === RESOLVING) return undefined;
      if (isBuiltin(args.path)) return { path: args.path, external: true };
      const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: RESOLVING });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      if (!resolved.external && BUNDLED_FILE.test(resolved.path)) {
        return { path: resolved.path, namespace: resolved.namespace, suffix: resolved.suffix };
      }
      const required = args.kind === 'require-call' || args.kind === 'require-resolve';
      return { path: required ? resolved.path : pathToFileURL(resolved.path).href, external: true };
    });
    build.onLoad({ filter: TYPESCRIPT_FILE }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      return { contents: withLocation(args.path, source), loader: loaderOf(args.path) };
    });
  },
};

function loaderOf(path: string): Loader {
  return path.endsWith('x') ? 'tsx' : 'ts';
}

/**
 * The source with the declarations LOCATION_DEFINES refers to, when it mentions one of them: on its first line
 * (after a `#!` line), so no line number moves. esbuild renames each file's copies apart.
 */
function withLocation(path: string, source: string): string {
  if (!source.includes('import.meta') && !source.includes('__dirname') && !source.includes('__filename')) return source;
  const values = {
    __tsgiImportMetaUrl: pathToFileURL(path).href,
    __tsgiImportMetaDirname: dirname(path),
    __tsgiImportMetaFilename: path,
    __tsgiDirname: dirname(path),
    __tsgiFilename: path,
  };
  const declarations = `const ${Object.entries(values)
    .map(([name, value]) => `${name} = ${JSON.stringify(value)}`)
    .join(', ')};`;
  if (!source.startsWith('#!')) return `${declarations}${source}`;
  const lineEnd = source.indexOf('\n');
  return lineEnd < 0 ? `${source}\n${declarations}` : `${source.slice(0, lineEnd + 1)}${declarations}${source.slice(lineEnd + 1)}`;
}
