/**
 * The package as a user gets it: `npm pack` of this repository, installed from the tarball into a fresh project
 * (package.json `"type": "module"`, nothing else) in a temporary directory, then:
 *
 * 1. **The documented API.** Every name README.md and docs/SPEC.md offer as an import (test/package/
 *    documented-api.ts, by entry point, plus the types of documented signatures) is imported by a generated .mjs
 *    run with node (each value must be defined) and by a generated .ts that this repository's own tsc checks
 *    against the installed package's .d.ts (values and types must be declared). A drift check, without packing,
 *    fails when the documents start using a name that src/ exports but the list does not hold.
 *
 * 2. **The documents' code examples.** The rule, applied to every fenced block of README.md and docs/SPEC.md
 *    (no line numbers anywhere):
 *    - only blocks marked `ts`, `typescript`, `mts`, `js`, `javascript` or `mjs` are code examples (sh, nginx,
 *      apache, json... are not);
 *    - an example with no `import` declaration is a fragment of a program written elsewhere and is skipped: today
 *      the four one-line framework glues of "Frameworks" (`export default fromNodeHandler(expressApp);`, four
 *      default exports of apps the block does not create) and SPEC's type signatures (`type App = ...`);
 *    - every other example is written to its own module in the project and type-checked by tsc (module NodeNext,
 *      strict, `skipLibCheck: false` so the package's own .d.ts are checked as a consumer's default tsc does,
 *      lib ES2023 without DOM plus @types/node: a plain Node project). Names it uses but declares nowhere
 *      (TypeScript's "Cannot find name", not its "Did you mean": that is a typo) are then declared `any` and the
 *      example checked again: today the "Testing apps" block, whose `app` and `expect` (vitest) come from the
 *      reader's project. Such an example is type-checked only;
 *    - an example with nothing undeclared is run from tsc's output with node against the installed package: one
 *      that calls `runWithCgi` is a CGI program, run with a CGI GET in its environment, and must exit 0 with a 2xx
 *      head; any other is imported, and when its default export (else its `app` export, as `tsgi serve` reads
 *      it) is a function it is an app, served with the installed package's `createHttpServer` on a free port,
 *      and one GET must get a 2xx answer. Today: the hello app at the top (served), "As a CGI script" (run as CGI),
 *      and the `tsgi.config.ts` of "Config file" (imported: its default export is an object).
 *
 * `npm test` builds dist/ before vitest runs; run alone, this test packs dist/ as it is (`npm pack
 * --ignore-scripts`: the package's `prepare` would rebuild it), so run `npm run build` first. `npm install`
 * uses the npm cache that `npm ci` filled (`--prefer-offline`; the registry only for what is missing), bounded
 * in time. The temporary directory is removed at the end.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  exampleFileName,
  importsItsDependencies,
  isCgiProgram,
  parseDiagnostics,
  scriptExamples,
  undeclaredName,
  type CodeExample,
  type Diagnostic,
} from './doc-examples.js';
import {
  allNames,
  API_DOCUMENTS,
  codeIdentifiers,
  declaredExports,
  DOCUMENTED_API,
  NOT_API,
  SIGNATURE_API,
  type EntryApi,
  type EntryPoint,
} from './documented-api.js';
import { runCommand, type CommandResult } from './run-command.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/.bin/tsc');
const NPM_INSTALL_TIMEOUT_MS = 60_000;
const TSC_TIMEOUT_MS = 45_000;
const NODE_TIMEOUT_MS = 20_000;

const documents = API_DOCUMENTS.map((document) => ({ document, text: readFileSync(join(ROOT, document), 'utf8') }));
const examples = documents.flatMap(({ document, text }) => scriptExamples(document, text));
const modules = examples.filter(importsItsDependencies);

describe('the documented API list (test/package/documented-api.ts)', () => {
  it('holds every name the documents show that src/ exports, and only names the documents use', () => {
    const exported = declaredExports(join(ROOT, 'src'));
    const used = new Set(documents.flatMap(({ text }) => [...codeIdentifiers(text)]));
    const listed = allNames(DOCUMENTED_API);
    const unlisted = [...used].filter((name) => exported.has(name) && !listed.has(name) && !(name in NOT_API));
    expect(unlisted, 'names the documents show: add each to DOCUMENTED_API or NOT_API').toEqual([]);
    expect([...listed].filter((name) => !used.has(name)), 'listed but never shown in the documents').toEqual([]);
  });
});

describe('the package packed and installed in a fresh project', () => {
  let work = '';
  let project = '';
  /** tsc over the API module and every example (tsconfig.json: emits to out/). */
  let firstCheck: CommandResult;

  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    work = await mkdtemp(join(tmpdir(), 'tsgi-pack-'));
    project = join(work, 'project');
    const packed = await runCommand('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: ROOT,
      env: npmEnv(),
      timeoutMs: 30_000,
    });
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]?.filename ?? '');
    mkdirSync(join(project, 'src'), { recursive: true });
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tsgi-consumer', private: true, type: 'module' }));
    const installed = await runCommand('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: project,
      env: npmEnv(),
      timeoutMs: NPM_INSTALL_TIMEOUT_MS,
    });
    expect(installed.code, installed.stderr).toBe(0);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(consumerTsconfig(), null, 2));
    writeFileSync(join(project, 'src/api.ts'), apiModule());
    for (const example of modules) writeFileSync(join(project, 'src', exampleFileName(example)), example.code);
    firstCheck = await runCommand(process.execPath, [TSC, '-p', '.', '--pretty', 'false'], { cwd: project, timeoutMs: TSC_TIMEOUT_MS });
  }, 110_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('exports every documented name, defined, from each entry point', async () => {
    writeFileSync(join(project, 'check-exports.mjs'), exportsScript());
    const result = await runCommand(process.execPath, ['check-exports.mjs'], { cwd: project, timeoutMs: NODE_TIMEOUT_MS });
    expect(result.code, result.stderr).toBe(0);
    const { missing } = JSON.parse(result.stdout) as { missing: string[] };
    expect(missing, 'documented names the installed package does not export').toEqual([]);
  });

  it("declares every documented name in the installed package's types", () => {
    // Errors in src/api.ts, or in any .d.ts (the package's own, or one it pulls in), are the package's.
    const errors = parseDiagnostics(firstCheck.stdout).filter((diagnostic) => diagnostic.file === 'src/api.ts' || !diagnostic.file.startsWith('src/'));
    expect(errors.map((diagnostic) => formatDiagnostic(diagnostic)), firstCheck.stdout).toEqual([]);
    expect(firstCheck.stdout.match(/^error TS.*$/gm) ?? [], 'errors of the tsc run itself').toEqual([]);
  });

  it('type-checks every example that imports its dependencies', async () => {
    const diagnostics = parseDiagnostics(firstCheck.stdout);
    const failures: string[] = [];
    const declared: Array<{ example: CodeExample; names: string[] }> = [];
    for (const example of modules) {
      const own = diagnostics.filter((diagnostic) => diagnostic.file === `src/${exampleFileName(example)}`);
      const names = [...new Set(own.map(undeclaredName).filter((name): name is string => name !== undefined))];
      if (names.length > 0) declared.push({ example, names });
      else failures.push(...own.map((diagnostic) => formatDiagnostic(diagnostic, example)));
    }
    expect(modules.length, 'no example imports its dependencies: the rule found nothing to check').toBeGreaterThan(0);
    if (declared.length > 0) failures.push(...(await checkWithDeclaredNames(declared)));
    expect(failures).toEqual([]);
  }, 90_000);

  it('runs every example that declares all it uses: apps answer a request, CGI programs answer as CGI', async () => {
    const diagnostics = parseDiagnostics(firstCheck.stdout);
    const runnable = modules.filter((example) => !diagnostics.some((diagnostic) => diagnostic.file === `src/${exampleFileName(example)}`));
    expect(runnable.length, 'no example can run stand-alone').toBeGreaterThan(0);
    writeFileSync(join(project, 'run-example.mjs'), runExampleScript());
    for (const example of runnable) {
      const compiled = join(project, 'out', exampleFileName(example).replace(/\.ts$/, '.js'));
      const where = `${example.document}:${example.line}`;
      if (isCgiProgram(example)) {
        const result = await runCommand(process.execPath, [compiled], { cwd: project, env: cgiEnv(), timeoutMs: NODE_TIMEOUT_MS });
        expect(result.code, `${where} as CGI: ${result.stderr}`).toBe(0);
        expect(cgiStatus(result.stdout), `${where} as CGI: ${result.stdout}`).toBeGreaterThanOrEqual(200);
        expect(cgiStatus(result.stdout), `${where} as CGI: ${result.stdout}`).toBeLessThan(300);
      } else {
        const result = await runCommand(process.execPath, ['run-example.mjs', compiled], { cwd: project, timeoutMs: NODE_TIMEOUT_MS });
        expect(result.code, `${where}: ${result.stderr}`).toBe(0);
        const outcome = JSON.parse(result.stdout) as { kind: 'app' | 'module'; status?: number; body?: string };
        if (outcome.kind === 'app') expect(outcome.status, `${where} served: ${outcome.body}`).toBeGreaterThanOrEqual(200);
        if (outcome.kind === 'app') expect(outcome.status, `${where} served: ${outcome.body}`).toBeLessThan(300);
      }
    }
  }, 90_000);

  /**
   * Type-checks the examples that use undeclared names again, with those names declared `any` (one line put
   * before the code), in a second program without emit; returns the remaining errors.
   */
  async function checkWithDeclaredNames(declared: Array<{ example: CodeExample; names: string[] }>): Promise<string[]> {
    mkdirSync(join(project, 'src/declared'), { recursive: true });
    for (const { example, names } of declared) {
      const prelude = `declare const ${names.map((name) => `${name}: any`).join(', ')};\n`;
      writeFileSync(join(project, 'src/declared', exampleFileName(example)), prelude + example.code);
    }
    const config = { extends: './tsconfig.json', compilerOptions: { noEmit: true }, include: ['src/declared'], exclude: [] };
    writeFileSync(join(project, 'tsconfig.declared.json'), JSON.stringify(config));
    const result = await runCommand(process.execPath, [TSC, '-p', 'tsconfig.declared.json', '--pretty', 'false'], {
      cwd: project,
      timeoutMs: TSC_TIMEOUT_MS,
    });
    return parseDiagnostics(result.stdout).map((diagnostic) => {
      const example = declared.find(({ example: one }) => diagnostic.file === `src/declared/${exampleFileName(one)}`)?.example;
      return formatDiagnostic({ ...diagnostic, line: diagnostic.line - 1 }, example);
    });
  }
});

/** The environment for npm: this one without the variables of an enclosing npm script (`npm test`). */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_(?:package|lifecycle)_|^npm_config_(?:prefix|local_prefix|global|workspaces?)$/i.test(name)) continue;
    env[name] = value;
  }
  return env;
}

/** The consumer's tsconfig: see the header (module NodeNext, strict, the package's .d.ts checked, no DOM). */
function consumerTsconfig(): object {
  return {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023'],
      types: ['node'],
      typeRoots: [join(ROOT, 'node_modules/@types')],
      strict: true,
      skipLibCheck: false,
      allowJs: true,
      checkJs: true,
      rootDir: 'src',
      outDir: 'out',
    },
    include: ['src'],
  };
}

/** Every documented name of every entry point, by entry point: values and types together. */
function entries(): Array<[EntryPoint, EntryApi]> {
  return (Object.keys(DOCUMENTED_API) as EntryPoint[]).map((entry) => [
    entry,
    {
      values: [...DOCUMENTED_API[entry].values, ...SIGNATURE_API[entry].values],
      types: [...DOCUMENTED_API[entry].types, ...SIGNATURE_API[entry].types],
    },
  ]);
}

/** A module importing every documented name (each under an alias naming its entry point) and using each. */
function apiModule(): string {
  const alias = (entry: EntryPoint, name: string): string => `${entry.replace(/\W/g, '_')}$${name}`;
  const lines: string[] = [];
  const values: string[] = [];
  const types: string[] = [];
  for (const [entry, api] of entries()) {
    const specifiers = [
      ...api.values.map((name) => `${name} as ${alias(entry, name)}`),
      ...api.types.map((name) => `type ${name} as ${alias(entry, name)}`),
    ];
    lines.push(`import { ${specifiers.join(', ')} } from '${entry}';`);
    values.push(...api.values.map((name) => alias(entry, name)));
    types.push(...api.types.map((name) => alias(entry, name)));
  }
  lines.push(`export const values: unknown[] = [${values.join(', ')}];`);
  lines.push(`export type Types = [${types.join(', ')}];`);
  return lines.join('\n') + '\n';
}

/** A script importing each entry point and printing, as JSON, the documented values it lacks. */
function exportsScript(): string {
  const expected = Object.fromEntries(entries().map(([entry, api]) => [entry, api.values]));
  return `const expected = ${JSON.stringify(expected)};
const missing = [];
for (const [entry, names] of Object.entries(expected)) {
  let namespace;
  try {
    namespace = await import(entry);
  } catch (error) {
    missing.push(entry + ': cannot be imported: ' + error.message);
    continue;
  }
  for (const name of names) if (namespace[name] === undefined) missing.push(entry + ': ' + name);
}
process.stdout.write(JSON.stringify({ missing }));
`;
}

/**
 * A script that imports the module named by its argument; when its default export (else `app`) is a function it
 * serves it with the installed createHttpServer on a free port and GETs one page. Prints the outcome as JSON.
 */
function runExampleScript(): string {
  return `import { pathToFileURL } from 'node:url';
import { createHttpServer } from 'tsgi';
const exports = await import(pathToFileURL(process.argv[2]).href);
const app = typeof exports.default === 'function' ? exports.default : exports.app;
if (typeof app !== 'function') {
  process.stdout.write(JSON.stringify({ kind: 'module' }));
} else {
  const server = createHttpServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const response = await fetch('http://127.0.0.1:' + server.address().port + '/hello?x=1', { headers: { connection: 'close' } });
  const body = await response.text();
  await new Promise((resolve) => server.close(resolve));
  process.stdout.write(JSON.stringify({ kind: 'app', status: response.status, body }));
}
`;
}

/** A CGI GET request in a minimal environment, as a web server sets it for a script. */
function cgiEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '/cgi-bin/hello.cgi',
    PATH_INFO: '/hello',
    QUERY_STRING: 'x=1',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REMOTE_ADDR: '127.0.0.1',
  };
}

/** The status of a CGI response: its `Status:` field, 200 without one; 0 when `output` has no head at all. */
function cgiStatus(output: string): number {
  const end = output.search(/\r?\n\r?\n/);
  if (end === -1) return 0;
  const status = /^Status:\s*(\d{3})/im.exec(output.slice(0, end));
  return status ? Number(status[1]) : 200;
}

/** A diagnostic as `README.md:85 (+3): TS2304 ...`, pointing into the document when it comes from an example. */
function formatDiagnostic(diagnostic: Diagnostic, example?: CodeExample): string {
  const where = example ? `${example.document}:${example.line + diagnostic.line}` : `${diagnostic.file}:${diagnostic.line}`;
  return `${where}: TS${diagnostic.code} ${diagnostic.message}`;
}
