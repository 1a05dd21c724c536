/**
 * Runs a CGI executable (Node, shell, Perl, C...) through pipes and parses its response (RFC 3875,
 * conformance B1-B18). spawnCgi streams the body with backpressure; runCgi collects it; launchCgi is the part
 * both share with cgiBin (a script found, its environment built, its body prepared).
 *
 * Decisions, each documented on the option or function it concerns:
 * - A local redirect (`Location: /path` alone, §6.2.2) is answered with a 302 to that path, and reported as
 *   CgiResponseHead.localRedirect: spawnCgi runs one script and owns no URL space to re-dispatch into; cgiBin,
 *   which does, serves the script at that path instead.
 * - `timeoutMs` bounds the wait for a complete response head (then 504), and each wait for more body while the
 *   consumer is reading (then the body errors). Time the script spends blocked by a slow consumer doesn't count.
 * - The child runs in its own process group (POSIX); every kill goes to the whole group (cgi-process.ts).
 * - Every failure before the head is answered with a response carrying `error` (404/403 for the script, 400 for
 *   the request, 500 for a malformed head, 504 for a timeout), never an exception; only the caller's own abort
 *   rejects, with an AbortError.
 * The jobs live in their own files: cgi-body.ts (the request body and the stdin pump), cgi-process.ts (the
 * child and its process group), cgi-output.ts (the head, then the streamed body), cgi-log.ts (stderr).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { AbortError, ProtocolError, RequestError, TsgiError } from '../errors.js';
import { CgiHeadReader } from '../response/cgi-head-parse.js';
import { prepareBody, pumpStdin, type BodySource, type PreparedBody } from './cgi-body.js';
import { buildCgiEnv, findCgiRequestHeader, type CgiRequest } from './cgi-env.js';
import { StderrLog } from './cgi-log.js';
import { answerWithError, readHead, streamBody, toTsgiError, type CgiResponseHead, type CgiStream } from './cgi-output.js';
import { delay, EXIT_GRACE_MS, KILL_TIMEOUT_MS, startChild, type CgiExit } from './cgi-process.js';

export { EXIT_GRACE_MS, KILL_TIMEOUT_MS, type CgiExit, type CgiResponseHead, type CgiStream, type PreparedBody };

/** Default time a script has to produce a complete response head (B16). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default cap on the stderr text kept in the result (onStderr still sees all of it). */
export const MAX_STDERR_BYTES = 1024 * 1024;
/** Default cap on a request body of unknown length, read ahead to compute CONTENT_LENGTH (B4). */
export const MAX_UNSIZED_BODY_BYTES = 1024 * 1024;
/** Default cap on the body runCgi collects in memory. */
export const MAX_COLLECTED_BODY_BYTES = 64 * 1024 * 1024;

/** A request body: bytes, text (sent as UTF-8), or a stream of bytes. */
export type CgiBody = string | Uint8Array | AsyncIterable<Uint8Array>;

/** A request for a CGI script: CgiRequest (see cgi-env.ts) plus the body. */
export interface CgiHostRequest extends CgiRequest {
  /**
   * The request body; undefined for none (CONTENT_LENGTH unset). A string or bytes set CONTENT_LENGTH to
   * their length. A stream uses the Content-Length request header when there is one; without it, up to
   * `maxUnsizedBodyBytes` are read ahead to count them (an empty one counts as none), and a longer body is
   * answered with 411 (B4); or, with `streamUnsizedBody`, it is streamed without CONTENT_LENGTH.
   */
  body?: CgiBody;
}

/** Options of spawnCgi and runCgi. */
export interface CgiHostOptions {
  /** SCRIPT_NAME. Default "/" + the script's file name. */
  scriptName?: string;
  /** DOCUMENT_ROOT, and the base of PATH_TRANSLATED. Default: the script's folder. */
  documentRoot?: string;
  /** SERVER_NAME. Default: the Host header's host, else "localhost". */
  serverName?: string;
  /** SERVER_PORT, the local port. Default 80 (443 with https). */
  serverPort?: number | string;
  /** SERVER_SOFTWARE. Default "tsgi/<version>". */
  serverSoftware?: string;
  /**
   * Time allowed for a complete response head, then the script is killed and the answer is 504 (B16). Also the
   * time the body may stay silent while its consumer waits for more; then the script is killed and the body
   * errors. Default DEFAULT_TIMEOUT_MS.
   */
  timeoutMs?: number;
  /** The client went away: the script is killed (B16) and the call rejects, or the body errors, with an AbortError. */
  signal?: AbortSignal;
  /** Export Authorization as HTTP_AUTHORIZATION. Default false (B7). */
  passAuthorization?: boolean;
  /** Names copied from the host's environment. Default DEFAULT_ENV_ALLOW_LIST; PATH always. */
  envAllowList?: readonly string[];
  /** Variables added to the child's environment, overriding all others. */
  extraEnv?: Readonly<Record<string, string>>;
  /** The child's working directory. Default: the script's folder (§7.2). */
  cwd?: string;
  /** Cap on the response head. Default MAX_HEAD_BYTES (64 KiB). */
  maxHeadBytes?: number;
  /**
   * Receives the script's stderr as text as it arrives, and the host's own log lines (unless `onHostLine` is
   * given). stderr is also collected.
   */
  onStderr?: (text: string) => void;
  /** Receives the host's own log lines (one message each, no "\n") instead of onStderr. */
  onHostLine?: (message: string) => void;
  /** Cap on the stderr text kept in the result. Default MAX_STDERR_BYTES. */
  maxStderrBytes?: number;
  /** Treat the script as NPH (§5.2): its output is relayed unmodified. Default: its name starts with "nph-". */
  nph?: boolean;
  /** Run the script through this program (e.g. ["node"] or "perl"); then it need not be executable. */
  interpreter?: string | readonly string[];
  /** Cap on a request body without Content-Length read ahead to count it. Default MAX_UNSIZED_BODY_BYTES. */
  maxUnsizedBodyBytes?: number;
  /**
   * Stream a request body without Content-Length to the script as it arrives, to EOF on its stdin, without
   * CONTENT_LENGTH (as Apache mod_cgi does), instead of reading it ahead. Default false.
   */
  streamUnsizedBody?: boolean;
  /** runCgi only: cap on the collected body; past it the body is cut and `error` is set. Default MAX_COLLECTED_BODY_BYTES. */
  maxBodyBytes?: number;
}

/** What runCgi resolves with. */
export interface CgiResponse extends CgiResponseHead, CgiExit {
  /** The body, collected. */
  body: Buffer;
}

/**
 * Runs the CGI executable at `scriptPath` for `request` and resolves with the response head once the script
 * has produced it, the body as a stream, and `done`. The child gets exactly the environment of buildCgiEnv
 * (no other variable of this process) and the script's folder as cwd; stdin, stdout and stderr are pumped
 * concurrently (B11). Resolves with an error response (see CgiResponseHead.error) for: a missing script (404),
 * one that isn't an executable regular file (403), a bad request (400/404, see buildCgiVariables), a request
 * body of unknown length over the cap (411), a malformed head (500, B12), a script that can't start (500), no
 * head within `timeoutMs` (504, the script is killed, B16). Rejects only with an AbortError when
 * `options.signal` aborts before the head.
 */
export async function spawnCgi(
  scriptPath: string,
  request: CgiHostRequest = {},
  options: CgiHostOptions = {},
): Promise<CgiStream> {
  const log = new StderrLog(options.maxStderrBytes ?? MAX_STDERR_BYTES, options);
  const method = request.method ?? 'GET';
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(undefined, signal.reason);
  const absolutePath = resolve(scriptPath);
  const fail = (error: TsgiError): CgiStream => answerWithError(error, method, log);

  const scriptError = await checkScript(absolutePath, options.interpreter !== undefined);
  if (scriptError) return fail(scriptError);

  let body: PreparedBody;
  try {
    body = await prepareBody(bodySourceOf(request), {
      stream: options.streamUnsizedBody ?? false,
      maxUnsizedBodyBytes: options.maxUnsizedBodyBytes ?? MAX_UNSIZED_BODY_BYTES,
    });
  } catch (error) {
    return fail(toTsgiError(error));
  }
  let env: Record<string, string>;
  try {
    env = buildCgiEnv(request, {
      scriptName: options.scriptName ?? `/${basename(absolutePath)}`,
      scriptFilename: absolutePath,
      documentRoot: options.documentRoot ?? dirname(absolutePath),
      serverName: options.serverName,
      serverPort: options.serverPort,
      serverSoftware: options.serverSoftware,
      contentLength: body.length,
      passAuthorization: options.passAuthorization,
      envAllowList: options.envAllowList,
      extraEnv: options.extraEnv,
    });
  } catch (error) {
    return fail(toTsgiError(error));
  }
  return launchCgi({ scriptPath: absolutePath, env, method, body }, options, log);
}

/** A script ready to run: found and checked, its environment built, its body prepared. */
export interface CgiLaunch {
  /** The script's absolute path. */
  scriptPath: string;
  /** The child's whole environment. */
  env: Record<string, string>;
  /** REQUEST_METHOD: HEAD discards the body (B14). */
  method: string;
  body: PreparedBody;
}

/** Options of launchCgi: those of spawnCgi that concern the run, and how an NPH head is relayed. */
export type CgiLaunchOptions = Pick<CgiHostOptions, 'timeoutMs' | 'signal' | 'cwd' | 'maxHeadBytes' | 'nph' | 'interpreter'> & {
  /**
   * NPH: put the script's raw head in front of the body (default true: a relay that sends its bytes as they
   * are); false for a server that sends `status` and `headers` through its own framing.
   */
  nphHeadInBody?: boolean;
};

/**
 * Starts the script of `launch` and resolves once its head is read (see spawnCgi for the answers it gives in
 * the script's place). The body is pumped to stdin meanwhile; when a body of unknown length fails to arrive
 * (the client's upload broke off or was malformed), the script is killed rather than left to take the part it
 * got for the whole, and a response not begun yet carries the input's error status.
 */
export async function launchCgi(launch: CgiLaunch, options: CgiLaunchOptions, log: StderrLog): Promise<CgiStream> {
  const { scriptPath, method, body } = launch;
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(undefined, signal.reason);
  const interpreter = options.interpreter === undefined ? [] : [options.interpreter].flat();
  const [file, ...args] = interpreter.length > 0 ? [...interpreter, scriptPath] : [scriptPath];
  const child = startChild({ file: file as string, args, env: launch.env, cwd: options.cwd ?? dirname(scriptPath) }, log);
  let inputError: unknown;
  void pumpStdin(child.stdin, body, log).then((error) => {
    if (error === undefined || body.length !== undefined) return;
    inputError = error;
    child.terminate();
  });

  const nph = options.nph ?? basename(scriptPath).startsWith('nph-');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const outcome = await readHead(child.stdout, new CgiHeadReader({ nph, maxHeadBytes: options.maxHeadBytes }), timeoutMs, signal);
  switch (outcome.kind) {
    case 'abort':
      child.terminate();
      throw new AbortError(undefined, signal?.reason);
    case 'timeout':
      child.terminate();
      return answerWithError(
        new TsgiError(`cgi-host: no response head within timeoutMs (${timeoutMs})`, { status: 504 }),
        method,
        log,
        child.done,
      );
    case 'defect':
      child.terminate();
      return answerWithError(outcome.error, method, log, child.done);
    case 'eof': {
      const exit = await Promise.race([child.exited, delay(EXIT_GRACE_MS)]);
      let error = outcome.error;
      if (exit?.spawnError) error = new ProtocolError(`cgi-host: cannot start the script (${exit.spawnError})`, 500);
      else if (inputError !== undefined) error = inputFailure(inputError);
      child.terminate();
      return answerWithError(error, method, log, child.done);
    }
    case 'head':
      return streamBody(outcome.result, child, { method, timeoutMs, signal, nphHeadInBody: options.nphHeadInBody ?? true }, log);
  }
}

/**
 * runCgi(scriptPath, request, options): spawnCgi, with the body collected into a Buffer (up to
 * `maxBodyBytes`) and the exit awaited. Resolves with the whole response, exit code, signal and stderr; a body
 * that broke off is kept as far as it came and `error` is set. Rejects only with an AbortError when
 * `options.signal` aborts.
 */
export async function runCgi(
  scriptPath: string,
  request: CgiHostRequest = {},
  options: CgiHostOptions = {},
): Promise<CgiResponse> {
  const stream = await spawnCgi(scriptPath, request, options);
  const maxBodyBytes = options.maxBodyBytes ?? MAX_COLLECTED_BODY_BYTES;
  const chunks: Buffer[] = [];
  let length = 0;
  let error = stream.error;
  try {
    for await (const chunk of stream.body as AsyncIterable<Buffer>) {
      if (length + chunk.length > maxBodyBytes) {
        chunks.push(chunk.subarray(0, maxBodyBytes - length));
        length = maxBodyBytes;
        error = new TsgiError(`cgi-host: response body exceeds maxBodyBytes (${maxBodyBytes})`, { status: 502 });
        stream.body.destroy();
        break;
      }
      chunks.push(chunk);
      length += chunk.length;
    }
  } catch (caught) {
    if (caught instanceof AbortError) {
      await stream.done;
      throw caught;
    }
    error = toTsgiError(caught);
  }
  const exit = await stream.done;
  const { body: _stream, done: _done, ...head } = stream;
  return { ...head, ...exit, body: Buffer.concat(chunks, length), ...(error === undefined ? {} : { error }) };
}

/** The request's body as prepareBody takes it; a bad Content-Length request header is a RequestError (400). */
function bodySourceOf(request: CgiHostRequest): BodySource {
  const body = request.body;
  if (body === undefined) return { kind: 'none' };
  if (typeof body === 'string') return { kind: 'bytes', bytes: Buffer.from(body, 'utf8') };
  if (body instanceof Uint8Array) return { kind: 'bytes', bytes: body };
  const declared = findCgiRequestHeader(request.headers, 'content-length');
  if (declared !== undefined && !/^[0-9]+$/.test(declared)) {
    throw new RequestError(`cgi-host: bad Content-Length request header (${declared})`);
  }
  return { kind: 'stream', stream: body, declaredLength: declared === undefined ? undefined : Number(declared) };
}

/** The error a failed body read gives the response: the input's own 4xx (400, 408, 413), else 400. */
function inputFailure(error: unknown): TsgiError {
  if (error instanceof TsgiError && error.status >= 400 && error.status < 500) return error;
  return new RequestError(`cgi-host: the request body broke off (${error instanceof Error ? error.message : String(error)})`);
}

async function checkScript(path: string, interpreted: boolean): Promise<TsgiError | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) return new RequestError(`cgi-host: script not found (${path})`, 404);
  if (!info.isFile()) return new RequestError(`cgi-host: script is not a regular file (${path})`, 403);
  const mode = interpreted ? constants.R_OK : constants.X_OK;
  const allowed = await access(path, mode).then(
    () => true,
    () => false,
  );
  if (!allowed) return new RequestError(`cgi-host: script is not ${interpreted ? 'readable' : 'executable'} (${path})`, 403);
  return undefined;
}
