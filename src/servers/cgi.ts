import type { Readable, Writable } from 'node:stream';
import { AbortError, describeError, statusOfError } from '../errors.js';
import { decodeProcessEnv } from '../environ/byte-policy.js';
import { createEnviron } from '../environ/create-environ.js';
import { formatCgiHead } from '../response/cgi-head.js';
import { runApp, sendErrorPage, type ResponseSink } from '../response/run-app.js';
import type { App, ErrorStream } from '../types.js';
import { createStdinReader } from './cgi-stdin.js';
import { createFdWriter } from './fd-writer.js';
import { dropHttpoxy } from './httpoxy.js';
import { LazyAbort } from './lazy-abort.js';
import { writeToStream } from './write-to-stream.js';

/** How long a CGI script may take to stop after SIGTERM (the web server giving up on it) before it exits. */
export const TERM_GRACE_MS = 2_000;

/** The process parts a CGI run uses. Each defaults to the real process's. */
export interface CgiIo {
  /** The CGI meta-variables, as Node presents a process environment (values decoded as UTF-8). */
  env: Record<string, string | undefined>;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/** Options for runWithCgi, besides the streams. */
export interface CgiOptions extends Partial<CgiIo> {
  /**
   * Exit the process once stdout has drained, with the run's exit status. Default: true when stdout is the
   * process's own, so a stdin pipe the web server leaves open can't keep the script alive.
   */
  exit?: boolean;
  /** Emit a full HTTP status line (non-parsed headers, RFC 3875 §5.2). Default: the script name starts "nph-". */
  nph?: boolean;
  /**
   * How many request body bytes may be read ahead of the app (default READ_AHEAD_BYTES, 16 MiB). Apache
   * writes the whole body before reading the response; reading ahead lets an app stream its answer while it
   * reads without deadlocking on full pipes.
   */
  readAheadBytes?: number;
}

/**
 * Runs `app` once as a CGI/1.1 script (RFC 3875): the environ comes from the environment, the body from stdin
 * (never more than CONTENT_LENGTH, never waiting for EOF), the response goes to stdout as `Status:` + headers
 * + body, diagnostics to stderr. HTTP_PROXY is removed from the environment first (httpoxy). Resolves with the
 * exit status: 0 when a complete response went out (an error page counts), 1 when the response failed after
 * its head (the web server sees a truncated body). Unless `exit` is false, the process exits with that status
 * once stdout has drained.
 */
export async function runWithCgi(app: App, options: CgiOptions = {}): Promise<number> {
  const usesProcess = options.stdout === undefined;
  const env = options.env ?? process.env;
  // process.stdin, process.stdout and process.stderr are created on first access, which costs start-up time:
  // touch them only when needed.
  const stdinOf = (): Readable => options.stdin ?? process.stdin;
  const stderrOf = (): Writable => options.stderr ?? process.stderr;
  const exit = options.exit ?? usesProcess;
  // httpoxy (CVE-2016-5385): in CGI, HTTP_PROXY is the client's `Proxy:` header, never a real proxy setting.
  dropHttpoxy(env, true);
  if (env !== process.env && usesProcess) dropHttpoxy(process.env, true);

  const abort = new LazyAbort();
  const onGone = (): void => {
    abort.abort(new AbortError('cgi: the web server closed stdout'));
  };
  const onTerm = (): void => {
    abort.abort(new AbortError('cgi: terminated by the web server (SIGTERM)'));
    // Handling SIGTERM replaced Node's default exit: give the app TERM_GRACE_MS to stop, then exit anyway.
    setTimeout(() => process.exit(143), TERM_GRACE_MS).unref();
  };
  if (usesProcess) process.on('SIGTERM', onTerm);

  const errors: ErrorStream = {
    write: (text) => {
      stderrOf().write(text);
    },
  };
  const variables = decodeProcessEnv(env);
  // Shared hosts pass Authorization through a RewriteRule [E=HTTP_AUTHORIZATION:...]; after an internal
  // redirect Apache renames it REDIRECT_HTTP_AUTHORIZATION (field-notes item 4).
  if (variables.HTTP_AUTHORIZATION === undefined && variables.REDIRECT_HTTP_AUTHORIZATION) {
    variables.HTTP_AUTHORIZATION = variables.REDIRECT_HTTP_AUTHORIZATION;
  }
  const scriptName = variables.SCRIPT_NAME ?? '';
  const nph = options.nph ?? /(^|\/)nph-[^/]*$/.test(scriptName);
  const protocol = variables.SERVER_PROTOCOL ?? 'HTTP/1.0';

  const length = /^[0-9]+$/.test(variables.CONTENT_LENGTH?.trim() ?? '') ? Number(variables.CONTENT_LENGTH) : Number.NaN;
  // An invalid CONTENT_LENGTH gets no reader: createEnviron refuses it with a 400.
  const reader = Number.isSafeInteger(length) && length > 0 ? createStdinReader(stdinOf(), length, options.readAheadBytes) : null;

  let write: (chunk: Uint8Array) => Promise<void> | void;
  let flush: () => Promise<void>;
  let release = (): void => {};
  if (usesProcess && reader === null) {
    // Nothing to read while writing: write(2) to fd 1 directly, blocking on a full pipe (see createFdWriter).
    write = createFdWriter(1, onGone);
    flush = () => Promise.resolve();
  } else {
    const stdout = options.stdout ?? process.stdout;
    stdout.on('error', onGone);
    stdout.on('close', onGone);
    release = () => stdout.off('close', onGone);
    write = (chunk) => writeToStream(stdout, chunk);
    flush = () => flushStream(stdout);
  }
  const sink: ResponseSink = {
    sendHead: (code, reason, headers) => write(formatCgiHead(code, reason, headers, nph ? { protocol } : undefined)),
    write,
    end: flush,
    abort: () => undefined,
  };

  let status: number;
  try {
    const environ = createEnviron({
      variables,
      // decodeProcessEnv made a fresh object of strings: no need for createEnviron to copy it again.
      ownsVariables: true,
      input: reader?.source ?? null,
      errors,
      signal: () => abort.signal,
      multithread: false,
      multiprocess: true,
      runOnce: true,
    });
    const result = await runApp(app, environ, sink, { abortReason: () => abort.reason });
    status = result.failedAfterHead ? 1 : 0;
  } catch (error) {
    // Only createEnviron throws here: the request itself is malformed (A9).
    errors.write(`tsgi: ${describeError(error)}\n`);
    try {
      await sendErrorPage(sink, statusOfError(error), variables.REQUEST_METHOD === 'HEAD');
      status = 0;
    } catch {
      status = 1;
    }
  } finally {
    await reader?.drain();
    release();
    if (usesProcess) process.off('SIGTERM', onTerm);
  }
  if (exit) {
    process.exit(status);
  }
  return status;
}

/** Resolves once everything written to `stream` so far has been handed to the OS. */
function flushStream(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    stream.write(new Uint8Array(0), () => resolve());
  });
}
