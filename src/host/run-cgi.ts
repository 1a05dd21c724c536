/**
 * Runs a CGI executable (Node, shell, Perl, C...) through pipes and parses its response (RFC 3875,
 * conformance B1-B18). spawnCgi streams the body with backpressure; runCgi collects it.
 *
 * Decisions, each documented on the option or function it concerns:
 * - A local redirect (`Location: /path` alone, §6.2.2) is answered with a 302 to that path: the host runs one
 *   script and owns no URL space to re-dispatch into, so there is no internal redirect (and no loop to cap).
 *   CgiHead.localRedirect tells a server that wants to re-dispatch.
 * - `timeoutMs` bounds the wait for a complete response head (then 504), and each wait for more body while the
 *   consumer is reading (then the body errors). Time the script spends blocked by a slow consumer doesn't count.
 * - The child runs in its own process group (POSIX); every kill goes to the whole group, so helpers a script
 *   started (a `sleep`, a pipeline) die with it and can't hold the pipes open.
 * - Every failure before the head is answered with a response carrying `error` (404/403 for the script, 400 for
 *   the request, 500 for a malformed head, 504 for a timeout), never an exception; only the caller's own abort
 *   rejects, with an AbortError.
 */
import { waitForDrain } from '../servers/write-to-stream.js';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { execa } from 'execa';
import { AbortError, ProtocolError, RequestError, TsgiError } from '../errors.js';
import type { Header } from '../types.js';
import { getStatusText } from '../helpers/status-text.js';
import { CgiHeadReader, type CgiHeadResult } from '../response/cgi-head-parse.js';
import { buildCgiEnv, type CgiRequest } from './cgi-env.js';

/** Default time a script has to produce a complete response head (B16). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Time between SIGTERM and SIGKILL when the host kills a script. */
export const KILL_TIMEOUT_MS = 2_000;
/** After stdout ends, how long the body waits for the exit to tell a clean end from a death by signal. */
export const EXIT_GRACE_MS = 1_000;
/** Default cap on the stderr text kept in the result (onStderr still sees all of it). */
export const MAX_STDERR_BYTES = 1024 * 1024;
/** Default cap on a request body of unknown length, read ahead to compute CONTENT_LENGTH (B4). */
export const MAX_UNSIZED_BODY_BYTES = 1024 * 1024;
/** Default cap on the body runCgi collects in memory. */
export const MAX_COLLECTED_BODY_BYTES = 64 * 1024 * 1024;

const BODY_HIGH_WATER_MARK_BYTES = 64 * 1024;

/** A request body: bytes, text (sent as UTF-8), or a stream of bytes. */
export type CgiBody = string | Uint8Array | AsyncIterable<Uint8Array>;

/** A request for a CGI script: CgiRequest (see cgi-env.ts) plus the body. */
export interface CgiHostRequest extends CgiRequest {
  /**
   * The request body; undefined for none (CONTENT_LENGTH unset). A string or bytes set CONTENT_LENGTH to
   * their length. A stream uses the Content-Length request header when there is one; without it, up to
   * `maxUnsizedBodyBytes` are read ahead to count them, and a longer body is answered with 411 (B4).
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
  /** Receives the script's stderr as text as it arrives, and the host's own log lines. stderr is also collected. */
  onStderr?: (text: string) => void;
  /** Cap on the stderr text kept in the result. Default MAX_STDERR_BYTES. */
  maxStderrBytes?: number;
  /** Treat the script as NPH (§5.2): its output is relayed unmodified. Default: its name starts with "nph-". */
  nph?: boolean;
  /** Run the script through this program (e.g. ["node"] or "perl"); then it need not be executable. */
  interpreter?: string | readonly string[];
  /** Cap on a streamed request body without Content-Length. Default MAX_UNSIZED_BODY_BYTES. */
  maxUnsizedBodyBytes?: number;
  /** runCgi only: cap on the collected body; past it the body is cut and `error` is set. Default MAX_COLLECTED_BODY_BYTES. */
  maxBodyBytes?: number;
}

/** How a script ended. */
export interface CgiExit {
  /** The exit code, or null when the script was killed by a signal or never started. */
  exitCode: number | null;
  /** The signal that killed the script ("SIGTERM"...), or null. */
  signal: string | null;
  /** The script's stderr (capped at maxStderrBytes) followed by the host's log lines. */
  stderr: string;
}

/** The head of a response, shared by the streaming and the collected forms. */
export interface CgiResponseHead {
  /** The status code (B12-B13: from Status, else 302 with a Location, else 200; or the code of `error`). */
  status: number;
  /** The reason phrase. */
  reason: string;
  /** Header fields in the script's order, without Status and hop-by-hop fields; Set-Cookie lines stay separate. */
  headers: Header[];
  /** True when the output is NPH: then `body` is the script's whole output, status line and head included (§5.2). */
  nph: boolean;
  /**
   * Set when the host answered in the script's place (the response is the error's status and a short text
   * body), or, for runCgi, when the body broke off. Its message is also in the stderr log.
   */
  error?: TsgiError;
}

/** What spawnCgi resolves with once the head is known. */
export interface CgiStream extends CgiResponseHead {
  /**
   * The body, streamed with backpressure: the script is only read as fast as this is consumed. Empty for a
   * HEAD request (B14). Errors (a server should then abort the client connection, B17) when the script dies by
   * a signal mid-body, sends less than its Content-Length, stays silent for `timeoutMs` while the body is read,
   * or the `signal` aborts. Destroying it kills the script.
   */
  body: Readable;
  /** Settles when the script has exited; never rejects. */
  done: Promise<CgiExit>;
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
  const log = new StderrLog(options.maxStderrBytes ?? MAX_STDERR_BYTES, options.onStderr);
  const method = request.method ?? 'GET';
  const signal = options.signal;
  if (signal?.aborted) throw new AbortError(undefined, signal.reason);
  const absolutePath = resolve(scriptPath);
  const fail = (error: TsgiError): CgiStream => answerWithError(error, method, log);

  const scriptError = await checkScript(absolutePath, options.interpreter !== undefined);
  if (scriptError) return fail(scriptError);

  let body: PreparedBody;
  try {
    body = await prepareBody(request, options.maxUnsizedBodyBytes ?? MAX_UNSIZED_BODY_BYTES);
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
  if (signal?.aborted) throw new AbortError(undefined, signal.reason);

  const child = startChild(absolutePath, env, options, log);
  void pumpStdin(child.stdin, body, log);

  const nph = options.nph ?? basename(absolutePath).startsWith('nph-');
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
      const error = exit?.spawnError
        ? new ProtocolError(`cgi-host: cannot start the script (${exit.spawnError})`, 500)
        : outcome.error;
      child.terminate();
      return answerWithError(error, method, log, child.done);
    }
    case 'head':
      return streamBody(outcome.result, child, method, timeoutMs, signal, log);
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

/** The request body, ready to pump: its CONTENT_LENGTH and where its bytes come from. */
interface PreparedBody {
  length: number | undefined;
  bytes?: Uint8Array;
  stream?: AsyncIterable<Uint8Array>;
}

async function prepareBody(request: CgiHostRequest, maxUnsizedBodyBytes: number): Promise<PreparedBody> {
  const body = request.body;
  if (body === undefined) return { length: undefined };
  if (typeof body === 'string') {
    const bytes = Buffer.from(body, 'utf8');
    return { length: bytes.length, bytes };
  }
  if (body instanceof Uint8Array) return { length: body.length, bytes: body };
  const declared = findRequestHeader(request.headers, 'content-length');
  if (declared !== undefined) {
    if (!/^[0-9]+$/.test(declared)) throw new RequestError(`cgi-host: bad Content-Length request header (${declared})`);
    return { length: Number(declared), stream: body };
  }
  // §4.2 needs CONTENT_LENGTH before the script starts; a body of unknown length is read ahead, up to a cap.
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > maxUnsizedBodyBytes) {
      throw new RequestError(`cgi-host: request body without Content-Length exceeds maxUnsizedBodyBytes (${maxUnsizedBodyBytes})`, 411);
    }
    chunks.push(chunk);
  }
  return { length, bytes: Buffer.concat(chunks, length) };
}

function findRequestHeader(headers: CgiHostRequest['headers'], name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (Array.isArray(headers)) {
    for (const [key, value] of headers as ReadonlyArray<readonly [string, string]>) if (key.toLowerCase() === name) return value.trim();
    return undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    return (typeof value === 'string' ? value : value[0])?.trim();
  }
  return undefined;
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

/** A running child: its pipes, how it ended, and a way to kill it with everything it started. */
interface Child {
  stdin: Writable;
  stdout: Readable;
  /** Resolves at the exit of the script's own process (or its failure to start). */
  exited: Promise<ExitInfo>;
  /** Resolves once the script exited and its stderr is read (or a grace period passed). */
  done: Promise<CgiExit>;
  /** SIGTERM to the process group, then SIGKILL after KILL_TIMEOUT_MS. Idempotent. */
  terminate(): void;
}

interface ExitInfo {
  exitCode: number | null;
  signal: string | null;
  spawnError?: string;
}

function startChild(scriptPath: string, env: Record<string, string>, options: CgiHostOptions, log: StderrLog): Child {
  const interpreter = options.interpreter === undefined ? [] : [options.interpreter].flat();
  const [file, ...args] = interpreter.length > 0 ? [...interpreter, scriptPath] : [scriptPath];
  const posix = process.platform !== 'win32';
  const subprocess = execa(file as string, args, {
    env,
    extendEnv: false,
    cwd: options.cwd ?? dirname(scriptPath),
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    encoding: 'buffer',
    // A group of its own lets one kill reach whatever the script started (T25).
    detached: posix,
    forceKillAfterDelay: false,
    windowsHide: true,
  });
  trackGroup(subprocess.pid, posix);
  const stdin = subprocess.stdin as Writable;
  const stdout = subprocess.stdout as Readable;
  const stderr = subprocess.stderr as Readable;
  // EPIPE when a script exits without reading its body is normal (§4.2 lets it ignore the body).
  stdin.on('error', () => {});
  stdout.on('error', () => {});
  stderr.on('error', () => {});

  const exited = new Promise<ExitInfo>((resolveExit) => {
    subprocess.once('exit', (exitCode, signal) => resolveExit({ exitCode, signal }));
    const settle = (result: unknown) => {
      const failure = result as { failed?: boolean; exitCode?: number; signal?: string; code?: string; shortMessage?: string };
      resolveExit({
        exitCode: failure.exitCode ?? null,
        signal: failure.signal ?? null,
        ...(failure.failed && failure.exitCode === undefined && failure.signal === undefined
          ? { spawnError: failure.code ?? failure.shortMessage ?? 'unknown error' }
          : {}),
      });
    };
    subprocess.then(settle, settle);
  });

  stderr.setEncoding('utf8');
  stderr.on('data', (text: string) => log.write(text));
  const stderrClosed = new Promise<void>((resolveClosed) => stderr.once('close', () => resolveClosed()));
  const stdoutClosed = new Promise<void>((resolveClosed) => stdout.once('close', () => resolveClosed()));

  let killTimer: NodeJS.Timeout | undefined;
  let terminating = false;
  let finished = false;
  // Once the script exited and both pipes closed, nothing of the group can still hold them: no kill is due.
  void Promise.all([exited, stdoutClosed, stderrClosed]).then(() => {
    finished = true;
    clearTimeout(killTimer);
    if (subprocess.pid !== undefined) liveGroups.delete(subprocess.pid);
  });
  const signalGroup = (name: NodeJS.Signals) => {
    try {
      if (posix && subprocess.pid !== undefined) process.kill(-subprocess.pid, name);
      else subprocess.kill(name);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const terminate = () => {
    if (terminating || finished) return;
    terminating = true;
    signalGroup('SIGTERM');
    killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_TIMEOUT_MS);
  };

  const done = exited.then(async (exit) => {
    await Promise.race([stderrClosed, delay(EXIT_GRACE_MS)]);
    if (exit.spawnError) log.line(`cgi-host: cannot start the script (${exit.spawnError})`);
    else if (exit.signal) log.line(`cgi-host: script killed by ${exit.signal}`);
    else if (exit.exitCode !== 0) log.line(`cgi-host: script exited with code ${exit.exitCode}`);
    return { exitCode: exit.exitCode, signal: exit.signal, stderr: log.text() };
  });
  return { stdin, stdout, exited, done, terminate };
}

/** Process groups of scripts still running, killed if this process exits first (execa's cleanup can't: they are detached). */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number | undefined, posix: boolean): void {
  if (pid === undefined || !posix) return;
  liveGroups.add(pid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const group of liveGroups) {
      try {
        process.kill(-group, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

async function pumpStdin(stdin: Writable, body: PreparedBody, log: StderrLog): Promise<void> {
  try {
    if (body.bytes !== undefined) {
      if (body.bytes.length > 0) stdin.write(body.bytes);
    } else if (body.stream !== undefined && body.length !== undefined) {
      let remaining = body.length;
      for await (const chunk of body.stream) {
        const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
        remaining -= part.length;
        if (!stdin.write(part) && !(await waitForDrain(stdin))) return;
        if (remaining === 0) break;
      }
      if (remaining > 0) log.line(`cgi-host: request body shorter than CONTENT_LENGTH (${body.length - remaining} < ${body.length})`);
    }
    stdin.end();
  } catch (error) {
    log.line(`cgi-host: reading the request body failed (${error instanceof Error ? error.message : String(error)})`);
    stdin.destroy();
  }
}


type HeadOutcome =
  | { kind: 'head'; result: CgiHeadResult }
  | { kind: 'defect'; error: TsgiError }
  | { kind: 'eof'; error: TsgiError }
  | { kind: 'timeout' }
  | { kind: 'abort' };

/** Reads stdout until the head is complete, it ends, the timeout passes or the client goes away. */
function readHead(stdout: Readable, reader: CgiHeadReader, timeoutMs: number, signal: AbortSignal | undefined): Promise<HeadOutcome> {
  return new Promise((resolveHead) => {
    const finish = (outcome: HeadOutcome) => {
      clearTimeout(timer);
      stdout.off('data', onData);
      stdout.off('end', onEnd);
      stdout.off('close', onEnd);
      signal?.removeEventListener('abort', onAbort);
      resolveHead(outcome);
    };
    const onData = (chunk: Buffer) => {
      try {
        const result = reader.push(chunk);
        if (result === undefined) return;
        stdout.pause();
        finish({ kind: 'head', result });
      } catch (error) {
        finish({ kind: 'defect', error: toTsgiError(error) });
      }
    };
    const onEnd = () => {
      try {
        reader.end();
      } catch (error) {
        finish({ kind: 'eof', error: toTsgiError(error) });
      }
    };
    const onAbort = () => finish({ kind: 'abort' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    stdout.on('data', onData);
    stdout.once('end', onEnd);
    stdout.once('close', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Hands the rest of stdout to a Readable that pulls from the script only as fast as it is consumed. */
function streamBody(
  { head, headBytes, body: first }: CgiHeadResult,
  child: Child,
  method: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  log: StderrLog,
): CgiStream {
  for (const warning of head.warnings) log.line(warning);
  const stdout = child.stdout;
  const discard = method === 'HEAD';
  const declared = head.nph ? undefined : declaredLength(head.headers);
  let received = 0;
  let ended = false;
  let overflowLogged = false;
  // Runs only while the consumer waits for the script; a consumer that applies backpressure stops the clock.
  let idleTimer: NodeJS.Timeout | undefined;
  const disarmIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  };
  const armIdle = () => {
    disarmIdle();
    if (!ended) idleTimer = setTimeout(onIdle, timeoutMs);
  };

  const body = new Readable({
    highWaterMark: BODY_HIGH_WATER_MARK_BYTES,
    read() {
      if (ended) return;
      stdout.resume();
      if (idleTimer === undefined) armIdle();
    },
    destroy(error, callback) {
      disarmIdle();
      if (!ended) {
        ended = true;
        child.terminate();
        stdout.destroy();
      }
      signal?.removeEventListener('abort', onAbort);
      callback(error);
    },
  });
  const onIdle = () => body.destroy(new TsgiError(`cgi-host: no body output within timeoutMs (${timeoutMs})`, { status: 504 }));
  const onAbort = () => body.destroy(new AbortError(undefined, signal?.reason));
  signal?.addEventListener('abort', onAbort, { once: true });

  const relay = (chunk: Buffer) => {
    let part = chunk;
    if (declared !== undefined) {
      // Bytes past Content-Length would corrupt whatever follows this response on a connection.
      const room = declared - received;
      if (part.length > room) {
        part = part.subarray(0, Math.max(room, 0));
        if (!overflowLogged) log.line(`cgi-host: body longer than Content-Length, extra bytes dropped (${declared})`);
        overflowLogged = true;
      }
    }
    received += part.length;
    if (part.length === 0 || body.push(part)) {
      armIdle();
    } else {
      stdout.pause();
      disarmIdle();
    }
  };

  if (discard) {
    // B14: a HEAD response has no body, but the script may still write one; read and drop it.
    if (head.nph) body.push(headBytes);
    ended = true;
    body.push(null);
    signal?.removeEventListener('abort', onAbort);
    stdout.on('data', () => {});
    stdout.resume();
  } else {
    if (head.nph) body.push(headBytes);
    if (first.length > 0) relay(first);
    stdout.on('data', relay);
  }

  const finishBody = async () => {
    disarmIdle();
    if (ended) return;
    const exit = await Promise.race([child.exited, delay(EXIT_GRACE_MS)]);
    if (ended) return;
    ended = true;
    signal?.removeEventListener('abort', onAbort);
    if (exit?.signal) {
      body.destroy(new ProtocolError(`cgi-host: script killed by ${exit.signal} mid-body`, 502));
    } else if (declared !== undefined && received < declared) {
      body.destroy(new ProtocolError(`cgi-host: body shorter than Content-Length (${received} < ${declared})`, 502));
    } else {
      body.push(null);
    }
  };
  stdout.once('end', () => void finishBody());
  stdout.once('close', () => {
    if (!stdout.readableEnded && !ended) {
      ended = true;
      disarmIdle();
      body.destroy(new ProtocolError('cgi-host: script output broke off', 502));
    }
  });
  guardLingering(child, stdout, timeoutMs);
  return {
    status: head.status,
    reason: head.reason,
    headers: head.headers,
    nph: head.nph,
    body,
    done: child.done,
  };
}

/**
 * Kills what is left of the script's process group when the script exited but something it started still holds
 * stdout, or stdout ended but the script doesn't exit, for longer than `timeoutMs`: `done` always settles.
 */
function guardLingering(child: Child, stdout: Readable, timeoutMs: number): void {
  let exited = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    clearTimeout(timer);
    if (exited && closed) return;
    if (exited || closed) timer = setTimeout(() => child.terminate(), timeoutMs);
  };
  void child.exited.then(() => {
    exited = true;
    check();
  });
  stdout.once('close', () => {
    closed = true;
    check();
  });
}

function declaredLength(headers: readonly Header[]): number | undefined {
  for (const [name, value] of headers) if (name.toLowerCase() === 'content-length') return Number(value);
  return undefined;
}

/** A response the host writes itself: the error's status, a one-line text body (none for HEAD). */
function answerWithError(error: TsgiError, method: string, log: StderrLog, done?: Promise<CgiExit>): CgiStream {
  log.line(error.message);
  const status = error.status;
  const reason = getStatusText(status);
  const text = method === 'HEAD' ? [] : [Buffer.from(`${status} ${reason}\n`)];
  return {
    status,
    reason,
    headers: [['Content-Type', 'text/plain; charset=utf-8']],
    nph: false,
    error,
    body: Readable.from(text, { objectMode: false }),
    done: done ?? Promise.resolve({ exitCode: null, signal: null, stderr: log.text() }),
  };
}

function toTsgiError(error: unknown): TsgiError {
  if (error instanceof TsgiError) return error;
  return new TsgiError(`cgi-host: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolveDelay) => setTimeout(() => resolveDelay(undefined), ms).unref());
}

/** The stderr of one run: forwarded to onStderr as it comes, and kept up to a cap. */
class StderrLog {
  #text = '';
  #dropped = 0;
  readonly #max: number;
  readonly #onStderr: ((text: string) => void) | undefined;

  constructor(max: number, onStderr: ((text: string) => void) | undefined) {
    this.#max = max;
    this.#onStderr = onStderr;
  }

  write(text: string): void {
    this.#onStderr?.(text);
    const room = this.#max - this.#text.length;
    if (text.length <= room) {
      this.#text += text;
    } else {
      this.#text += text.slice(0, Math.max(room, 0));
      this.#dropped += text.length - Math.max(room, 0);
    }
  }

  /** Writes one of the host's own log lines; these are kept even past the cap. */
  line(message: string): void {
    this.#onStderr?.(`${message}\n`);
    this.#text += `${message}\n`;
  }

  text(): string {
    return this.#dropped === 0 ? this.#text : `${this.#text}\n[cgi-host: stderr truncated, ${this.#dropped} chars dropped]\n`;
  }
}
