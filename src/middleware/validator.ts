/**
 * The tsgi lint: rules F1-F23 of docs/validator-rules.md, checked on both sides of the interface.
 *
 *   F1-F8    the environ the server built (environ-rules.ts)
 *   F9-F10   tsgi.input and tsgi.errors, as the app and the server use them (stream-wrappers.ts)
 *   F11-F17  startResponse, the status, the headers and write() (response-rules.ts)
 *   F18-F21  the body the app returns, as the server consumes it (body-wrapper.ts)
 *   F22      every hard failure is a LintError naming its rule and the bad value; soft rules only warn
 *   F23      a 200 response that carries Location (soft: Apache CGI and mod_fcgid redirect; response-rules.ts)
 */
import { LintError } from '../errors.js';
import type { App, Body, Environ, ErrorStream, Middleware, StartResponse } from '../types.js';
import { wrapBody } from './validator/body-wrapper.js';
import { checkEnviron } from './validator/environ-rules.js';
import { formatWarning, type LintWarning, type WarningHandler } from './validator/report.js';
import { createResponseState, wrapStartResponse } from './validator/response-rules.js';
import { wrapErrors, wrapInput } from './validator/stream-wrappers.js';

export { checkEnviron } from './validator/environ-rules.js';
export { checkResponseHeaders, checkStatusLine } from './validator/response-rules.js';
export { formatWarning, type LintWarning, type WarningHandler } from './validator/report.js';

/** Options for `validator`. */
export interface ValidatorOptions {
  /**
   * Receives each soft-rule warning. Default: written to the request's `tsgi.errors` (process.stderr when the
   * environ has no usable error stream) in the form `tsgi.lint: warning F12 status has no reason phrase ("200")`.
   */
  onWarning?: (warning: LintWarning, environ: Environ) => void;
  /** Throw a LintError for warnings too. Default false. */
  strict?: boolean;
}

/**
 * Returns a middleware that checks the interface on both of its sides. Put it right around an app to check the
 * app (everything it does with startResponse, write, the body, tsgi.input and tsgi.errors), and hand the result
 * to a server to check the server too (the environ it builds, what its input stream produces, startResponse
 * re-throwing excInfo, write returning a promise, how it consumes the body).
 *
 * Per request it: checks the environ (F1-F10) before the app runs; replaces `tsgi.input` and `tsgi.errors` in
 * the environ with checking wrappers (F9, F10; the environ object itself is kept, as it is the server's); passes
 * the app a checking startResponse (F11-F17, F23); and returns a checking wrapper of the app's body (F18-F21), whose
 * close() calls the app's close() exactly once.
 *
 * A hard failure throws a LintError (its `rule` is the id, e.g. "F13"), from wherever the rule was broken: the
 * call of the app, startResponse, write, the input, or the body's iteration. Errors the app itself throws pass
 * through unchanged. Soft findings go to `onWarning`.
 */
export function validator(options: ValidatorOptions = {}): Middleware {
  return (app: App): App =>
    async function validateRequest(environ: Environ, startResponse: StartResponse): Promise<Body> {
      const warn = createWarningHandler(environ, options);
      checkEnviron(environ, warn);
      const limit = environ.CONTENT_LENGTH !== undefined ? Number(environ.CONTENT_LENGTH) : environ['tsgi.input_terminated'] ? Number.POSITIVE_INFINITY : 0;
      environ['tsgi.input'] = wrapInput(environ['tsgi.input'], limit);
      environ['tsgi.errors'] = wrapErrors(environ['tsgi.errors']);
      const state = createResponseState(environ.REQUEST_METHOD === 'HEAD');
      const body = await app(environ, wrapStartResponse(startResponse, state, warn));
      return wrapBody(body, state);
    };
}

function createWarningHandler(environ: Environ, options: ValidatorOptions): WarningHandler {
  // Captured before the app runs: the original stream, so warnings never trip the F10 wrapper's own checks.
  const errors = environ['tsgi.errors'] as Partial<ErrorStream> | undefined;
  return (warning) => {
    // F22: soft rules only warn; strict makes the warning the LintError of its rule.
    if (options.strict === true) throw new LintError(warning.rule, warning.message, warning.value);
    if (options.onWarning) options.onWarning(warning, environ);
    else if (typeof errors?.write === 'function') errors.write(formatWarning(warning));
    else process.stderr.write(formatWarning(warning));
  };
}
