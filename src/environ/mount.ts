import { TsgiError } from '../errors.js';
import { percentDecodeToByteString } from './byte-policy.js';

/**
 * Normalises a mount prefix (the one rule for every option that names one: `mount` of the gateway servers and
 * `tsgi serve --mount`, `scriptName` of toNodeListener and toFetch, the prefixes of urlMap): "" for the root
 * ("" or "/"), else "/a/b" (leading "/", no trailing "/"). The prefix is compared with the decoded request
 * path, where "?" and "#" are bytes like any other (from "%3F", "%23"). Throws a TsgiError naming `option`
 * ("http: scriptName") for a prefix that is not a path.
 */
export function normalizeMount(mount: string, option = 'mount: prefix'): string {
  if (mount === '' || mount === '/') return '';
  if (!mount.startsWith('/')) throw new TsgiError(`${option} must be "" or a path starting with "/" (${JSON.stringify(mount)})`);
  return mount.replace(/\/+$/, '');
}

/**
 * Re-splits SCRIPT_NAME/PATH_INFO for an app mounted at `mount` (field-notes item 1, conformance C18). Web
 * servers each split the path their own way for gateways (nginx sends no PATH_INFO and puts the whole path in
 * SCRIPT_NAME; Apache's mod_proxy_fcgi and lighttpd at the root do similar things), so with a mount the path
 * is taken from the request itself: REQUEST_URI (percent-decoded under the byte policy), else DOCUMENT_URI,
 * else SCRIPT_NAME + PATH_INFO. When it lies under the mount, SCRIPT_NAME becomes the mount and PATH_INFO the
 * rest; otherwise the web server's split is kept. Opt-in because it undoes the web server's rewrites.
 * Normalises `mount` first (normalizeMount, which throws for a prefix that is not a path); the servers, whose
 * mount was normalised once at creation, call applyNormalizedMount. Mutates and returns `variables`.
 */
export function applyMount(variables: Record<string, string | undefined>, mount: string): Record<string, string | undefined> {
  return applyNormalizedMount(variables, normalizeMount(mount));
}

/**
 * applyMount for a prefix already normalised by normalizeMount ("" or "/a/b"), as a server's options hold it:
 * the per-request path, with no check of the prefix. Mutates and returns `variables`.
 */
export function applyNormalizedMount(variables: Record<string, string | undefined>, prefix: string): Record<string, string | undefined> {
  const path = requestPathOf(variables);
  if (path === undefined) return variables;
  if (prefix === '') {
    variables.SCRIPT_NAME = '';
    variables.PATH_INFO = path;
  } else if (isUnderMount(path, prefix)) {
    variables.SCRIPT_NAME = prefix;
    variables.PATH_INFO = path.slice(prefix.length);
  }
  return variables;
}

/**
 * True when the decoded request `path` is the normalised `prefix` or lies below it, on a segment boundary
 * ("/app" holds "/app" and "/app/x", not "/application"); every path lies under the root prefix "".
 */
export function isUnderMount(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* / */);
}

/** The scheme and authority of an absolute-form request target, which only proxies' requests have. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/;

/** The request's decoded path (see applyMount for where it is taken from), or undefined when none is a path. */
function requestPathOf(variables: Record<string, string | undefined>): string | undefined {
  const uri = variables.REQUEST_URI;
  if (uri) {
    const query = uri.indexOf('?');
    let path = query === -1 ? uri : uri.slice(0, query);
    if (path.charCodeAt(0) !== 47 /* / */) {
      // An absolute-form request target ("http://host/path") names its path after the authority.
      const scheme = ABSOLUTE_FORM.exec(path);
      if (scheme) path = path.slice(scheme[0].length) || '/';
    }
    if (path.charCodeAt(0) === 47 /* / */) return percentDecodeToByteString(path);
  }
  if (variables.DOCUMENT_URI?.startsWith('/')) return variables.DOCUMENT_URI;
  const joined = (variables.SCRIPT_NAME ?? '') + (variables.PATH_INFO ?? '');
  return joined.startsWith('/') ? joined : undefined;
}
