/**
 * `tsgi serve --config FILE`: every serve flag, from a file.
 *
 * Two formats. JSON (`.json`, or any other name) for files that tools write and that must not run code; a
 * JavaScript or TypeScript module (`.js`, `.mjs`, `.cjs`, `.ts`, `.mts`, `.cts`) whose default export is the
 * same object, for values computed at start-up (`process.env.PORT`, `availableParallelism()`) and type
 * checking with `satisfies`. Keys are the long flag names ("max-requests"), plus "app" for MODULE[:EXPORT].
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseAppReference } from './load-app.js';

/** The value types parseArgs gives: a string or a boolean per flag, a list of strings for a repeatable one. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** What a parseArgs option config says of one flag (the part the config file needs). */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable (`--cgi-env A=1 --cgi-env B=2`): a list in the file too. */
  multiple?: boolean;
}

/** A config file read and checked, in the shape of parseArgs' values. */
export interface ServeConfig {
  /** The file, as given. */
  path: string;
  /** MODULE[:EXPORT], with a relative module path resolved against the file's directory. */
  app?: string;
  /** Flag values by long name. */
  values: FlagValues;
}

/** Keys that are not flags of the file: the file itself, and help. */
const NOT_IN_FILE = new Set(['config', 'help']);
/** String flags that may also be given as a JSON number (converted with String()). */
const NUMBER_FLAGS = new Set([
  'http',
  'fastcgi',
  'scgi',
  'uwsgi',
  'workers',
  'max-requests',
  'max-requests-jitter',
  'max-rss',
  'timeout',
  'graceful-timeout',
  'max-body',
  'max-connections',
  'header-timeout',
  'body-timeout',
  'idle-timeout',
  'socket-owner',
  'socket-group',
]);
/** Flags whose value is a listen address: "unix:relative/path" is resolved against the file's directory. */
const ADDRESS_FLAGS = new Set(['http', 'fastcgi', 'scgi', 'uwsgi']);
const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** A config file that can't be used; the message names the file and the key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads FILE (relative to `cwd`) and checks it against `flags` (the serve command's parseArgs options).
 * Throws a ConfigError for a missing or unparsable file, a non-object, an unknown key or a value of the wrong
 * type, naming the key: `tsgi serve: config app.json: "workers" must be a string or a number (got true)`.
 */
export async function loadConfigFile(file: string, flags: Readonly<Record<string, FlagSpec>>, cwd = process.cwd()): Promise<ServeConfig> {
  const absolute = resolve(cwd, file);
  const extension = extname(absolute).toLowerCase();
  let data: unknown;
  if (MODULE_EXTENSIONS.has(extension)) {
    data = await importConfigModule(file, absolute, extension);
  } else {
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (error) {
      throw new ConfigError(`tsgi serve: cannot read the config file (${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`tsgi serve: config ${file} is not valid JSON (${(error as Error).message})`);
    }
  }
  return checkConfig(data, flags, file, dirname(absolute));
}

async function importConfigModule(file: string, absolute: string, extension: string): Promise<unknown> {
  const url = pathToFileURL(absolute).href;
  let namespace: Record<string, unknown>;
  try {
    if (TYPESCRIPT_EXTENSIONS.has(extension)) {
      // Compiled by the same helper as a TypeScript app (import-typescript.ts): no loader thread in the master.
      namespace = await (await import('./import-typescript.js')).importTypeScript(absolute);
    } else {
      namespace = (await import(url)) as Record<string, unknown>;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ERR_MODULE_NOT_FOUND' && !(error as Error).message.includes(absolute) ? (error as Error).message : (code ?? (error as Error).message);
    throw new ConfigError(`tsgi serve: cannot load the config module (${file}: ${why})`);
  }
  let config = namespace.default;
  // A CommonJS module (or one compiled to it) arrives as { default: module.exports }.
  if (config && typeof config === 'object' && 'default' in config && Object.keys(config).length === 1) {
    config = (config as { default: unknown }).default;
  }
  if (config === undefined) throw new ConfigError(`tsgi serve: config ${file} has no default export (an object of options)`);
  return config;
}

/**
 * Checks a config object (parsed JSON or a module's default export). `baseDir` is the file's directory, against
 * which relative paths ("app", "access-log", "error-log", "unix:..." addresses) are resolved.
 */
export function checkConfig(data: unknown, flags: Readonly<Record<string, FlagSpec>>, file: string, baseDir: string): ServeConfig {
  const where = `tsgi serve: config ${file}`;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${where} must hold an object of options, like {"http": "127.0.0.1:8000"} (got ${describe(data)})`);
  }
  const known = Object.keys(flags).filter((name) => !NOT_IN_FILE.has(name));
  const config: ServeConfig = { path: file, values: {} };
  for (const [key, value] of Object.entries(data)) {
    if (key === 'app') {
      if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: "app" must be a string, MODULE[:EXPORT] (got ${describe(value)})`);
      config.app = resolveAppReference(value, baseDir);
      continue;
    }
    const spec = NOT_IN_FILE.has(key) ? undefined : flags[key];
    if (spec === undefined) throw new ConfigError(`${where}: unknown key "${key}"${suggest(key, known)}`);
    if (spec.type === 'boolean') {
      if (typeof value !== 'boolean') throw new ConfigError(`${where}: "${key}" must be true or false (got ${describe(value)})`);
      config.values[key] = value;
      continue;
    }
    if (spec.multiple) {
      config.values[key] = listValue(value, key, where);
      continue;
    }
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && NUMBER_FLAGS.has(key) && Number.isFinite(value) && value >= 0) text = String(value);
    else {
      const wanted = NUMBER_FLAGS.has(key) ? 'a string or a number' : 'a string';
      throw new ConfigError(`${where}: "${key}" must be ${wanted} (got ${describe(value)})`);
    }
    if ((key === 'access-log' || key === 'error-log') && text !== '-') text = resolve(baseDir, text);
    if (key === 'cgi-bin') text = resolve(baseDir, text);
    if (ADDRESS_FLAGS.has(key) && text.startsWith('unix:') && !isAbsolute(text.slice(5)) && text.length > 5) {
      text = `unix:${resolve(baseDir, text.slice(5))}`;
    }
    config.values[key] = text;
  }
  return config;
}

/**
 * Command-line values override the file's. The transport flags are one choice: any of them on the command
 * line replaces whichever the file named.
 */
export function mergeConfig(fileValues: FlagValues, cliValues: FlagValues, transportFlags: readonly string[]): FlagValues {
  const merged: FlagValues = { ...fileValues };
  if (transportFlags.some((flag) => cliValues[flag] !== undefined)) {
    for (const flag of transportFlags) delete merged[flag];
  }
  for (const [key, value] of Object.entries(cliValues)) if (value !== undefined) merged[key] = value;
  return merged;
}

/**
 * A repeatable flag's value in the file: a string (one item), an array of strings, or an object whose entries
 * become NAME=VALUE items (`"cgi-env": {"GIT_PROJECT_ROOT": "/srv/git"}`, `"cgi-interpreter": {".php": "/usr/bin/php-cgi"}`).
 */
function listValue(value: unknown, key: string, where: string): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value as string[];
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((item) => typeof item === 'string')) {
    return Object.entries(value as Record<string, string>).map(([name, item]) => `${name}=${item}`);
  }
  throw new ConfigError(`${where}: "${key}" must be a string, an array of strings or an object of strings (got ${describe(value)})`);
}

function resolveAppReference(reference: string, baseDir: string): string {
  const { modulePath, exportName } = parseAppReference(reference);
  const absolute = resolve(baseDir, modulePath);
  return exportName === null ? absolute : `${absolute}:${exportName}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** ` (did you mean "max-requests"?)` for "maxRequests", "max_requests" or "--max-requests"; else the list. */
function suggest(key: string, known: readonly string[]): string {
  const normalized = key
    .replace(/^-+/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/_/g, '-')
    .toLowerCase();
  if (known.includes(normalized)) return ` (did you mean "${normalized}"?)`;
  return ` (keys: app, ${known.join(', ')})`;
}
