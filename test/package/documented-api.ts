/**
 * The public API as README.md and docs/SPEC.md present it: every name they use (in inline code or a code block)
 * as something to import from `tsgi`, `tsgi/testing` or `tsgi/fastcgi`, by entry point. test/package/
 * pack.test.ts imports each from the packed and installed package; the drift check there keeps this list and
 * the documents in step (a name the documents start using must be listed here or in NOT_API).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package's entry points (package.json "exports", without "./package.json"). */
export type EntryPoint = 'tsgi' | 'tsgi/testing' | 'tsgi/fastcgi';

/** Names an entry point must export: values (checked at run time and by tsc) and types (checked by tsc). */
export interface EntryApi {
  values: string[];
  types: string[];
}

/** What the documents name, by the entry point they name or imply. */
export const DOCUMENTED_API: Record<EntryPoint, EntryApi> = {
  tsgi: {
    values: [
      // Servers and their listener ("Run it over HTTP", "Behind a web server", "As a CGI script").
      'createHttpServer',
      'createFastCgiServer',
      'createScgiServer',
      'createUwsgiServer',
      'listenOn',
      'parseListenTarget',
      'runWithCgi',
      // Bridges ("Frameworks").
      'toNodeListener',
      'fromNodeHandler',
      'environOf',
      'fromFetch',
      'toFetch',
      // Middleware and helpers.
      'compose',
      'errorHandler',
      'validator',
      'urlMap',
      'accessLog',
      'Request',
      'Response',
      'decodeLatin1Utf8',
      // The environ translator (SPEC 8; README "Fuzzing") and the CGI environment decoder it is fuzzed with.
      'createEnviron',
      'decodeProcessEnv',
      // Errors an app sees or throws (SPEC 5.4, 6; README "Middleware and helpers", "Faults").
      'RequestError',
      'InputError',
      'AbortError',
      'LintError',
      // The CGI host as an app (SPEC 9, 9.2) and the defaults of its options that SPEC 9.2 names.
      'cgiBin',
      'DEFAULT_TIMEOUT_MS',
      'DEFAULT_MAX_REDIRECTS',
      'MAX_UNSIZED_BODY_BYTES',
      'MAX_HEAD_BYTES',
    ],
    types: ['App', 'Body', 'Environ', 'InputStream', 'StartResponse', 'Write'],
  },
  'tsgi/testing': {
    values: [
      'testClient',
      'conformanceApp',
      'conformanceCases',
      'runCgi',
      'spawnCgi',
      // SPEC 9.1 (running one script with runCgi / spawnCgi).
      'DEFAULT_ENV_ALLOW_LIST',
      'DEFAULT_TIMEOUT_MS',
      'KILL_TIMEOUT_MS',
    ],
    types: [],
  },
  'tsgi/fastcgi': { values: ['createServer'], types: [] },
};

/**
 * Exported on purpose although the documents do not spell them: what a documented function takes or returns,
 * so that a caller can name it. createFastCgiServer returns a FastCgiServer configured by FastCgiServerOptions;
 * listenOn takes a ListenTarget (the README now names parseListenTarget, which reads the text form)
 * uses for it) and UnixSocketOptions.
 */
export const SIGNATURE_API: Record<EntryPoint, EntryApi> = {
  tsgi: {
    values: ['FastCgiServer'],
    types: ['FastCgiServerOptions', 'ListenTarget', 'UnixSocketOptions'],
  },
  'tsgi/testing': { values: [], types: [] },
  'tsgi/fastcgi': { values: [], types: [] },
};

/**
 * Names in the documents' code that some module under src/ exports, but that the documents do not offer as an
 * import: each with what it is there.
 */
export const NOT_API: Record<string, string> = {
  Status: 'the CGI `Status:` response field',
  ping: 'the `tsgi ping` command',
  setVariable: '`res.setVariable()`, a method of the tsgi/fastcgi response',
  Server: '`net.Server`, what the create*Server functions return',
  FCGI_KEEP_CONN: 'a FastCGI protocol flag',
  applyMount: 'named as a fuzzing target in "Fuzzing"; internal to createEnviron',
};

/** The documents the API is read from, relative to the repository root. */
export const API_DOCUMENTS = ['README.md', 'docs/SPEC.md'];

/** Every identifier inside the code of a markdown text: fenced blocks and inline code spans (which may wrap). */
export function codeIdentifiers(markdown: string): Set<string> {
  const fence = /^```[^\n]*\n([\s\S]*?)^```/gm;
  const blocks = [...markdown.matchAll(fence)].map((match) => match[1] ?? '');
  const prose = markdown.replace(fence, '');
  const spans = [...prose.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');
  return new Set([...blocks, ...spans].join('\n').match(/[A-Za-z_$][\w$]*/g) ?? []);
}

/** The names declared with `export` (const, function, class, interface, type, enum) in the .ts files under `dir`. */
export function declaredExports(dir: string): Set<string> {
  const names = new Set<string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    const declaration = /export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(?:const|let|function\*?|class|interface|type|enum)\s+([A-Za-z_$][\w$]*)/g;
    for (const match of text.matchAll(declaration)) names.add(match[1] as string);
  }
  return names;
}

/** All names of `api`, values and types, over every entry point. */
export function allNames(...apis: Array<Record<EntryPoint, EntryApi>>): Set<string> {
  return new Set(apis.flatMap((api) => Object.values(api).flatMap((entry) => [...entry.values, ...entry.types])));
}
