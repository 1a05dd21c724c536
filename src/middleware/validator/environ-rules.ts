import { TOKEN_RE } from '../../response/status.js';
import { LintError } from '../../errors.js';
import { describeType, type WarningHandler } from './report.js';

const REQUIRED_CGI_KEYS = ['REQUEST_METHOD', 'SERVER_NAME', 'SERVER_PORT', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_PROTOCOL'];
const BOOLEAN_TSGI_KEYS = ['tsgi.input_terminated', 'tsgi.multithread', 'tsgi.multiprocess', 'tsgi.run_once'];
const REQUIRED_TSGI_KEYS = ['tsgi.version', 'tsgi.url_scheme', 'tsgi.input', 'tsgi.errors', 'tsgi.signal', ...BOOLEAN_TSGI_KEYS];
const ignoreWarning: WarningHandler = () => {};

/**
 * Checks an environ as a server builds it (rules F1-F10 of docs/validator-rules.md, the environ half). Throws
 * LintError naming the first broken hard rule; reports soft findings to `warn`. Usable on its own to test a
 * server's environ without running an app.
 */
export function checkEnviron(environ: unknown, warn: WarningHandler = ignoreWarning): void {
  // F1: the environ is a plain, mutable object whose keys are strings.
  if (typeof environ !== 'object' || environ === null || Array.isArray(environ)) {
    throw new LintError('F1', 'environ must be a plain object', describeType(environ));
  }
  const proto = Object.getPrototypeOf(environ) as unknown;
  if (proto !== Object.prototype && proto !== null) throw new LintError('F1', 'environ must be a plain object', describeType(environ));
  if (!Object.isExtensible(environ) || Object.isFrozen(environ)) throw new LintError('F1', 'environ must be mutable');
  const symbols = Object.getOwnPropertySymbols(environ);
  if (symbols.length > 0) throw new LintError('F1', 'environ keys must be strings', String(symbols[0]));
  const env = environ as Record<string, unknown>;

  // F2: every required CGI key and every tsgi.* key is present.
  for (const key of [...REQUIRED_CGI_KEYS, ...REQUIRED_TSGI_KEYS]) {
    if (!Object.hasOwn(env, key)) throw new LintError('F2', 'environ lacks a required key', key);
  }
  // F2: the four flags are booleans, and tsgi.signal is an AbortSignal.
  for (const key of BOOLEAN_TSGI_KEYS) {
    if (typeof env[key] !== 'boolean') throw new LintError('F2', `${key} must be a boolean`, describeType(env[key]));
  }
  const signal = env['tsgi.signal'] as { aborted?: unknown; addEventListener?: unknown } | null;
  if (typeof signal !== 'object' || signal === null || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw new LintError('F2', 'tsgi.signal must be an AbortSignal', describeType(signal));
  }

  // F3: the request's Content-Type and Content-Length travel as CONTENT_TYPE and CONTENT_LENGTH only.
  for (const key of ['HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH']) {
    if (Object.hasOwn(env, key)) throw new LintError('F3', 'environ must not hold this key (use the CGI name)', key);
  }

  // F4: CGI keys (no ".") hold strings of code points U+0000..U+00FF (one char per byte).
  for (const key of Object.keys(env)) {
    if (key.includes('.')) continue;
    const value = env[key];
    if (value === undefined) {
      warn({ rule: 'F4', message: 'CGI key is present but undefined; leave it out instead', value: key });
      continue;
    }
    if (typeof value !== 'string') throw new LintError('F4', `CGI key ${key} must hold a string`, describeType(value));
    if (/[^\0-\xff]/.test(value)) throw new LintError('F4', `CGI key ${key} holds a char above U+00FF`, value);
  }

  // F5: tsgi.version is [1, 0]; tsgi.url_scheme is "http" or "https".
  const version = env['tsgi.version'];
  if (!Array.isArray(version) || version.length !== 2 || version[0] !== 1 || version[1] !== 0) {
    throw new LintError('F5', 'tsgi.version must be [1, 0]', Array.isArray(version) ? JSON.stringify(version) : describeType(version));
  }
  const scheme = env['tsgi.url_scheme'];
  if (scheme !== 'http' && scheme !== 'https') throw new LintError('F5', 'tsgi.url_scheme must be "http" or "https"', scheme);

  // F6: REQUEST_METHOD is an HTTP token.
  const method = env.REQUEST_METHOD as string;
  if (!TOKEN_RE.test(method)) throw new LintError('F6', 'REQUEST_METHOD must be a token', method);
  if (method !== method.toUpperCase()) warn({ rule: 'F6', message: 'REQUEST_METHOD is not upper case (methods are case-sensitive)', value: method });

  // F7: SCRIPT_NAME is "" or starts with "/" and is not "/"; PATH_INFO is "" or starts with "/".
  const scriptName = env.SCRIPT_NAME as string;
  if (scriptName !== '' && (!scriptName.startsWith('/') || scriptName === '/')) {
    throw new LintError('F7', 'SCRIPT_NAME must be "" or start with "/" (and not be "/")', scriptName);
  }
  const pathInfo = env.PATH_INFO as string;
  if (pathInfo !== '' && !pathInfo.startsWith('/')) throw new LintError('F7', 'PATH_INFO must be "" or start with "/"', pathInfo);

  // F8: CONTENT_LENGTH is decimal digits; SERVER_PORT is digits; SERVER_PROTOCOL is HTTP/d or HTTP/d.d.
  if (Object.hasOwn(env, 'CONTENT_LENGTH') && env.CONTENT_LENGTH !== undefined && !/^\d+$/.test(env.CONTENT_LENGTH as string)) {
    throw new LintError('F8', 'CONTENT_LENGTH must be decimal digits', env.CONTENT_LENGTH);
  }
  if (!/^\d+$/.test(env.SERVER_PORT as string)) throw new LintError('F8', 'SERVER_PORT must be decimal digits', env.SERVER_PORT);
  if (!/^HTTP\/\d(\.\d)?$/.test(env.SERVER_PROTOCOL as string)) {
    throw new LintError('F8', 'SERVER_PROTOCOL must look like HTTP/1.1', env.SERVER_PROTOCOL);
  }

  // F9: tsgi.input is an InputStream: read(n?) and async iteration.
  const input = env['tsgi.input'] as { read?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  if (typeof input !== 'object' || input === null || typeof input.read !== 'function' || typeof input[Symbol.asyncIterator] !== 'function') {
    throw new LintError('F9', 'tsgi.input must have read() and be async iterable', describeType(input));
  }

  // F10: tsgi.errors has write(text) (and flush() when present is a function).
  const errors = env['tsgi.errors'] as { write?: unknown; flush?: unknown } | null;
  if (typeof errors !== 'object' || errors === null || typeof errors.write !== 'function') {
    throw new LintError('F10', 'tsgi.errors must have write()', describeType(errors));
  }
  if (errors.flush !== undefined && typeof errors.flush !== 'function') {
    throw new LintError('F10', 'tsgi.errors.flush must be a function when present', describeType(errors.flush));
  }
}
