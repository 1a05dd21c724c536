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
 * Mutates and returns `variables`.
 */
export function applyMount(variables: Record<string, string | undefined>, mount: string): Record<string, string | undefined> {
  const prefix = normalizeMount(mount);
  const path = requestPathOf(variables);
  if (path === undefined) return variables;
  if (prefix === '') {
    variables.SCRIPT_NAME = '';
    variables.PATH_INFO = path;
  } else if (path === prefix || path.startsWith(`${prefix}/`)) {
    variables.SCRIPT_NAME = prefix;
    variables.PATH_INFO = path.slice(prefix.length);
  }
  return variables;
}

function requestPathOf(variables: Record<string, string | undefined>): string | undefined {
  const uri = variables.REQUEST_URI;
  if (uri) {
    let path = uri.split('?', 1)[0] as string;
    // An absolute-form request target ("http://host/path") names its path after the authority.
    const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(path);
    if (scheme) path = path.slice(scheme[0].length) || '/';
    if (path.startsWith('/')) return percentDecodeToByteString(path);
  }
  if (variables.DOCUMENT_URI?.startsWith('/')) return variables.DOCUMENT_URI;
  const joined = (variables.SCRIPT_NAME ?? '') + (variables.PATH_INFO ?? '');
  return joined.startsWith('/') ? joined : undefined;
}
