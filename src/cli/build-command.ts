import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { BuildOptions as EsbuildOptions } from 'esbuild';
import { HTTPOXY_GUARD } from '../servers/httpoxy.js';
import { isDeferredBuiltin, LAZY_BUILTINS_PRELUDE } from './lazy-builtins.js';

/** The interpreter line's default: finds node on the PATH at every run (the web server's PATH, not yours). */
export const DEFAULT_SHEBANG = '/usr/bin/env node';
/**
 * The longest `--shebang` accepted: `#!` and it fit in 128 bytes, what Linux before 5.1 reads of an
 * interpreter line (longer lines were cut there, silently).
 */
export const MAX_SHEBANG_LENGTH = 126;

/**
 * Lines put before the bundle: the interpreter line; "use strict" (the bundle's code is ES module code, strict:
 * the directive only counts first in the file, before the lines below); the httpoxy guard that must run
 * before app code; the `require` that loads Node's builtins on first use (lazy-builtins.ts), when the bundle
 * requires a builtin that it defers (none for most CGI scripts: the prelude is then left out, as it costs
 * start-up time and defers nothing).
 */
function banner(shebang: string, lazyBuiltins: boolean): string {
  return [
    `#!${shebang}`,
    '"use strict";',
    // httpoxy (CVE-2016-5385): under CGI, HTTP_PROXY is the client's `Proxy:` header; drop it before any module
    // (an HTTP client library reading it at load time) runs.
    HTTPOXY_GUARD,
    ...(lazyBuiltins ? [LAZY_BUILTINS_PRELUDE] : []),
  ].join('\n');
}

/**
 * Checks a `--shebang` value: an absolute interpreter path, optionally followed by one argument, on one line
 * of at most MAX_SHEBANG_LENGTH characters. Returns the reason it is refused, or null.
 */
export function shebangProblem(shebang: string): string | null {
  if (!shebang.startsWith('/')) return `the interpreter must be an absolute path (${JSON.stringify(shebang)})`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(shebang)) return 'the interpreter line must not hold control characters';
  if (shebang.length > MAX_SHEBANG_LENGTH) return `the interpreter line is longer than ${MAX_SHEBANG_LENGTH} characters`;
  return null;
}


/** Options for buildCgi. */
export interface BuildOptions {
  /** Minify the output (default true: less to parse at every CGI start). */
  minify?: boolean;
  /** Write a source map next to the output. */
  sourcemap?: boolean;
  /**
   * The interpreter line, without `#!` (default DEFAULT_SHEBANG, `/usr/bin/env node`). An absolute path to node
   * (`/usr/bin/node`) saves the exec of env and its PATH search at every request (about 1 ms), but only runs
   * where node is at that path.
   */
  shebang?: string;
}

/**
 * Bundles ENTRY (TypeScript or JavaScript) and everything it imports into one executable CommonJS file with a
 * `#!/usr/bin/env node` line (or `options.shebang`), for cgi-bin/ folders and shared hosting where there is no
 * node_modules. CommonJS because a `.cgi` file has no package.json to say it is a module, and it starts faster.
 */
export async function buildCgi(entry: string, outFile: string, options: BuildOptions = {}): Promise<void> {
  const shebang = options.shebang ?? DEFAULT_SHEBANG;
  const refused = shebangProblem(shebang);
  if (refused !== null) throw new Error(`tsgi build: bad --shebang: ${refused}`);
  const { build } = await import('esbuild');
  const entryPath = resolve(entry);
  await stat(entryPath).catch(() => {
    throw new Error(`tsgi build: entry not found (${entry})`);
  });
  const output = resolve(outFile);
  await mkdir(dirname(output), { recursive: true });
  const common: EsbuildOptions = {
    entryPoints: [entryPath],
    outfile: output,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ? 'linked' : false,
    legalComments: 'none',
    logLevel: 'warning',
  };
  // First in memory, to learn which modules the bundle requires (builtins and anything else left external);
  // then written with the banner that needs. Bundling twice costs milliseconds; a bundle's start-up runs at
  // every request.
  const probe = await build({ ...common, write: false, metafile: true, logLevel: 'silent' });
  const external = Object.values(probe.metafile?.outputs ?? {}).flatMap((out) => out.imports.filter((found) => found.external).map((found) => found.path));
  await build({ ...common, banner: { js: banner(shebang, external.some(isDeferredBuiltin)) } });
  await chmod(output, 0o755);
}

/** Every flag `tsgi build` accepts, as parseArgs takes them (the help test checks each is documented). */
export const BUILD_OPTIONS = {
  out: { type: 'string', short: 'o' },
  'no-minify': { type: 'boolean' },
  sourcemap: { type: 'boolean' },
  shebang: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const BUILD_USAGE = `usage: tsgi build ENTRY -o FILE [options]

Bundles ENTRY (TypeScript or JavaScript) and everything it imports into one executable CommonJS file that
starts with "#!/usr/bin/env node" (or --shebang), for cgi-bin/ folders and shared hosting where there is
no node_modules. ENTRY is a CGI script: it calls runWithCgi(app). The file drops HTTP_PROXY from the
environment before any bundled code runs (httpoxy), and loads each Node builtin it imports (net, crypto,
zlib, stream...) when the code first uses it, not at every start.

Output:
  -o, --out FILE    the file to write, mode 755 (missing folders are created)
  --no-minify       keep the code readable (default: minified, less for node to parse at every request)
  --sourcemap       also write FILE.map, linked from FILE (run with node --enable-source-maps for stack
                    traces that point at the sources)
  --shebang PATH    the interpreter line after "#!", e.g. "/usr/bin/node": an absolute path, optionally
                    with one argument, at most 126 characters (default: "/usr/bin/env node", which finds
                    node on the web server's PATH; an absolute path saves running env at every request,
                    about 1 ms, but the file then only runs where node is at PATH)

  -h, --help        this help

Exit status: 0 when FILE was written, 1 when the build failed (the reason on stderr), 2 for bad arguments.

Examples:
  tsgi build cgi-bin/app.ts -o /usr/lib/cgi-bin/app.cgi
  tsgi build app.ts -o ~/public_html/app.cgi --sourcemap
  tsgi build app.ts -o /usr/lib/cgi-bin/app.cgi --shebang "$(command -v node)"
  tsgi cgi ~/public_html/app.cgi GET /hello     try the result through pipes, as a web server runs it
`;

/** The `tsgi build` verb. Returns the exit status. */
export async function runBuildCommand(
  args: string[],
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: BUILD_OPTIONS,
    });
  } catch (error) {
    io.stderr.write(`tsgi build: ${(error as Error).message}\n${BUILD_USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(BUILD_USAGE);
    return 0;
  }
  const [entry, ...rest] = parsed.positionals;
  if (!entry || rest.length > 0 || !parsed.values.out) {
    io.stderr.write(`tsgi build: expected one ENTRY and -o FILE\n${BUILD_USAGE}`);
    return 2;
  }
  const refused = parsed.values.shebang === undefined ? null : shebangProblem(parsed.values.shebang);
  if (refused !== null) {
    io.stderr.write(`tsgi build: bad --shebang: ${refused}\n${BUILD_USAGE}`);
    return 2;
  }
  try {
    await buildCgi(entry, parsed.values.out, {
      minify: !parsed.values['no-minify'],
      sourcemap: parsed.values.sourcemap ?? false,
      shebang: parsed.values.shebang,
    });
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  io.stdout.write(`tsgi build: wrote ${parsed.values.out}\n`);
  return 0;
}
