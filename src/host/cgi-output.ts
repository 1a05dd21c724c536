/**
 * The output side of a CGI run: reading the response head from the script's stdout (bounded in time and size),
 * then handing the rest to a Readable that pulls from the script only as fast as it is consumed.
 */
import { Readable } from 'node:stream';
import { AbortError, ProtocolError, TsgiError } from '../errors.js';
import type { Header } from '../types.js';
import { getStatusText } from '../helpers/status-text.js';
import type { CgiHeadReader, CgiHeadResult } from '../response/cgi-head-parse.js';
import type { StderrLog } from './cgi-log.js';
import { delay, EXIT_GRACE_MS, type CgiChild, type CgiExit } from './cgi-process.js';

const BODY_HIGH_WATER_MARK_BYTES = 64 * 1024;

/** The head of a response, shared by the streaming and the collected forms. */
export interface CgiResponseHead {
  /** The status code (B12-B13: from Status, else 302 with a Location, else 200; or the code of `error`). */
  status: number;
  /** The reason phrase. */
  reason: string;
  /** Header fields in the script's order, without Status and hop-by-hop fields; Set-Cookie lines stay separate. */
  headers: Header[];
  /**
   * True when the output is NPH (§5.2): `status`, `reason` and `headers` come from its status line and head
   * (hop-by-hop fields kept), and `body` is the script's whole output, head included, unless the run was asked
   * to leave the head out (a server that frames the response itself).
   */
  nph: boolean;
  /**
   * Set for a local redirect response (§6.2.2: a `Location` holding an abs-path and no other field): that
   * path, query included. The response itself is a 302 to it; a server that owns the URL space (cgiBin)
   * may serve the script at that path instead.
   */
  localRedirect?: string;
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

export type HeadOutcome =
  | { kind: 'head'; result: CgiHeadResult }
  | { kind: 'defect'; error: TsgiError }
  | { kind: 'eof'; error: TsgiError }
  | { kind: 'timeout' }
  | { kind: 'abort' };

/** Reads stdout until the head is complete, it ends, the timeout passes or the client goes away. */
export function readHead(stdout: Readable, reader: CgiHeadReader, timeoutMs: number, signal: AbortSignal | undefined): Promise<HeadOutcome> {
  return new Promise((resolveHead) => {
    const finish = (outcome: HeadOutcome): void => {
      clearTimeout(timer);
      stdout.off('data', onData);
      stdout.off('end', onEnd);
      stdout.off('close', onEnd);
      signal?.removeEventListener('abort', onAbort);
      resolveHead(outcome);
    };
    const onData = (chunk: Buffer): void => {
      try {
        const result = reader.push(chunk);
        if (result === undefined) return;
        stdout.pause();
        finish({ kind: 'head', result });
      } catch (error) {
        finish({ kind: 'defect', error: toTsgiError(error) });
      }
    };
    const onEnd = (): void => {
      try {
        reader.end();
      } catch (error) {
        finish({ kind: 'eof', error: toTsgiError(error) });
      }
    };
    const onAbort = (): void => finish({ kind: 'abort' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    stdout.on('data', onData);
    stdout.once('end', onEnd);
    stdout.once('close', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How streamBody relays the body. */
export interface StreamBodyOptions {
  method: string;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** NPH: put the raw head in front of the body (a relay that sends the script's bytes as they are). */
  nphHeadInBody: boolean;
}

/** Hands the rest of stdout to a Readable that pulls from the script only as fast as it is consumed. */
export function streamBody({ head, headBytes, body: first }: CgiHeadResult, child: CgiChild, options: StreamBodyOptions, log: StderrLog): CgiStream {
  for (const warning of head.warnings) log.line(warning);
  const { timeoutMs, signal } = options;
  const stdout = child.stdout;
  const discard = options.method === 'HEAD';
  const declared = head.nph ? undefined : declaredLength(head.headers);
  let received = 0;
  let ended = false;
  let overflowLogged = false;
  // Runs only while the consumer waits for the script; a consumer that applies backpressure stops the clock.
  let idleTimer: NodeJS.Timeout | undefined;
  const disarmIdle = (): void => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
  };
  const armIdle = (): void => {
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
  const onIdle = (): void => {
    body.destroy(new TsgiError(`cgi-host: no body output within timeoutMs (${timeoutMs})`, { status: 504 }));
  };
  const onAbort = (): void => {
    body.destroy(new AbortError(undefined, signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  const relay = (chunk: Buffer): void => {
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

  if (head.nph && options.nphHeadInBody) body.push(headBytes);
  if (discard) {
    // B14: a HEAD response has no body, but the script may still write one; read and drop it.
    ended = true;
    body.push(null);
    signal?.removeEventListener('abort', onAbort);
    stdout.on('data', () => {});
    stdout.resume();
  } else {
    if (first.length > 0) relay(first);
    stdout.on('data', relay);
  }

  const finishBody = async (): Promise<void> => {
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
    ...(head.localRedirect ? { localRedirect: (head.headers[0] as Header)[1] } : {}),
    body,
    done: child.done,
  };
}

/**
 * Kills what is left of the script's process group when the script exited but something it started still holds
 * stdout, or stdout ended but the script doesn't exit, for longer than `timeoutMs`: `done` always settles.
 */
function guardLingering(child: CgiChild, stdout: Readable, timeoutMs: number): void {
  let exited = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
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
export function answerWithError(error: TsgiError, method: string, log: StderrLog, done?: Promise<CgiExit>): CgiStream {
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

/** Any error as a TsgiError (500 unless it has a status of its own). */
export function toTsgiError(error: unknown): TsgiError {
  if (error instanceof TsgiError) return error;
  return new TsgiError(`cgi-host: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
