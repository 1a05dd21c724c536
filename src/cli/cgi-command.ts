/**
 * The `tsgi cgi` verb: runs any CGI executable once through the CGI host (src/host/run-cgi.ts) and prints the
 * response, for testing CGI programs from a shell the way `curl -i` tests a web server.
 */
import { waitForDrain } from '../servers/write-to-stream.js';
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { spawnCgi, type CgiHostOptions, type CgiHostRequest } from '../host/run-cgi.js';
import { buildMultipartBody, FormFieldError, parseFormField, type FormField } from '../host/multipart-form.js';

/** Every flag `tsgi cgi` accepts, as parseArgs takes them (the help test checks each is documented). */
export const CGI_OPTIONS = {
  header: { type: 'string', short: 'H', multiple: true },
  data: { type: 'string', short: 'd', multiple: true },
  'data-binary': { type: 'string', multiple: true },
  form: { type: 'string', short: 'F', multiple: true },
  timeout: { type: 'string', short: 't' },
  include: { type: 'boolean', short: 'i' },
  'body-only': { type: 'boolean' },
  env: { type: 'string', short: 'e', multiple: true },
  'script-name': { type: 'string' },
  'pass-authorization': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CGI_USAGE = `usage: tsgi cgi SCRIPT [METHOD] [URL] [options]

Runs the CGI executable SCRIPT (any language) once through pipes, as a web server would: a clean environment
with the CGI variables, the body on stdin, stdout and stderr read at the same time. Prints the response like
curl -i: an "HTTP/1.1 NNN reason" line, the headers, a blank line, then the body (an NPH script's output as
it is). The script's stderr goes to stderr.

Request:
  METHOD                          request method (default GET, or POST when there is a body or -F)
  URL                             what follows the script name: /path/info?query (default: none)
  -H, --header 'Name: value'      add a request header (repeatable)
  -d, --data STRING|@FILE         request body; @FILE is read with CR and LF removed, as curl does, @- reads
                                  stdin; several are joined with "&"; sets Content-Type:
                                  application/x-www-form-urlencoded unless -H gives one
  --data-binary STRING|@FILE      request body, byte for byte
  -F, --form name=value|name=@FILE|name=<FILE
                                  a multipart/form-data field, as curl -F (repeatable): name=@FILE uploads the
                                  file (its name as filename), name=<FILE sends its content as the value;
                                  append ;type=mime/type or ;filename=NAME; quote a value holding ";"
                                  (name="a;b"). Sets Content-Type: multipart/form-data with a fresh boundary
                                  and CONTENT_LENGTH; the method defaults to POST; not with -d/--data-binary
  --pass-authorization            export the Authorization header as HTTP_AUTHORIZATION (web servers hide it
                                  from CGI scripts unless told otherwise)

Script environment:
  --script-name PATH              SCRIPT_NAME (default "/" + the script's file name)
  -e, --env NAME=VALUE            add a variable to the script's environment (repeatable)
  -t, --timeout SECONDS           time allowed for the response head (default 30); past it the script's
                                  process group is killed and the answer is 504

Output:
  -i, --include                   print the status line and headers (the default; kept for curl habits)
  --body-only                     print only the body

  -h, --help                      this help

Exit status: 0 for a complete response, 1 otherwise (the host's error page, a timeout, a body cut off),
2 for bad arguments.

Examples:
  tsgi cgi ./hello.cgi
  tsgi cgi ./form.pl POST '/submit?x=1' --data 'a=1&b=2'
  tsgi cgi ./upload.cgi PUT /files/photo.jpg -H 'Content-Type: image/jpeg' --data-binary @photo.jpg
  tsgi cgi ./app.cgi GET /private -H 'Authorization: Basic dTpw' --pass-authorization
  tsgi cgi ./upload.pl -F title=holiday -F 'photo=@photo.jpg;type=image/jpeg'
`;

/** Where the cgi command reads and writes. Defaults to the process's own streams. */
export interface CgiCommandIo {
  stdout: Writable;
  stderr: Writable;
  /** Read by `--data @-`. */
  stdin?: Readable;
}

/** A usage error: reported with the usage text and exit status 2. */
class UsageError extends Error {}

/**
 * The `tsgi cgi` verb: `tsgi cgi SCRIPT [METHOD] [URL] [-H 'Name: value']... [--data STRING|@FILE |
 * --data-binary STRING|@FILE] [--timeout S] [-i] [--body-only] [-e NAME=VALUE]...`. Runs SCRIPT through spawnCgi
 * and streams the response to `io.stdout` (head then body, like `curl -i`; see CGI_USAGE), the script's stderr and
 * the host's log lines to `io.stderr`. Resolves with the exit status: 0 for a complete response, 1 otherwise,
 * 2 for bad arguments (with a usage message). Never rejects.
 */
export async function runCgiCommand(
  args: string[],
  io: CgiCommandIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin },
): Promise<number> {
  let command: ParsedCommand | 'help';
  try {
    command = await parseCommand(args, io);
  } catch (error) {
    io.stderr.write(`tsgi cgi: ${(error as Error).message}\n${error instanceof UsageError ? CGI_USAGE : ''}`);
    return 2;
  }
  if (command === 'help') {
    io.stdout.write(CGI_USAGE);
    return 0;
  }
  // The script runs in its own process group, out of reach of the terminal's Ctrl-C: pass it on.
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  // A closed stdout (EPIPE) is reported by write(); without a listener it would crash the process.
  const onOutputError = () => {};
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  io.stdout.on('error', onOutputError);
  try {
    return await runAndPrint(command, io, controller.signal);
  } catch (error) {
    io.stderr.write(`tsgi cgi: ${(error as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.stdout.off('error', onOutputError);
  }
}

interface ParsedCommand {
  script: string;
  request: CgiHostRequest;
  options: CgiHostOptions;
  bodyOnly: boolean;
}

async function runAndPrint(command: ParsedCommand, io: CgiCommandIo, signal: AbortSignal): Promise<number> {
  const response = await spawnCgi(command.script, command.request, {
    ...command.options,
    signal,
    onStderr: (text) => io.stderr.write(text),
  });
  if (!response.nph && !command.bodyOnly) {
    let head = `HTTP/1.1 ${response.status} ${response.reason}\r\n`;
    for (const [name, value] of response.headers) head += `${name}: ${value}\r\n`;
    // Header values are byte strings (one char per byte): latin-1 gives the script's bytes back.
    await write(io.stdout, Buffer.from(`${head}\r\n`, 'latin1'));
  }
  let complete = response.error === undefined;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (!(await write(io.stdout, chunk))) {
        response.body.destroy();
        complete = false;
        break;
      }
    }
  } catch {
    // The host already logged why the body broke off (onStderr).
    complete = false;
  }
  await response.done;
  return complete ? 0 : 1;
}

/** Writes with backpressure; resolves false when the destination closed or failed (e.g. EPIPE from `| head`). */
function write(stream: Writable, chunk: Buffer): Promise<boolean> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve(false);
  if (stream.write(chunk)) return Promise.resolve(true);
  return waitForDrain(stream);
}

async function parseCommand(args: string[], io: CgiCommandIo): Promise<ParsedCommand | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      tokens: true,
      options: CGI_OPTIONS,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals, tokens } = parsed;
  if (values.help) return 'help';
  if (values.include && values['body-only']) throw new UsageError('--include and --body-only exclude each other');

  const [script, ...rest] = positionals;
  if (script === undefined) throw new UsageError('expected a SCRIPT');
  let method: string | undefined;
  let url: string | undefined;
  for (const item of rest) {
    if (item.startsWith('/') || item.startsWith('?')) {
      if (url !== undefined) throw new UsageError(`more than one URL (${item})`);
      url = item;
    } else if (/^[A-Za-z][A-Za-z0-9_-]*$/.test(item) && method === undefined && url === undefined) {
      method = item;
    } else {
      throw new UsageError(`expected METHOD then a URL starting with "/" or "?" (${item})`);
    }
  }

  const headers: Array<[string, string]> = [];
  for (const line of values.header ?? []) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new UsageError(`header must read 'Name: value' (${line})`);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }

  // Body parts in command-line order, joined with "&" as curl does.
  const parts: Buffer[] = [];
  let formData = false;
  for (const token of tokens) {
    if (token.kind !== 'option' || (token.name !== 'data' && token.name !== 'data-binary')) continue;
    const value = token.value ?? '';
    const binary = token.name === 'data-binary';
    formData ||= !binary;
    let part = value.startsWith('@') ? await readDataFile(value.slice(1), io) : Buffer.from(value, 'utf8');
    if (!binary && value.startsWith('@')) part = Buffer.from(part.toString('latin1').replace(/[\r\n]/g, ''), 'latin1');
    parts.push(part);
  }
  const fields: FormField[] = [];
  for (const spec of values.form ?? []) {
    try {
      fields.push(parseFormField(spec));
    } catch (error) {
      if (error instanceof FormFieldError) throw new UsageError(error.message);
      throw error;
    }
  }
  if (fields.length > 0 && parts.length > 0) throw new UsageError('-F builds the body: it excludes -d/--data/--data-binary');
  let body: Buffer | undefined;
  if (fields.length > 0) {
    const form = await buildMultipartBody(fields, (path) => readDataFile(path, io, '-F'));
    body = form.body;
    const given = headers.findIndex(([name]) => name.toLowerCase() === 'content-type');
    if (given < 0) headers.push(['Content-Type', form.contentType]);
    // A type given with -H (multipart/mixed...) keeps it, with the boundary the body was built with.
    else if (!/;\s*boundary=/i.test((headers[given] as [string, string])[1])) (headers[given] as [string, string])[1] += `; boundary=${form.boundary}`;
  } else if (parts.length > 0) {
    body = Buffer.concat(parts.flatMap((part, index) => (index === 0 ? [part] : [Buffer.from('&'), part])));
    if (formData && !headers.some(([name]) => name.toLowerCase() === 'content-type')) {
      headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    }
  }

  const options: CgiHostOptions = {};
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(values.timeout) || seconds <= 0) {
      throw new UsageError(`--timeout must be a positive number of seconds (${values.timeout})`);
    }
    options.timeoutMs = Math.round(seconds * 1000);
  }
  if (values.env !== undefined) {
    const extraEnv: Record<string, string> = {};
    for (const item of values.env) {
      const equals = item.indexOf('=');
      if (equals <= 0) throw new UsageError(`--env must read NAME=VALUE (${item})`);
      extraEnv[item.slice(0, equals)] = item.slice(equals + 1);
    }
    options.extraEnv = extraEnv;
  }
  if (values['script-name'] !== undefined) options.scriptName = values['script-name'];
  if (values['pass-authorization']) options.passAuthorization = true;

  const request: CgiHostRequest = { method: method ?? (body === undefined ? 'GET' : 'POST'), headers };
  if (url !== undefined) request.url = url;
  if (body !== undefined) request.body = body;
  return { script, request, options, bodyOnly: values['body-only'] ?? false };
}

async function readDataFile(path: string, io: CgiCommandIo, flag = '--data'): Promise<Buffer> {
  if (path === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin ?? process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }
  try {
    return await readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read the ${flag} file (${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
