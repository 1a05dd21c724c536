/**
 * Maps HTTP request headers to CGI meta-variables (RFC 3875 §4.1.18), the rules every transport that parses
 * HTTP itself (the HTTP server, the test client, the CGI host) shares:
 * - `X-A` -> HTTP_X_A; repeated headers are joined with ", " (Cookie with "; ");
 * - names holding "_" or any char outside a token are dropped: `X_A` must not alias `X-A` (field-notes T32);
 * - Content-Type and Content-Length become CONTENT_TYPE / CONTENT_LENGTH, never HTTP_CONTENT_*;
 * - `Proxy` never becomes HTTP_PROXY (httpoxy, CVE-2016-5385);
 * - Authorization / Proxy-Authorization are dropped unless `passAuthorization` (§4.1.18, §9.2).
 * Values are byte strings under the latin-1 policy.
 */
export function headersToVariables(
  headers: Iterable<readonly [string, string]>,
  options: { passAuthorization?: boolean } = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  const passAuthorization = options.passAuthorization ?? false;
  for (const [rawName, value] of headers) {
    const key = headerVariableName(rawName, passAuthorization);
    if (key !== null) addHeaderVariable(out, key, value);
  }
  return out;
}

/**
 * The CGI variable a request header becomes under headersToVariables' rules ("X-A" -> "HTTP_X_A",
 * "content-type" -> "CONTENT_TYPE"), or null for a header that is dropped. Names repeat from request to
 * request, so the answers are remembered (up to a bound: names a client makes up are then worked out each time).
 */
export function headerVariableName(rawName: string, passAuthorization: boolean): string | null {
  let key = variableNames.get(rawName);
  if (key === undefined) {
    key = computeVariableName(rawName);
    if (variableNames.size < MAX_REMEMBERED_NAMES) variableNames.set(rawName, key);
  }
  // Authorization is the one header whose fate depends on the caller.
  if (key === 'HTTP_AUTHORIZATION' && !passAuthorization) return null;
  return key;
}

/** Stores one header's value under `key`, joining a repeat with ", " (HTTP_COOKIE with "; "). */
export function addHeaderVariable(out: Record<string, string | undefined>, key: string, value: string): void {
  const previous = out[key];
  if (previous === undefined) out[key] = value;
  else out[key] = `${previous}${key === 'HTTP_COOKIE' ? '; ' : ', '}${value}`;
}

const MAX_REMEMBERED_NAMES = 1024;
const variableNames = new Map<string, string | null>();

function computeVariableName(rawName: string): string | null {
  if (!HEADER_NAME_RE.test(rawName)) return null;
  const lower = rawName.toLowerCase();
  if (lower === 'proxy') return null;
  if (lower === 'proxy-authorization') return null;
  if (lower === 'content-type') return 'CONTENT_TYPE';
  if (lower === 'content-length') return 'CONTENT_LENGTH';
  return `HTTP_${lower.toUpperCase().replace(/-/g, '_')}`;
}

// Letters, digits and "-" only: "_" and "." would alias "-" once mapped to a variable name (B9).
const HEADER_NAME_RE = /^[0-9A-Za-z-]+$/;

/**
 * The request headers an environ carries, back as [name, value] pairs: every HTTP_* variable
 * (HTTP_X_FORWARDED_FOR is "x-forwarded-for") plus CONTENT_TYPE and CONTENT_LENGTH. Names are lower-case;
 * values are byte strings. The inverse of headersToVariables, for bridges and helpers that need headers.
 */
export function variablesToHeaders(environ: Readonly<Record<string, unknown>>): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const key of Object.keys(environ)) {
    // Keys first, values only for header keys: reading tsgi.signal would create it (it is lazy).
    let name: string;
    if (key.startsWith('HTTP_')) name = key.slice(5).toLowerCase().replace(/_/g, '-');
    else if (key === 'CONTENT_TYPE') name = 'content-type';
    else if (key === 'CONTENT_LENGTH') name = 'content-length';
    else continue;
    const value = environ[key];
    if (typeof value === 'string') pairs.push([name, value]);
  }
  return pairs;
}
