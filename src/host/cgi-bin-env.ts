/**
 * The environment of a script cgiBin runs, built from the environ of the request (RFC 3875 §4.1): the CGI
 * variables the transport made (HTTP_*, SERVER_*, REMOTE_*, QUERY_STRING...) as they are, with the variables
 * that describe the script replaced by what the host found (SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED,
 * SCRIPT_FILENAME), the body's own (CONTENT_LENGTH, CONTENT_TYPE), REDIRECT_STATUS=200 as lighttpd sets it
 * (php-cgi's force-cgi-redirect wants it), and, after local redirects, the REDIRECT_* variables.
 *
 * The parent's environment is never passed whole: only the names of an allow-list (cgi-env.ts), then the
 * operator's extra variables, which win over everything.
 */
import { encodeUtf8Latin1 } from '../environ/byte-policy.js';
import { percentEncodePath } from '../environ/percent-encode.js';
import type { Environ } from '../types.js';
import { readVersion } from '../version.js';
import { DEFAULT_ENV_ALLOW_LIST, DEFAULT_PATH, toChildEnvValue } from './cgi-env.js';

/** What the script of one run sees that the client's request doesn't say by itself. */
export interface ScriptRequest {
  /** REQUEST_METHOD: the client's, or GET after a local redirect. */
  method: string;
  /** QUERY_STRING (raw): the client's, or the redirect's. */
  queryString: string;
  /** SCRIPT_NAME: the cgi-bin's mount plus the path up to the script (a byte string). */
  scriptName: string;
  /** PATH_INFO: the decoded rest of the path after the script (a byte string); "" = unset. */
  pathInfo: string;
  /** SCRIPT_FILENAME: the script's absolute path. */
  scriptFilename: string;
  /** CONTENT_LENGTH, or undefined for none (no body, or one streamed to EOF). */
  contentLength: number | undefined;
  /** True when the request has a body (then CONTENT_TYPE is passed). */
  hasBody: boolean;
  /** The REDIRECT_* variables of a local redirect, else undefined. */
  redirect: Readonly<Record<string, string>> | undefined;
}

/** Variables the host sets itself: never copied from the environ. */
const REPLACED = new Set([
  'SCRIPT_NAME',
  'PATH_INFO',
  'PATH_TRANSLATED',
  'SCRIPT_FILENAME',
  'CONTENT_LENGTH',
  'CONTENT_TYPE',
  'REQUEST_METHOD',
  'QUERY_STRING',
  'REDIRECT_STATUS',
  // httpoxy: createEnviron already drops it; a script must never get it whatever built the environ.
  'HTTP_PROXY',
]);
/** A name a process environment can hold that a CGI variable could have (keys with a "." are tsgi's or middleware's). */
const VARIABLE_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The part of every child environment that comes from this process, computed once: PATH (this process's, else
 * DEFAULT_PATH) and the names of DEFAULT_ENV_ALLOW_LIST that are set here.
 */
export function inheritedEnv(parent: Readonly<Record<string, string | undefined>> = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of DEFAULT_ENV_ALLOW_LIST) {
    const value = parent[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH = parent.PATH ?? DEFAULT_PATH;
  return env;
}

/**
 * Builds the whole environment of the script for `request`: `inherited`, then the environ's CGI variables
 * (byte strings, converted by toChildEnvValue; a value holding NUL, which no environment can carry, is left
 * out), then the script's own variables, then `extra` (the operator's, which win). `folder` is the cgi-bin
 * folder: PATH_TRANSLATED is folder + PATH_INFO, and DOCUMENT_ROOT is the folder unless the environ has one
 * (a web server's document root, as fcgiwrap passes it on).
 */
export function buildScriptEnv(
  environ: Environ,
  request: ScriptRequest,
  folder: string,
  inherited: Readonly<Record<string, string>>,
  extra: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = { ...inherited };
  const source = environ as unknown as Record<string, unknown>;
  for (const name of Object.keys(source)) {
    if (!VARIABLE_NAME_RE.test(name) || REPLACED.has(name)) continue;
    const value = source[name];
    if (typeof value === 'string' && !value.includes('\0')) env[name] = toChildEnvValue(value);
  }
  env.GATEWAY_INTERFACE = 'CGI/1.1';
  env.SERVER_SOFTWARE ??= `tsgi/${readVersion()}`;
  env.REQUEST_METHOD = request.method;
  env.QUERY_STRING = toChildEnvValue(request.queryString);
  env.SCRIPT_NAME = toChildEnvValue(request.scriptName);
  env.SCRIPT_FILENAME = request.scriptFilename;
  env.DOCUMENT_ROOT ??= folder;
  if (request.pathInfo !== '') {
    env.PATH_INFO = toChildEnvValue(request.pathInfo);
    // §4.1.6: PATH_INFO mapped into the document space, here the cgi-bin folder.
    const folderBytes = encodeUtf8Latin1(folder.replace(/\/+$/, ''));
    env.PATH_TRANSLATED = toChildEnvValue(folderBytes + request.pathInfo);
  }
  env.REQUEST_URI ??= percentEncodePath(request.scriptName + request.pathInfo) + (request.queryString === '' ? '' : `?${request.queryString}`);
  if (request.contentLength !== undefined) env.CONTENT_LENGTH = String(request.contentLength);
  const contentType = environ.CONTENT_TYPE;
  if (request.hasBody && typeof contentType === 'string' && contentType !== '' && !contentType.includes('\0')) {
    env.CONTENT_TYPE = toChildEnvValue(contentType);
  }
  env.REDIRECT_STATUS = '200';
  if (request.redirect !== undefined) Object.assign(env, request.redirect);
  Object.assign(env, extra);
  return env;
}

/**
 * The REDIRECT_* variables a script gets after a local redirect, describing the request the client sent (as
 * Apache names them): REDIRECT_URL (its decoded path, SCRIPT_NAME + PATH_INFO), REDIRECT_REQUEST_METHOD,
 * REDIRECT_QUERY_STRING (when it had a query) and REDIRECT_STATUS=200. All converted for the environment.
 */
export function redirectVariables(environ: Environ): Record<string, string> {
  const variables: Record<string, string> = {
    REDIRECT_URL: toChildEnvValue(`${environ.SCRIPT_NAME}${environ.PATH_INFO}`),
    REDIRECT_REQUEST_METHOD: environ.REQUEST_METHOD,
    REDIRECT_STATUS: '200',
  };
  if (environ.QUERY_STRING !== '') variables.REDIRECT_QUERY_STRING = toChildEnvValue(environ.QUERY_STRING);
  for (const [name, value] of Object.entries(variables)) if (value.includes('\0')) delete variables[name];
  return variables;
}

