/**
 * `tsgi ping`: one request to a backend in its own protocol (FastCGI, SCGI, uwsgi or HTTP), exit 0 when it
 * answers 2xx in time, 1 otherwise with the reason: the health check for Docker HEALTHCHECK, Kubernetes exec
 * probes and monitoring scripts that a FastCGI backend otherwise needs `cgi-fcgi` and a shell script for.
 */
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { RecordType, Role } from '../protocol/fastcgi/constants.js';
import { encodeNameValuePairs } from '../protocol/fastcgi/name-value.js';
import { decodeEndRequest, protocolStatusName } from '../protocol/fastcgi/record-bodies.js';
import { RecordDecoder } from '../protocol/fastcgi/record-decoder.js';
import { encodeBeginRequest, encodeRecord, encodeStreamRecords } from '../protocol/fastcgi/record-encoder.js';
import { encodeScgiRequest } from '../protocol/scgi/netstring.js';
import { encodeUwsgiPacket } from '../protocol/uwsgi/packet.js';
import { parseCgiHead } from '../response/cgi-head-parse.js';
import { parseListenTarget, type ListenTarget } from '../servers/listen.js';
import { readVersion } from '../version.js';

export const PING_USAGE = `usage: tsgi ping (--fastcgi | --scgi | --uwsgi | --http) ADDR [options]

Sends one GET request to a backend in its own protocol and exits 0 when the answer is 2xx within the
timeout, 1 otherwise (the reason on stderr), 2 for bad options. ADDR is HOST:PORT, :PORT, [V6]:PORT or
unix:PATH.

Options:
  --fastcgi ADDR          a FastCGI responder (tsgi serve --fastcgi, PHP-FPM, any other)
  --scgi ADDR             an SCGI server
  --uwsgi ADDR            a uwsgi-protocol server
  --http ADDR             an HTTP/1.1 server
  --path PATH             the path to ask for (default /ping: see tsgi serve --ping-path); may carry ?query
  --host NAME             the Host (HTTP_HOST, SERVER_NAME) sent (default localhost)
  --timeout S             seconds for the whole exchange, connecting included (default 5)
  -q, --quiet             print nothing on success
  -h, --help              this help

Examples:
  tsgi ping --fastcgi 127.0.0.1:9000
  tsgi ping --fastcgi unix:/run/app.sock --path /status
  HEALTHCHECK CMD ["npx", "tsgi", "ping", "--fastcgi", "127.0.0.1:9000"]
`;

type Protocol = 'fastcgi' | 'scgi' | 'uwsgi' | 'http';
const PROTOCOLS: readonly Protocol[] = ['fastcgi', 'scgi', 'uwsgi', 'http'];
const DEFAULT_TIMEOUT_SECONDS = 5;
/** Most response bytes kept: a ping needs the head, never a whole page. */
const MAX_KEPT_BYTES = 64 * 1024;

/** What one ping found out. */
export interface PingResult {
  ok: boolean;
  /** The status, 0 when no answer was understood. */
  status: number;
  /** One line: the answer or what went wrong. */
  message: string;
  ms: number;
}

/** What to ping. */
export interface PingOptions {
  protocol: Protocol;
  /** Where the backend listens (an fd: target is refused: there is nothing to connect to). */
  target: ListenTarget;
  path: string;
  host: string;
  timeoutMs: number;
}

interface PingIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Runs `tsgi ping ARGS`; resolves with the exit status. */
export async function runPingCommand(args: string[], io: PingIo = process): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        fastcgi: { type: 'string' },
        scgi: { type: 'string' },
        uwsgi: { type: 'string' },
        http: { type: 'string' },
        path: { type: 'string' },
        host: { type: 'string' },
        timeout: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
    }).values;
  } catch (error) {
    io.stderr.write(`tsgi ping: ${(error as Error).message}\n${PING_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(PING_USAGE);
    return 0;
  }
  const chosen = PROTOCOLS.filter((name) => values[name] !== undefined);
  if (chosen.length !== 1) {
    io.stderr.write(`tsgi ping: give exactly one of --fastcgi, --scgi, --uwsgi, --http (ADDR)\n`);
    return 2;
  }
  const protocol = chosen[0] as Protocol;
  let target: ListenTarget;
  try {
    target = parseListenTarget(values[protocol] as string);
  } catch (error) {
    io.stderr.write(`tsgi ping: ${(error as Error).message.replace(/^tsgi: /, '')}\n`);
    return 2;
  }
  if (target.kind === 'fd') {
    io.stderr.write('tsgi ping: fd: is a listening address, not one to connect to\n');
    return 2;
  }
  const path = (values.path as string | undefined) ?? '/ping';
  if (!path.startsWith('/') || /[\s\x00-\x1f\x7f]/.test(path)) {
    io.stderr.write(`tsgi ping: --path must start with "/" and hold no spaces or control characters (${JSON.stringify(path)})\n`);
    return 2;
  }
  const host = (values.host as string | undefined) ?? 'localhost';
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(host)) {
    io.stderr.write(`tsgi ping: bad --host (${JSON.stringify(host)})\n`);
    return 2;
  }
  const timeoutText = (values.timeout as string | undefined) ?? String(DEFAULT_TIMEOUT_SECONDS);
  const seconds = /^\d+(\.\d+)?$/.test(timeoutText) ? Number(timeoutText) : Number.NaN;
  if (!(seconds > 0) || seconds > 3600) {
    io.stderr.write(`tsgi ping: --timeout must be seconds above 0, at most 3600 (${JSON.stringify(timeoutText)})\n`);
    return 2;
  }
  const result = await ping({ protocol, target, path, host, timeoutMs: Math.round(seconds * 1000) });
  const where = `${path} on ${protocol} ${values[protocol] as string}`;
  if (result.ok) {
    if (!values.quiet) io.stdout.write(`tsgi ping: ${result.message} for ${where} in ${result.ms} ms\n`);
    return 0;
  }
  io.stderr.write(`tsgi ping: ${where}: ${result.message}\n`);
  return 1;
}

/** Sends one GET to the backend and reports the answer; never throws. */
export async function ping(options: PingOptions): Promise<PingResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  try {
    const answer = options.protocol === 'http' ? await pingHttp(options) : await pingGateway(options);
    const ok = answer.status >= 200 && answer.status < 300;
    const hint = answer.status === 404 && options.path === '/ping' ? ' (is the backend started with --ping-path /ping?)' : '';
    return { ok, status: answer.status, message: `answered ${answer.status}${answer.reason ? ` ${answer.reason}` : ''}${hint}`, ms: elapsed() };
  } catch (error) {
    return { ok: false, status: 0, message: (error as Error).message, ms: elapsed() };
  }
}

/** The CGI variables of the ping request, as a web server would send them. */
function variablesOf(options: PingOptions): Array<[string, string]> {
  const question = options.path.indexOf('?');
  const pathInfo = question < 0 ? options.path : options.path.slice(0, question);
  const port = options.target.kind === 'tcp' ? String(options.target.port) : '80';
  return [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', `tsgi-ping/${readVersion()}`],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['REQUEST_METHOD', 'GET'],
    ['REQUEST_URI', options.path],
    ['SCRIPT_NAME', ''],
    ['PATH_INFO', decodeURIComponentSafe(pathInfo)],
    ['QUERY_STRING', question < 0 ? '' : options.path.slice(question + 1)],
    ['SERVER_NAME', options.host.replace(/:\d+$/, '')],
    ['SERVER_PORT', port],
    ['REMOTE_ADDR', '127.0.0.1'],
    ['HTTP_HOST', options.host],
    ['HTTP_USER_AGENT', `tsgi-ping/${readVersion()}`],
  ];
}

function decodeURIComponentSafe(path: string): string {
  try {
    return Buffer.from(decodeURIComponent(path), 'utf8').toString('latin1');
  } catch {
    return path;
  }
}

/** FastCGI, SCGI or uwsgi: one connection, one request, the CGI head of the answer. */
async function pingGateway(options: PingOptions): Promise<{ status: number; reason: string }> {
  const variables = variablesOf(options);
  let request: Buffer;
  if (options.protocol === 'fastcgi') {
    request = Buffer.concat([
      encodeBeginRequest(1, Role.RESPONDER, 0),
      encodeStreamRecords(RecordType.PARAMS, 1, encodeNameValuePairs(variables)),
      encodeRecord(RecordType.PARAMS, 1),
      encodeRecord(RecordType.STDIN, 1),
    ]);
  } else if (options.protocol === 'scgi') {
    request = encodeScgiRequest(variables);
  } else {
    request = encodeUwsgiPacket([['CONTENT_LENGTH', '0'], ...variables]);
  }
  const output = await exchange(options, request);
  if (output.length === 0) throw new Error('the backend closed the connection without an answer');
  // SCGI and uwsgi servers answer with a CGI head or an HTTP status line; FastCGI with a CGI head.
  const nph = output.subarray(0, 5).toString('latin1') === 'HTTP/';
  let head;
  try {
    head = parseCgiHead(output, { nph });
  } catch (error) {
    throw new Error(`the answer is not a response head (${(error as Error).message})`);
  }
  return { status: head.status, reason: head.reason };
}

/**
 * Writes `request`, collects what comes back until the backend closes (or, for FastCGI, sends END_REQUEST);
 * rejects with a one-line reason on a connection error or the timeout.
 */
function exchange(options: PingOptions, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const target = options.target;
    const socket: Socket = target.kind === 'unix' ? connect(target.path) : connect(target.kind === 'tcp' ? target.port : 0, target.kind === 'tcp' ? target.host : '');
    const chunks: Buffer[] = [];
    let kept = 0;
    let settled = false;
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    const keep = (bytes: Uint8Array): void => {
      if (kept >= MAX_KEPT_BYTES) return;
      const part = Buffer.from(bytes.subarray(0, MAX_KEPT_BYTES - kept));
      chunks.push(part);
      kept += part.length;
    };
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${options.timeoutMs / 1000} s`)), options.timeoutMs);
    let decoder: RecordDecoder | null = null;
    if (options.protocol === 'fastcgi') {
      decoder = RecordDecoder.withFields((type, requestId, content) => {
        if (requestId !== 1) return;
        if (type === RecordType.STDOUT) keep(content);
        else if (type === RecordType.END_REQUEST) {
          // A malformed body throws a ProtocolError: reported as "not a FastCGI answer" below.
          const { protocolStatus } = decodeEndRequest(content);
          if (protocolStatus !== 0) finish(new Error(`the backend refused the request (FastCGI protocol status ${protocolStatus}: ${protocolStatusName(protocolStatus)})`));
          else finish(null);
        }
      });
    }
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      if (decoder === null) keep(chunk);
      else {
        try {
          decoder.push(chunk);
        } catch (error) {
          finish(new Error(`not a FastCGI answer (${(error as Error).message})`));
        }
      }
    });
    socket.on('end', () => {
      if (decoder !== null) finish(new Error('the backend closed the connection before END_REQUEST'));
      else finish(null);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(new Error(connectionProblem(error, options))));
  });
}

function connectionProblem(error: NodeJS.ErrnoException, options: PingOptions): string {
  const target = options.target;
  const where = target.kind === 'unix' ? target.path : target.kind === 'tcp' ? `${target.host}:${target.port}` : `fd:${target.fd}`;
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused: nothing listens on ${where}`;
    case 'ENOENT':
      return `no socket at ${where}`;
    case 'EACCES':
      return `permission denied on ${where}`;
    case 'ECONNRESET':
      return 'the backend reset the connection';
    default:
      return `${error.code ?? 'error'}: ${error.message}`;
  }
}

/** HTTP: one GET with Connection: close. */
function pingHttp(options: PingOptions): Promise<{ status: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const target = options.target;
    const req = httpRequest({
      ...(target.kind === 'unix' ? { socketPath: target.path } : target.kind === 'tcp' ? { host: target.host, port: target.port } : {}),
      method: 'GET',
      path: options.path,
      headers: { Host: options.host, Connection: 'close', 'User-Agent': `tsgi-ping/${readVersion()}` },
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(new Error(`no complete answer within ${options.timeoutMs / 1000} s`)), options.timeoutMs);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '' });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(error.code ? connectionProblem(error, options) : error.message));
    });
    req.end();
  });
}
