import { AbortError, AppError, describeError, statusOfError } from '../errors.js';
import { STATUS_TEXT } from '../helpers/status-text.js';
import type { App, Body, Chunk, Environ, Header, StartResponse, Write } from '../types.js';
import { checkHeaders, findHeader, isBodylessStatus, parseStatus } from './status.js';

/**
 * What a transport supplies to `runApp`: where the head and the body bytes go. Each method may return a
 * promise; `runApp` waits for it before producing more (backpressure).
 */
export interface ResponseSink {
  /** Sends the status and headers. Called exactly once, before any body byte. */
  sendHead(code: number, reason: string, headers: Header[]): void | Promise<void>;
  /** Sends body bytes (never empty). */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Ends a response that completed. */
  end(): void | Promise<void>;
  /** Ends a response that failed after its head was sent: the transport must signal the failure (cut it). */
  abort(error: unknown): void | Promise<void>;
}

/** How one run ended. */
export interface RunResult {
  /** The status sent, or 0 when nothing was sent (client gone before the head). */
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** True when the response completed as the app meant it to. */
  ok: boolean;
  /** True when the head went out but the body could not be completed (the transport was told to abort). */
  failedAfterHead: boolean;
  /** True when the client went away. */
  aborted: boolean;
  /** The error that ended the run, if any. */
  error?: unknown;
}

/** Options for `runApp`. */
export interface RunOptions {
  /** Skip the body (HEAD). Default: REQUEST_METHOD === "HEAD". */
  head?: boolean;
  /**
   * Tells whether the client went away, and why. Default: `environ['tsgi.signal']`. A transport that creates
   * the signal only when the app asks for it passes its own flag here, so runApp never forces it into being.
   */
  abortReason?: () => Error | null;
}

const encoder = new TextEncoder();

/** Converts a body chunk to bytes (strings are UTF-8). Throws AppError for anything else. */
export function chunkToBytes(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return chunk.length === 0 ? new Uint8Array(0) : Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return chunk;
  throw new AppError(`response: body chunks must be Uint8Array or string (${Object.prototype.toString.call(chunk)})`);
}

/**
 * Runs one request through an app and sends the response to `sink`: the state machine every transport shares.
 * - startResponse records status and headers; they go out with the first non-empty chunk, or at the end.
 * - An error before the head is sent becomes a plain error page (500, or the error's 4xx status), the details
 *   go to `tsgi.errors`; after the head, it is logged and the sink is told to abort.
 * - The body's `close()` runs exactly once, however the run ends.
 * - A declared Content-Length is enforced: extra bytes are dropped (logged), missing bytes fail the response.
 * - A body given as an array with no Content-Length gets one computed; so does an empty body.
 * - HEAD: the body is not iterated (headers are computed the same way).
 * Never throws; the result says how the run ended.
 */
export async function runApp(app: App, environ: Environ, sink: ResponseSink, options: RunOptions = {}): Promise<RunResult> {
  const isHead = options.head ?? environ.REQUEST_METHOD === 'HEAD';
  const errors = environ['tsgi.errors'];
  const abortReason =
    options.abortReason ??
    ((): Error | null => {
      const signal = environ['tsgi.signal'];
      if (!signal.aborted) return null;
      return signal.reason instanceof Error ? signal.reason : new AbortError();
    });
  let pending: { code: number; reason: string; headers: Header[] } | null = null;
  let headSent = false;
  let declaredLength: number | null = null;
  let bytes = 0;
  let overflowLogged = false;

  async function sendHead(): Promise<void> {
    if (headSent) return;
    if (!pending) throw new AppError('response: body produced before startResponse was called');
    headSent = true;
    const length = findHeader(pending.headers, 'content-length');
    declaredLength = length !== undefined && /^[0-9]+$/.test(length) ? Number(length) : null;
    await sink.sendHead(pending.code, pending.reason, pending.headers);
  }

  async function sendBytes(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    await sendHead();
    if (isHead || (pending && isBodylessStatus(pending.code))) return;
    const gone = abortReason();
    if (gone) throw gone;
    let part = chunk;
    if (declaredLength !== null && bytes + part.length > declaredLength) {
      part = part.subarray(0, declaredLength - bytes);
      if (!overflowLogged) {
        overflowLogged = true;
        errors.write(`tsgi: app sent more than its Content-Length (${declaredLength}); the rest was dropped\n`);
      }
      if (part.length === 0) return;
    }
    bytes += part.length;
    await sink.write(part);
  }

  const write: Write = async (chunk: Chunk) => {
    if (!pending) throw new AppError('response: write() called before startResponse');
    await sendBytes(chunkToBytes(chunk));
  };

  const startResponse: StartResponse = (status, headers, excInfo) => {
    if (excInfo !== undefined && excInfo !== null) {
      if (headSent) throw excInfo;
    } else if (pending) {
      throw new AppError('response: startResponse called twice without excInfo');
    }
    const { code, reason } = parseStatus(status);
    pending = { code, reason: reason || (STATUS_TEXT[code] ?? ''), headers: [...checkHeaders(headers)] };
    return write;
  };

  let body: Body | undefined;
  let closed = false;
  async function closeBody(): Promise<void> {
    if (closed || !body || typeof body.close !== 'function') return;
    closed = true;
    try {
      await body.close();
    } catch (error) {
      errors.write(`tsgi: body.close() failed: ${describeError(error)}\n`);
    }
  }

  try {
    body = await app(environ, startResponse);
    if (body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      throw new AppError('response: an app must return an iterable of chunks, not a string, bytes or nothing');
    }
    const iterable = body as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
    if (typeof iterable[Symbol.asyncIterator] !== 'function' && typeof iterable[Symbol.iterator] !== 'function') {
      throw new AppError('response: an app must return a sync or async iterable');
    }
    if (Array.isArray(body) && pending !== null) addLengthOfArray(pending, body);
    if (!isHead) {
      for await (const chunk of body as AsyncIterable<Chunk>) {
        const gone = abortReason();
        if (gone) throw gone;
        const bytesOfChunk = chunkToBytes(chunk);
        if (bytesOfChunk.length > 0 && !pending) {
          throw new AppError('response: body produced before startResponse was called');
        }
        await sendBytes(bytesOfChunk);
      }
    }
    if (!pending) throw new AppError('response: the app returned without calling startResponse');
    if (!headSent && !isHead) addEmptyLength(pending);
    await sendHead();
    if (!isHead && declaredLength !== null && bytes < declaredLength && !isBodylessStatus((pending as { code: number }).code)) {
      throw new AppError(`response: app sent ${bytes} of its Content-Length (${declaredLength}) bytes`);
    }
    await closeBody();
    await sink.end();
    return { status: (pending as { code: number }).code, bytes, ok: true, failedAfterHead: false, aborted: false };
  } catch (error) {
    await closeBody();
    return fail(error);
  }

  async function fail(error: unknown): Promise<RunResult> {
    const aborted = abortReason() !== null;
    if (aborted) {
      const result = { status: headSent && pending ? pending.code : 0, bytes, ok: false, aborted: true, error };
      try {
        await sink.abort(error);
      } catch {
        // The client is gone; nothing left to tell it.
      }
      return { ...result, failedAfterHead: headSent };
    }
    errors.write(`tsgi: ${headSent ? 'app failed after the response head was sent' : 'app failed'}: ${describeError(error)}\n`);
    if (headSent) {
      try {
        await sink.abort(error);
      } catch {
        // Aborting is the last resort already.
      }
      return { status: pending?.code ?? 0, bytes, ok: false, failedAfterHead: true, aborted: false, error };
    }
    const code = statusOfError(error);
    try {
      await sendErrorPage(sink, code, isHead);
    } catch (sinkError) {
      errors.write(`tsgi: could not send the error page: ${describeError(sinkError)}\n`);
      return { status: 0, bytes: 0, ok: false, failedAfterHead: false, aborted: false, error };
    }
    return { status: code, bytes: 0, ok: false, failedAfterHead: false, aborted: false, error };
  }
}

/** Sends a minimal plain-text page for `code` ("500 Internal Server Error\n") and ends the response. */
export async function sendErrorPage(sink: ResponseSink, code: number, head = false): Promise<void> {
  const reason = STATUS_TEXT[code] ?? 'Error';
  const page = encoder.encode(`${code} ${reason}\n`);
  await sink.sendHead(code, reason, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(page.length)],
  ]);
  if (!head) await sink.write(page);
  await sink.end();
}

function addLengthOfArray(pending: { code: number; headers: Header[] }, body: readonly unknown[]): void {
  if (isBodylessStatus(pending.code) || findHeader(pending.headers, 'content-length') !== undefined) return;
  if (findHeader(pending.headers, 'transfer-encoding') !== undefined) return;
  let total = 0;
  for (const chunk of body) {
    if (typeof chunk === 'string') total += Buffer.byteLength(chunk, 'utf8');
    else if (chunk instanceof Uint8Array) total += chunk.length;
    else return;
  }
  pending.headers.push(['Content-Length', String(total)]);
}

function addEmptyLength(pending: { code: number; headers: Header[] }): void {
  if (isBodylessStatus(pending.code) || findHeader(pending.headers, 'content-length') !== undefined) return;
  if (findHeader(pending.headers, 'transfer-encoding') !== undefined) return;
  pending.headers.push(['Content-Length', '0']);
}
