import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** Lines put before the bundle: the interpreter line, and the httpoxy guard that must run before app code. */
const BANNER = [
  '#!/usr/bin/env node',
  // httpoxy (CVE-2016-5385): under CGI, HTTP_PROXY is the client's `Proxy:` header; drop it before any module
  // (an HTTP client library reading it at load time) runs.
  'if (process.env.GATEWAY_INTERFACE) delete process.env.HTTP_PROXY;',
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

const USAGE = `usage: tsgi build ENTRY -o FILE [--no-minify] [--sourcemap]

Bundles ENTRY and its imports into one executable file (shebang + CommonJS) to drop into a cgi-bin/ folder.
`;

/** The `tsgi build` verb. Returns the exit status. */
export async function runBuildCommand(args: string[], io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        'no-minify': { type: 'boolean' },
        sourcemap: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`tsgi build: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const [entry, ...rest] = parsed.positionals;
  if (!entry || rest.length > 0 || !parsed.values.out) {
    io.stderr.write(`tsgi build: expected one ENTRY and -o FILE\n${USAGE}`);
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
