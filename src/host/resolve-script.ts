/**
 * Maps a URL path under a cgi-bin folder to the script to run (RFC 3875 §3.3, conformance B18, field-notes
 * T37): the first path segment that names an executable regular file is the script; what follows is its
 * PATH_INFO. Nothing outside the folder can ever be reached: ".." and "." segments (plain or percent-encoded),
 * encoded slashes and backslashes, NUL, and symlinks whose target lies outside the folder are refused.
 */
import { constants } from 'node:fs';
import { access, lstat, realpath, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { join, sep } from 'node:path';
import { RequestError } from '../errors.js';
import { percentDecodeToByteString } from '../environ/byte-policy.js';

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
  /** The URL prefix the folder is mounted at ("/cgi-bin"); "" (the default) mounts it at the root. */
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
  const mountPath = (options.mountPath ?? '').replace(/\/+$/, '');
  if (!path.startsWith(`${mountPath}/`)) throw notFound('path is outside the cgi-bin mount', path);
  const rest = path.slice(mountPath.length);
  const segments = rest.slice(1).split('/');

  const root = await realpath(folder).catch((error: unknown) => {
    throw new RequestError(`cgi-host: cgi-bin folder not found (${folder})`, 404, error);
  });
  let current = root;
  let scriptName = mountPath;
  for (let index = 0; index < segments.length; index++) {
    const name = decodeSegment(segments[index] as string, path);
    scriptName += `/${name}`;
    const candidate = join(current, name);
    const info = await lstat(candidate).catch(() => undefined);
    if (info === undefined) throw notFound('no such script', path);
    let real = candidate;
    if (info.isSymbolicLink()) {
      real = await realpath(candidate).catch(() => {
        throw notFound('dangling symlink', path);
      });
      if (!isInside(root, real)) throw forbidden('symlink leads outside the cgi-bin folder', path);
    }
    const target = info.isSymbolicLink() ? await stat(real) : info;
    if (target.isDirectory()) {
      current = real;
      continue;
    }
    if (!target.isFile()) throw forbidden('not a regular file', path);
    const executable = await access(real, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!executable) throw forbidden('script is not executable', path);
    const remaining = segments.slice(index + 1);
    return {
      scriptPath: real,
      scriptName,
      pathInfo: remaining.length === 0 ? '' : `/${remaining.join('/')}`,
      queryString,
    };
  }
  throw notFound('path names a folder, not a script', path);
}

/** Decodes one path segment to a file name, refusing anything that could step outside the current folder. */
function decodeSegment(raw: string, path: string): string {
  if (raw === '') throw notFound('empty path segment', path);
  const bytes = percentDecodeToByteString(raw);
  if (bytes === '.' || bytes === '..' || /[/\\\0]/.test(bytes)) throw forbidden('path traversal refused', path);
  const buffer = Buffer.from(bytes, 'latin1');
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
