/**
 * Maps a URL path under a cgi-bin folder to the script to run (RFC 3875 §3.3, conformance B18, field-notes
 * T37): the first path segment that names an executable regular file is the script; what follows is its
 * PATH_INFO. Nothing outside the folder can ever be reached: ".." and "." segments (plain or percent-encoded),
 * encoded slashes and backslashes, NUL, and symlinks whose target lies outside the folder are refused.
 *
 * The file system is asked with synchronous calls (lstat, access, realpath of a symlink): on a local disk
 * each takes microseconds, less than a round trip through libuv's thread pool costs in CPU, and the spawn that
 * follows a lookup holds the event loop far longer (fork).
 */
import { accessSync, constants, lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { join, sep } from 'node:path';
import { RequestError } from '../errors.js';
import { percentDecodeToByteString } from '../environ/byte-policy.js';
import { normalizeMount } from '../environ/mount.js';

/** Where a URL path leads inside a cgi-bin folder. */
export interface ResolvedScript {
  /** The script's real path on disk (symlinks resolved), to execute. */
  scriptPath: string;
  /** SCRIPT_NAME: `mountPath` plus the decoded segments up to and including the script ("/cgi-bin/s.cgi"). */
  scriptName: string;
  /**
   * The rest of the path after the script, still percent-encoded ("/a%20b"), or "" when there is none. Pass
   * it (plus "?" and the query) as the `url` of runCgi, which decodes it into PATH_INFO.
   */
  pathInfo: string;
  /** The raw query string after "?", or "" when there is none. */
  queryString: string;
}

/** Options of resolveScript. */
export interface ResolveScriptOptions {
  /**
   * The URL prefix the folder is mounted at ("/cgi-bin"); "" (the default) mounts it at the root. The mount rule
   * of environ/mount.ts: a prefix that is not a path rejects with a TsgiError.
   */
  mountPath?: string;
}

/**
 * Resolves `urlPath` (a request path with an optional "?query", e.g. "/cgi-bin/s.cgi/a%20b?x=1") against the
 * cgi-bin `folder` mounted at `options.mountPath`. Walks the segments from the folder until one is an
 * executable regular file. Rejects with a RequestError: 404 when the path is outside the mount, names nothing,
 * or stops at a folder; 403 for a traversal attempt (a dot segment, an encoded "/" or "\" or NUL), a symlink
 * leading outside the folder, a file that isn't executable, or something that isn't a regular file.
 */
export async function resolveScript(
  folder: string,
  urlPath: string,
  options: ResolveScriptOptions = {},
): Promise<ResolvedScript> {
  const mark = urlPath.indexOf('?');
  const path = mark < 0 ? urlPath : urlPath.slice(0, mark);
  const queryString = mark < 0 ? '' : urlPath.slice(mark + 1);
  const mountPath = normalizeMount(options.mountPath ?? '', 'cgi-host: mountPath');
  if (!path.startsWith(`${mountPath}/`)) throw notFound('path is outside the cgi-bin mount', path);
  const rawSegments = path.slice(mountPath.length + 1).split('/');
  const decode = (raw: string): string => {
    const decoded = percentDecodeToByteString(raw);
    // An encoded "/" or "\\" would name another folder than the one the segment seems to stay in.
    if (/[/\\]/.test(decoded)) throw forbidden('path traversal refused', path);
    return decoded;
  };
  const found = walk(folder, rawSegments, decode, path, {});
  if (found.kind === 'folder') throw notFound('path names a folder, not a script', path);
  const remaining = rawSegments.slice(found.segments);
  return {
    scriptPath: found.scriptPath,
    scriptName: mountPath + found.names.map((name) => `/${name}`).join(''),
    pathInfo: remaining.length === 0 ? '' : `/${remaining.join('/')}`,
    queryString,
  };
}

/** Options of lookupScript. */
export interface LookupScriptOptions {
  /**
   * Extensions (".php", with the dot) of scripts run through an interpreter: such a file need only be
   * readable, not executable. Default none.
   */
  interpretedExtensions?: ReadonlySet<string>;
}

/** Where a decoded path leads inside a cgi-bin folder: a script, or a folder (for its index). */
export type ScriptLookup =
  | {
      kind: 'script';
      /** The script's real path on disk (symlinks resolved). */
      scriptPath: string;
      /** The path segments up to and including the script, as the request had them: "/sub/s.cgi" (a byte string). */
      scriptPart: string;
      /** The rest of the path after the script ("" or starting with "/"), a byte string: PATH_INFO. */
      pathInfo: string;
      /** The script's extension, with the dot (".php"), or "" when its name has none. */
      extension: string;
    }
  | {
      kind: 'folder';
      /** The folder's real path on disk. */
      folderPath: string;
      /** The path up to the folder, without a trailing "/" ("" for the cgi-bin folder itself). */
      folderPart: string;
      /** True when the path ended with "/" after the folder. */
      trailingSlash: boolean;
    };

/**
 * Looks up a percent-decoded path (a byte string, "" or starting with "/", such as an environ's PATH_INFO)
 * in the cgi-bin `folder`: the first segment naming a runnable regular file is the script, the rest its
 * PATH_INFO; a path that ends at a folder is reported as one. The same refusals as resolveScript (a RequestError:
 * 403 for a dot segment, "\\" or NUL in a segment, a symlink out of the folder, a file that isn't executable
 * (or readable, for an interpreted extension), something that isn't a regular file; 404 for what doesn't exist
 * or an empty segment). An encoded "/" can't be told from a real one in a decoded path: it separates segments.
 */
export async function lookupScript(folder: string, path: string, options: LookupScriptOptions = {}): Promise<ScriptLookup> {
  if (path === '') return { kind: 'folder', folderPath: rootOf(folder), folderPart: '', trailingSlash: false };
  if (!path.startsWith('/')) throw notFound('path must start with "/"', path);
  const segments = path.slice(1).split('/');
  const trailingSlash = segments.length > 0 && segments[segments.length - 1] === '';
  if (trailingSlash) segments.pop();
  const found = walk(folder, segments, (segment) => segment, path, options);
  if (found.kind === 'folder') {
    return { kind: 'folder', folderPath: found.folderPath, folderPart: joinSegments(segments), trailingSlash };
  }
  const rest = segments.slice(found.segments);
  return {
    kind: 'script',
    scriptPath: found.scriptPath,
    scriptPart: joinSegments(segments.slice(0, found.segments)),
    pathInfo: rest.length === 0 ? (trailingSlash ? '/' : '') : `/${rest.join('/')}${trailingSlash ? '/' : ''}`,
    extension: extensionOf(segments[found.segments - 1] as string),
  };
}

type WalkResult =
  | { kind: 'script'; scriptPath: string; segments: number; names: string[] }
  | { kind: 'folder'; folderPath: string };

/**
 * Walks `segments` from the folder until one is a runnable regular file (`segments`: how many were used up to
 * it, `names`: the file names they gave), or the segments run out at a folder. Each segment is turned into a
 * byte string by `decode` only when the walk reaches it: what follows the script is its PATH_INFO, not a path.
 */
function walk(
  folder: string,
  segments: readonly string[],
  decode: (segment: string) => string,
  path: string,
  options: LookupScriptOptions,
): WalkResult {
  const root = rootOf(folder);
  let current = root;
  const names: string[] = [];
  for (let index = 0; index < segments.length; index++) {
    const name = fileNameOf(decode(segments[index] as string), path);
    names.push(name);
    const candidate = join(current, name);
    const info = statOrUndefined(() => lstatSync(candidate, { throwIfNoEntry: false }));
    if (info === undefined) throw notFound('no such script', path);
    let real = candidate;
    let target: Stats = info;
    if (info.isSymbolicLink()) {
      const resolved = statOrUndefined(() => realpathSync(candidate));
      if (resolved === undefined) throw notFound('dangling symlink', path);
      if (!isInside(root, resolved)) throw forbidden('symlink leads outside the cgi-bin folder', path);
      const followed = statOrUndefined(() => statSync(resolved, { throwIfNoEntry: false }));
      if (followed === undefined) throw notFound('dangling symlink', path);
      real = resolved;
      target = followed;
    }
    if (target.isDirectory()) {
      current = real;
      continue;
    }
    if (!target.isFile()) throw forbidden('not a regular file', path);
    const interpreted = options.interpretedExtensions?.has(extensionOf(name)) ?? false;
    if (!canAccess(real, interpreted ? constants.R_OK : constants.X_OK)) {
      throw forbidden(interpreted ? 'script is not readable' : 'script is not executable', path);
    }
    return { kind: 'script', scriptPath: real, segments: index + 1, names };
  }
  return { kind: 'folder', folderPath: current };
}

/** The real path of the cgi-bin folder; a RequestError (404) when it is gone. */
function rootOf(folder: string): string {
  try {
    return realpathSync(folder);
  } catch (error) {
    throw new RequestError(`cgi-host: cgi-bin folder not found (${folder})`, 404, error);
  }
}

/** What `look` returns, or undefined when it throws (EACCES on a folder, ELOOP, ENOTDIR...: nothing to serve). */
function statOrUndefined<T>(look: () => T | undefined): T | undefined {
  try {
    return look();
  } catch {
    return undefined;
  }
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function joinSegments(segments: readonly string[]): string {
  return segments.map((segment) => `/${segment}`).join('');
}

/** ".php" for "index.php", "" for "hello" or ".profile". */
function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot) : '';
}

/**
 * The file name a decoded path segment (a byte string) names, refusing anything that could step outside the
 * current folder: an empty segment (404), ".", "..", "\\" or NUL (403), bytes that aren't UTF-8 (404).
 */
function fileNameOf(segment: string, path: string): string {
  if (segment === '') throw notFound('empty path segment', path);
  if (segment === '.' || segment === '..' || /[\\\0]/.test(segment)) throw forbidden('path traversal refused', path);
  const buffer = Buffer.from(segment, 'latin1');
  // File names are looked up as UTF-8 text; bytes that aren't UTF-8 can't name a file we could serve.
  if (!isUtf8(buffer)) throw notFound('path segment is not UTF-8', path);
  return buffer.toString('utf8');
}

function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

function notFound(rule: string, path: string): RequestError {
  return new RequestError(`cgi-host: ${rule} (${describe(path)})`, 404);
}

function forbidden(rule: string, path: string): RequestError {
  return new RequestError(`cgi-host: ${rule} (${describe(path)})`, 403);
}

function describe(value: string): string {
  const short = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return /^[\x20-\x7e]*$/.test(short) ? short : JSON.stringify(short);
}
