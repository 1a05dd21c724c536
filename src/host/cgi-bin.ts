/**
 * cgiBin(folder, options): a tsgi App that serves the CGI programs in a folder (Go's cgi.Handler, Plack's
 * App::CGIBin, Apache's ScriptAlias, nginx + fcgiwrap), on every transport tsgi has.
 *
 * The request comes from the environ: the path below the app's mount (PATH_INFO) names the script (cgi-bin-find.ts:
 * resolve-script.ts's walk, no traversal, no symlinks out, index scripts), the script's environment is the
 * environ's CGI variables with the script's own (cgi-bin-env.ts), its stdin the body from `tsgi.input`, and the
 * answer is its response, streamed both ways with backpressure (run-cgi.ts). Besides what runCgi does:
 * - A body without a length (HTTP chunked; FastCGI STDIN without CONTENT_LENGTH) is streamed to the script as
 *   it arrives, to EOF on its stdin, without CONTENT_LENGTH, as Apache mod_cgi does; `readAhead` counts it
 *   first instead (then CONTENT_LENGTH is set, and a body over `maxReadAheadBytes` gets 411).
 * - A local redirect (RFC 3875 §6.2.2: only `Location: /path`) to a path under the mount is served in place:
 *   the script at that path runs with GET, no body, and the REDIRECT_* variables (cgi-bin-env.ts); past
 *   `maxRedirects` in a row the answer is 500. A Location outside the mount is a 302 to it.
 * - An NPH script (its name starts with "nph-") has its status line and head parsed into the transport's head
 *   (the transport frames the response itself, so hop-by-hop fields are dropped; a Transfer-Encoding makes it
 *   a 502), and its body relayed as it comes.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TsgiError } from '../errors.js';
import { encodeUtf8Latin1, percentDecodeToByteString } from '../environ/byte-policy.js';
import { isUnderMount } from '../environ/mount.js';
import { percentEncodePath } from '../environ/percent-encode.js';
import { getStatusText } from '../helpers/status-text.js';
import { MAX_HEAD_BYTES } from '../response/cgi-head-parse.js';
import { isHopByHop } from '../response/hop-by-hop.js';
import type { App, Environ, ErrorStream, Header, StartResponse } from '../types.js';
import { ScriptBody } from './cgi-bin-body.js';
import { buildScriptEnv, inheritedEnv, redirectVariables } from './cgi-bin-env.js';
import { findScript, type FoundScript, type ScriptFinder } from './cgi-bin-find.js';
import { CgiBinLogs, ScriptStderr } from './cgi-bin-log.js';
import { prepareBody, type BodySource } from './cgi-body.js';
import { StderrLog } from './cgi-log.js';
import { answerWithError, toTsgiError, type CgiStream } from './cgi-output.js';
import { DEFAULT_TIMEOUT_MS, launchCgi, MAX_UNSIZED_BODY_BYTES } from './run-cgi.js';

/** Default cap on local redirects followed for one request (Apache's LimitInternalRecursion is 10 too). */
export const DEFAULT_MAX_REDIRECTS = 10;

/** Options of cgiBin. */
export interface CgiBinOptions {
  /**
   * Interpreter by extension: `{ '.php': '/usr/bin/php-cgi', '.py': 'python3' }`. A script with such an
   * extension runs as `INTERPRETER SCRIPT` and need only be readable; any other script must be an executable
   * file. A bare name is looked up on the scripts' PATH. Default: none.
   */
  interpreters?: Record<string, string>;
  /**
   * Extra variables for every script (GIT_PROJECT_ROOT, PHPRC...); they override all others. The rest of this
   * process's environment reaches scripts only through the allow-list (DEFAULT_ENV_ALLOW_LIST, read when
   * cgiBin is called), never whole. Default: none.
   */
  env?: Record<string, string>;
  /**
   * Names tried, in order, for a folder URL ("/dir/"). Default: ["index.cgi"], then "index" + each extension
   * of `interpreters` ("index.php" when ".php" is mapped). A folder URL without its trailing slash gets a 301 to
   * the slash form when the folder has an index; a folder without one is a 403.
   */
  index?: string[];
  /**
   * Time a script has to produce its response head: then 504, and its process group is killed. Also the
   * longest silence of a script mid-body while the client waits for more (then the response is cut).
   * Default DEFAULT_TIMEOUT_MS (30 s).
   */
  timeoutMs?: number;
  /** Local redirects followed for one request; one more is answered 500 (logged). Default DEFAULT_MAX_REDIRECTS (10). */
  maxRedirects?: number;
  /**
   * Read a body without a length ahead to count it, so the script gets CONTENT_LENGTH (for scripts that need
   * it); past `maxReadAheadBytes` the answer is 411. Default false: such a body is streamed to the script,
   * without CONTENT_LENGTH, to EOF on its stdin.
   */
  readAhead?: boolean;
  /** With `readAhead`, the most bytes read ahead. Default MAX_UNSIZED_BODY_BYTES (1 MiB). */
  maxReadAheadBytes?: number;
  /** Cap on a script's response head; past it the answer is 500 and the script is killed. Default MAX_HEAD_BYTES (64 KiB). */
  maxHeadBytes?: number;
  /** Where the scripts' stderr and the host's log lines go. Default: the request's `tsgi.errors`. */
  errors?: ErrorStream;
}

/** cgiBin's settings, checked once. */
interface CgiBinConfig extends ScriptFinder {
  timeoutMs: number;
  maxRedirects: number;
  readAhead: boolean;
  maxReadAheadBytes: number;
  maxHeadBytes: number;
  errors: ErrorStream | undefined;
  inherited: Record<string, string>;
  extra: Record<string, string>;
  logs: CgiBinLogs;
}

/**
 * Returns an App serving the CGI programs under `folder` (see the file comment and CgiBinOptions). Throws a
 * TsgiError at once when `folder` is not a folder or an option is malformed.
 */
export function cgiBin(folder: string, options: CgiBinOptions = {}): App {
  const config = configure(folder, options);
  return (environ, startResponse) => serve(config, environ, startResponse);
}

function configure(folder: string, options: CgiBinOptions): CgiBinConfig {
  const absolute = resolve(folder);
  const info = statSync(absolute, { throwIfNoEntry: false });
  if (!info?.isDirectory()) throw new TsgiError(`cgi-bin: not a folder (${folder})`);
  const interpreters = new Map<string, string>();
  for (const [extension, interpreter] of Object.entries(options.interpreters ?? {})) {
    if (!/^\.[^./\\\0]+$/.test(extension)) throw new TsgiError(`cgi-bin: an interpreter's extension must read ".ext" (${JSON.stringify(extension)})`);
    if (typeof interpreter !== 'string' || interpreter === '' || interpreter.includes('\0')) {
      throw new TsgiError(`cgi-bin: the interpreter for ${extension} must be a program path (${JSON.stringify(interpreter)})`);
    }
    interpreters.set(extension, interpreter);
  }
  const index = options.index ?? ['index.cgi', ...[...interpreters.keys()].map((extension) => `index${extension}`)];
  for (const name of index) {
    if (name === '' || name === '.' || name === '..' || /[/\\\0]/.test(name)) throw new TsgiError(`cgi-bin: bad index name (${JSON.stringify(name)})`);
  }
  const extra: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!/^[^=\0]+$/.test(name) || typeof value !== 'string' || value.includes('\0')) {
      throw new TsgiError(`cgi-bin: bad environment variable (${JSON.stringify(name)})`);
    }
    extra[name] = value;
  }
  return {
    folder: absolute,
    interpreters,
    interpretedExtensions: new Set(interpreters.keys()),
    index: index.map((name) => encodeUtf8Latin1(name)),
    timeoutMs: positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs'),
    maxRedirects: count(options.maxRedirects, DEFAULT_MAX_REDIRECTS, 'maxRedirects'),
    readAhead: options.readAhead ?? false,
    maxReadAheadBytes: count(options.maxReadAheadBytes, MAX_UNSIZED_BODY_BYTES, 'maxReadAheadBytes'),
    maxHeadBytes: positive(options.maxHeadBytes, MAX_HEAD_BYTES, 'maxHeadBytes'),
    errors: options.errors,
    inherited: inheritedEnv(),
    extra,
    logs: new CgiBinLogs(),
  };
}

/** One request: find the script, run it, follow local redirects, answer with what the last script said. */
async function serve(config: CgiBinConfig, environ: Environ, startResponse: StartResponse): Promise<ScriptBody | string[]> {
  const errors = config.errors ?? environ['tsgi.errors'];
  const mount = environ.SCRIPT_NAME;
  const signal = environ['tsgi.signal'];
  let path = environ.PATH_INFO;
  let queryString = environ.QUERY_STRING;
  let method = environ.REQUEST_METHOD;
  let source: BodySource = bodyOf(environ);
  let redirect: Record<string, string> | undefined;
  for (let redirects = 0; ; redirects++) {
    let found: FoundScript;
    try {
      const target = await findScript(config, path);
      if (target.kind === 'add-slash') {
        const location = `${percentEncodePath(mount + target.folderPart)}/${queryString === '' ? '' : `?${queryString}`}`;
        return answer(startResponse, 301, [['Location', location]]);
      }
      found = target;
    } catch (error) {
      const refusal = toTsgiError(error);
      if (refusal.status === 403) config.logs.host(errors, 'refused', `${mount}${path}`, refusal.message.replace(/^cgi-host: /, ''));
      return answer(startResponse, refusal.status, []);
    }
    const scriptName = mount + found.scriptPart;
    const stream = await run(config, environ, errors, { found, scriptName, method, queryString, source, redirect, signal });
    const location = stream.localRedirect;
    const next = location === undefined ? undefined : localTarget(location, mount);
    if (next === undefined) return respond(stream, startResponse, errors, scriptName);
    // §6.2.2: the client gets what the script at that path answers; this script's body (if any) is dropped.
    stream.body.resume();
    if (redirects >= config.maxRedirects) {
      config.logs.limit(
        errors,
        'maxRedirects',
        `${environ.REQUEST_METHOD} ${environ.SCRIPT_NAME}${environ.PATH_INFO} made more than ${config.maxRedirects} local redirects in a row (the last from ${scriptName} to ${location}): answered 500`,
        'option maxRedirects of cgiBin()',
      );
      return answer(startResponse, 500, []);
    }
    redirect ??= redirectVariables(environ);
    path = next.path;
    queryString = next.queryString;
    method = 'GET';
    source = { kind: 'none' };
  }
}

interface Run {
  found: FoundScript;
  scriptName: string;
  method: string;
  queryString: string;
  source: BodySource;
  redirect: Record<string, string> | undefined;
  signal: AbortSignal;
}

/** Runs one script and resolves with its response (or the host's answer in its place). Rejects only on abort. */
async function run(config: CgiBinConfig, environ: Environ, errors: ErrorStream, job: Run): Promise<CgiStream> {
  const { found, scriptName, method } = job;
  const stderr = new ScriptStderr(errors, scriptName);
  const log = new StderrLog(0, {
    onStderr: stderr.write,
    onHostLine: (message) => hostLine(config, errors, scriptName, message),
  });
  let stream: CgiStream;
  try {
    const body = await prepareBody(job.source, { stream: !config.readAhead, maxUnsizedBodyBytes: config.maxReadAheadBytes });
    const env = buildScriptEnv(
      environ,
      {
        method,
        queryString: job.queryString,
        scriptName,
        pathInfo: found.pathInfo,
        scriptFilename: found.scriptPath,
        contentLength: body.length,
        hasBody: job.source.kind !== 'none',
        redirect: job.redirect,
      },
      config.folder,
      config.inherited,
      config.extra,
    );
    stream = await launchCgi(
      { scriptPath: found.scriptPath, env, method, body },
      {
        timeoutMs: config.timeoutMs,
        signal: job.signal,
        maxHeadBytes: config.maxHeadBytes,
        ...(found.interpreter === undefined ? {} : { interpreter: found.interpreter }),
        nphHeadInBody: false,
      },
      log,
    );
  } catch (error) {
    if (job.signal.aborted) throw error;
    stream = answerWithError(toTsgiError(error), method, log);
  }
  if (stream.error !== undefined) reportLimit(config, environ, errors, scriptName, stream.error);
  void stream.done.then(() => stderr.flush());
  return stream;
}

/** Logs the refusals at cgiBin's limits through the limit log (naming the limit and how to change it). */
function reportLimit(config: CgiBinConfig, environ: Environ, errors: ErrorStream, scriptName: string, error: TsgiError): void {
  const request = `${environ.REQUEST_METHOD} ${scriptName}`;
  if (error.status === 504) {
    config.logs.limit(errors, 'timeoutMs', `${request}: no response head within ${config.timeoutMs / 1000} s: answered 504, the script killed`, '--timeout SECONDS (option timeoutMs)');
  } else if (error.message.includes('head exceeds maxHeadBytes')) {
    config.logs.limit(errors, 'maxHeadBytes', `${request}: response head over ${config.maxHeadBytes} bytes: answered 500, the script killed`, 'option maxHeadBytes of cgiBin()');
  } else if (error.status === 411) {
    config.logs.limit(errors, 'maxReadAheadBytes', `${request}: body without a length over ${config.maxReadAheadBytes} bytes read ahead: answered 411`, 'option maxReadAheadBytes, or stream such bodies (no --cgi-read-ahead)');
  }
}

/** The host's own lines about a script, rate-limited by kind; those reportLimit logs are left to it. */
function hostLine(config: CgiBinConfig, errors: ErrorStream, scriptName: string, message: string): void {
  const text = message.replace(/^cgi-host: /, '');
  if (/^(no response head within|head exceeds maxHeadBytes|request body without Content-Length exceeds)/.test(text)) return;
  const paren = text.indexOf(' (');
  config.logs.host(errors, paren < 0 ? text : text.slice(0, paren), scriptName, text);
}

/** Sends a script's response: its status and headers through the transport's head, its body streamed. */
function respond(stream: CgiStream, startResponse: StartResponse, errors: ErrorStream, scriptName: string): ScriptBody | string[] {
  let headers = stream.headers;
  if (stream.nph) {
    // The transport frames the response: the NPH script's own framing fields can't pass.
    if (headers.some(([name]) => name.toLowerCase() === 'transfer-encoding')) {
      stream.body.destroy();
      errors.write(`tsgi: cgi-bin: ${scriptName}: an NPH script sent Transfer-Encoding, which tsgi's transports frame themselves: answered 502\n`);
      return answer(startResponse, 502, []);
    }
    headers = headers.filter(([name]) => !isHopByHop(name));
  }
  startResponse(`${stream.status} ${stream.reason}`, headers);
  return new ScriptBody(stream.body);
}

/** A page the host answers with itself: `status` and a one-line text body (HEAD: the server sends none). */
function answer(startResponse: StartResponse, status: number, headers: Header[]): string[] {
  const reason = getStatusText(status);
  startResponse(`${status} ${reason}`, [['Content-Type', 'text/plain; charset=utf-8'], ...headers]);
  return [`${status} ${reason}\n`];
}

/** The body of the request as the environ has it: sized, streamed to its end, or none. */
function bodyOf(environ: Environ): BodySource {
  const length = environ.CONTENT_LENGTH;
  if (length !== undefined && length !== '') return { kind: 'stream', stream: environ['tsgi.input'], declaredLength: Number(length) };
  if (environ['tsgi.input_terminated']) return { kind: 'stream', stream: environ['tsgi.input'], declaredLength: undefined };
  return { kind: 'none' };
}

/** Where a local redirect leads below `mount`: PATH_INFO (decoded) and query; undefined when outside the mount. */
function localTarget(location: string, mount: string): { path: string; queryString: string } | undefined {
  const mark = location.indexOf('?');
  const rawPath = mark < 0 ? location : location.slice(0, mark);
  const fragment = rawPath.indexOf('#');
  const path = percentDecodeToByteString(fragment < 0 ? rawPath : rawPath.slice(0, fragment));
  if (!isUnderMount(path, mount)) return undefined;
  return { path: path.slice(mount.length), queryString: mark < 0 ? '' : location.slice(mark + 1).replace(/#.*$/, '') };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TsgiError(`cgi-bin: ${name} must be a positive number (${value})`);
  return value;
}

function count(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TsgiError(`cgi-bin: ${name} must be a whole number (${value})`);
  return value;
}
