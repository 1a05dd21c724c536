import type { Readable, Writable } from 'node:stream';
import { AbortError, describeError, statusOfError } from '../errors.js';
import { decodeProcessEnv } from '../environ/byte-policy.js';
import { createEnviron } from '../environ/create-environ.js';
import { formatCgiHead } from '../response/cgi-head.js';
import { isBodylessStatus } from '../response/status.js';
import { runApp, sendErrorPage, type ResponseSink } from '../response/run-app.js';
import type { App, ErrorStream, Header } from '../types.js';
import { createStdinReader } from './cgi-stdin.js';
import { createFdWriter } from './fd-writer.js';
import { dropHttpoxy } from './httpoxy.js';
import { LazyAbort } from './lazy-abort.js';
import { writeToStream } from './write-to-stream.js';

/** How long a CGI script may take to stop after SIGTERM (the web server giving up on it) before it exits. */
export const TERM_GRACE_MS = 2_000;
/**
 * The largest first body chunk copied behind the response head so that both leave in one write (see
 * createCgiSink); a larger one is written after the head, without the copy.
 */
export const JOIN_HEAD_MAX_BYTES = 16 * 1024;

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
  // The script's own name (its last path segment) starts with "nph-".
  const nph = options.nph ?? scriptName.startsWith('nph-', scriptName.lastIndexOf('/') + 1);
  const protocol = variables.SERVER_PROTOCOL ?? 'HTTP/1.0';
  const isHead = variables.REQUEST_METHOD === 'HEAD';

  const rawLength = variables.CONTENT_LENGTH?.trim();
  const length = rawLength && /^[0-9]+$/.test(rawLength) ? Number(rawLength) : Number.NaN;
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
  const sink = createCgiSink(write, flush, {
    formatHead: (code, reason, headers) => formatCgiHead(code, reason, headers, nph ? { protocol } : undefined),
    headOnly: (code) => isHead || isBodylessStatus(code),
  });

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
    // About to exit: leave the handler (removing it costs start-up time, and a SIGTERM now changes nothing).
    if (usesProcess && !exit) process.off('SIGTERM', onTerm);
  }
  if (exit) {
    process.exit(status);
  }
  return status;
}

/** How createCgiSink turns a head into bytes, and which heads have no body to wait for. */
interface CgiHeadRules {
  formatHead(code: number, reason: string, headers: Header[]): Uint8Array;
  /** True when no body byte will follow the head (HEAD, 1xx, 204, 304): it is written at once. */
  headOnly(code: number): boolean;
}

/**
 * The ResponseSink of a CGI run over `write` (one response, to stdout) and `flush` (resolves once it is all
 * handed to the OS). It holds the head until the first body bytes and writes both together, one write(2) for
 * a small response: runApp calls sendHead right before the first body bytes, and calls flush (an app that
 * wants its head out before any body: SPEC 4.1), end or abort otherwise, each of which writes a held head.
 * A head with no body to follow is written at once. The first chunk is copied behind the head only up to
 * JOIN_HEAD_MAX_BYTES; a larger one is written after it.
 */
function createCgiSink(write: (chunk: Uint8Array) => Promise<void> | void, flush: () => Promise<void>, rules: CgiHeadRules): ResponseSink {
  let heldHead: Uint8Array | null = null;
  const sendHeldHead = (): Promise<void> | void => {
    const head = heldHead;
    if (head === null) return;
    heldHead = null;
    return write(head);
  };
  const writeBody = (chunk: Uint8Array): Promise<void> | void => {
    const head = heldHead;
    if (head === null) return write(chunk);
    heldHead = null;
    if (chunk.length <= JOIN_HEAD_MAX_BYTES) {
      // A plain copy: Buffer.concat's first call costs more than the write(2) it saves.
      const joined = new Uint8Array(head.length + chunk.length);
      joined.set(head);
      joined.set(chunk, head.length);
      return write(joined);
    }
    const wrote = write(head);
    return wrote ? wrote.then(() => write(chunk)) : write(chunk);
  };
  return {
    sendHead: (code, reason, headers) => {
      heldHead = rules.formatHead(code, reason, headers);
      if (rules.headOnly(code)) return sendHeldHead();
    },
    write: writeBody,
    flush: sendHeldHead,
    end: () => {
      const wrote = sendHeldHead();
      return wrote ? wrote.then(flush) : flush();
    },
    // The response failed after runApp sent its head: the head goes out as it would have without the hold,
    // and the body is cut there (the exit status says so).
    abort: () => sendHeldHead(),
  };
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
