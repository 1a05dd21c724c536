import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HTTPOXY_GUARD } from '../servers/httpoxy.js';
import { LAZY_BUILTINS_PRELUDE } from './lazy-builtins.js';

/**
 * Lines put before the bundle: the interpreter line; "use strict" (the bundle's code is ES module code, strict:
 * the directive only counts first in the file, before the lines below); the httpoxy guard that must run
 * before app code; the `require` that loads Node's builtins on first use (lazy-builtins.ts).
 */
const BANNER = [
  '#!/usr/bin/env node',
  '"use strict";',
  // httpoxy (CVE-2016-5385): under CGI, HTTP_PROXY is the client's `Proxy:` header; drop it before any module
  // (an HTTP client library reading it at load time) runs.
  HTTPOXY_GUARD,
  LAZY_BUILTINS_PRELUDE,
].join('\n');

/** Options for buildCgi. */
export interface BuildOptions {
  /** Minify the output (default true: less to parse at every CGI start). */
  minify?: boolean;
  /** Write a source map next to the output. */
  sourcemap?: boolean;
}

/**
 * Bundles ENTRY (TypeScript or JavaScript) and everything it imports into one executable CommonJS file with a
 * `#!/usr/bin/env node` line, for cgi-bin/ folders and shared hosting where there is no node_modules.
 * CommonJS because a `.cgi` file has no package.json to say it is a module, and it starts faster.
 */
export async function buildCgi(entry: string, outFile: string, options: BuildOptions = {}): Promise<void> {
  const { build } = await import('esbuild');
  const entryPath = resolve(entry);
  await stat(entryPath).catch(() => {
    throw new Error(`tsgi build: entry not found (${entry})`);
  });
  const output = resolve(outFile);
  await mkdir(dirname(output), { recursive: true });
  await build({
    entryPoints: [entryPath],
    outfile: output,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ? 'linked' : false,
    legalComments: 'none',
    banner: { js: BANNER },
    logLevel: 'warning',
  });
  await chmod(output, 0o755);
}

/** Every flag `tsgi build` accepts, as parseArgs takes them (the help test checks each is documented). */
export const BUILD_OPTIONS = {
  out: { type: 'string', short: 'o' },
  'no-minify': { type: 'boolean' },
  sourcemap: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const BUILD_USAGE = `usage: tsgi build ENTRY -o FILE [options]

Bundles ENTRY (TypeScript or JavaScript) and everything it imports into one executable CommonJS file that
starts with "#!/usr/bin/env node", for cgi-bin/ folders and shared hosting where there is no node_modules.
ENTRY is a CGI script: it calls runWithCgi(app). The file drops HTTP_PROXY from the environment before
any bundled code runs (httpoxy), and loads each Node builtin it imports (net, crypto, zlib, stream...) when
the code first uses it, not at every start.

Output:
  -o, --out FILE    the file to write, mode 755 (missing folders are created)
  --no-minify       keep the code readable (default: minified, less for node to parse at every request)
  --sourcemap       also write FILE.map, linked from FILE (run with node --enable-source-maps for stack
                    traces that point at the sources)

  -h, --help        this help

Exit status: 0 when FILE was written, 1 when the build failed (the reason on stderr), 2 for bad arguments.

Examples:
  tsgi build cgi-bin/app.ts -o /usr/lib/cgi-bin/app.cgi
  tsgi build app.ts -o ~/public_html/app.cgi --sourcemap
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
  try {
    await buildCgi(entry, parsed.values.out, {
      minify: !parsed.values['no-minify'],
      sourcemap: parsed.values.sourcemap ?? false,
    });
  } catch (error) {
    io.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  io.stdout.write(`tsgi build: wrote ${parsed.values.out}\n`);
  return 0;
}
