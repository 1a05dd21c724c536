import { describeError } from '../errors.js';
import { getStatusText } from '../helpers/status-text.js';
import type { App, Body, Chunk, Environ, Header, Middleware, StartResponse, Write } from '../types.js';
import { carriesBytes } from '../response/run-app.js';

/** Options for `errorHandler`. */
export interface ErrorHandlerOptions {
  /**
   * Show the error's stack on the page. For development only: the default (false) never sends details to the
   * client; they only go to `tsgi.errors`.
   */
  expose?: boolean;
  /**
   * The page's format: "text" (text/plain), "html" (text/html), or "auto" (the default): HTML when the request's
   * Accept header names text/html, plain text otherwise.
   */
  format?: 'text' | 'html' | 'auto';
  /** Where the log lines go instead of `environ['tsgi.errors']`. */
  log?: (text: string, environ: Environ) => void;
}

type ChunkIterator = Iterator<Chunk> | AsyncIterator<Chunk>;

/**
 * Returns a middleware that turns an exception into an error page, as long as the response head was not sent.
 *
 * - An exception thrown by the app, by its promise, or by its body's iteration before the head was sent
 *   (before the first non-empty chunk left the body or went through `write`) calls
 *   `startResponse(status, headers, error)` (the error as excInfo, so the server replaces any head the app
 *   had set) and answers with a short generic page. The status is the error's own `status` when it is an
 *   integer in 400..599 (RequestError and friends), 500 otherwise. The page says only the status, unless
 *   `expose` is set.
 * - The full description (stack and causes) goes to `environ['tsgi.errors']` (or `options.log`); errors below
 *   500 are logged on one line.
 * - After the head was sent, and whenever the client went away (`tsgi.signal` aborted), the error is logged
 *   and re-thrown: the server must cut the connection.
 * - The app's body `close()` is called exactly once: by the wrapper's own `close()` (which the server calls),
 *   or as soon as the body failed and is replaced by the error page.
 * - A HEAD request gets the page's headers with an empty body.
 */
export function errorHandler(options: ErrorHandlerOptions = {}): Middleware {
  return (app: App): App =>
    async function handleErrors(environ: Environ, startResponse: StartResponse): Promise<Body> {
      const state = { sent: false };
      const trackingStartResponse: StartResponse = (...args) => trackWrite(startResponse(...args), state);
      let body: Body;
      try {
        body = await app(environ, trackingStartResponse);
      } catch (error) {
        return answerError(error, environ, startResponse, state, options);
      }
      return wrapBody(body, environ, startResponse, state, options);
    };
}

function trackWrite(write: Write, state: { sent: boolean }): Write {
  return (chunk: Chunk) => {
    if (chunk.length > 0) state.sent = true;
    return write(chunk);
  };
}

function answerError(
  error: unknown,
  environ: Environ,
  startResponse: StartResponse,
  state: { sent: boolean },
  options: ErrorHandlerOptions,
): Chunk[] {
  const signal = environ['tsgi.signal'] as AbortSignal | undefined;
  if (state.sent || signal?.aborted === true) {
    const why = state.sent ? 'failed after the response head was sent' : 'failed after the client went away';
    logError(environ, options, `tsgi.error-handler: app ${why}: ${describeError(error)}\n`);
    throw error;
  }
  const status = statusOf(error);
  logError(
    environ,
    options,
    status >= 500
      ? `tsgi.error-handler: app failed (${status}): ${describeError(error)}\n`
      : `tsgi.error-handler: request refused (${status}): ${error instanceof Error ? error.message : String(error)}\n`,
  );
  const { headers, page } = buildPage(status, error, environ, options);
  // The excInfo argument lets the server replace a head the app had already set (types.ts, StartResponse).
  startResponse(`${status} ${getStatusText(status, 'Error')}`, headers, error);
  return environ.REQUEST_METHOD === 'HEAD' ? [] : [page];
}

function wrapBody(
  body: Body,
  environ: Environ,
  startResponse: StartResponse,
  state: { sent: boolean },
  options: ErrorHandlerOptions,
): Body {
  // An array cannot fail while it is iterated; passing it through keeps the server's Content-Length shortcut.
  if (body === null || body === undefined || typeof body !== 'object' || Array.isArray(body)) return body;
  const isAsync = typeof (body as AsyncIterable<Chunk>)[Symbol.asyncIterator] === 'function';
  if (!isAsync && typeof (body as Iterable<Chunk>)[Symbol.iterator] !== 'function') return body;
  let closed = false;
  const closeInner = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (typeof body.close === 'function') await body.close();
  };

  async function* guard(): AsyncGenerator<Chunk, void, undefined> {
    let iterator: ChunkIterator | undefined;
    let finished = false;
    try {
      iterator = isAsync
        ? (body as AsyncIterable<Chunk>)[Symbol.asyncIterator]()
        : (body as Iterable<Chunk>)[Symbol.iterator]();
      for (;;) {
        const step = await iterator.next();
        if (step.done === true) {
          finished = true;
          return;
        }
        const chunk = step.value;
        if (carriesBytes(chunk)) state.sent = true;
        yield chunk;
      }
    } catch (error) {
      finished = true;
      const pageComing = !state.sent && (environ['tsgi.signal'] as AbortSignal | undefined)?.aborted !== true;
      // The failed body is done for: close it now, since the server will only close the wrapper (which
      // then finds it closed). When no page is coming the error propagates and the server's close() does it.
      if (pageComing) {
        try {
          await closeInner();
        } catch (closeError) {
          logError(environ, options, `tsgi.error-handler: body.close() failed: ${describeError(closeError)}\n`);
        }
      }
      // Re-throws when the head was already sent or the client is gone.
      yield* answerError(error, environ, startResponse, state, options);
    } finally {
      // The server stopped early (client gone, Content-Length reached): let a generator body run its finally.
      if (!finished && iterator?.return) await iterator.return();
    }
  }

  const guarded = guard();
  return {
    [Symbol.asyncIterator]: () => guarded,
    close: async () => {
      try {
        await closeInner();
      } finally {
        // Not awaited: a next() still pending inside the app would otherwise hold close() hostage.
        guarded.return(undefined).catch((error: unknown) => {
          logError(environ, options, `tsgi.error-handler: ending the body failed: ${describeError(error)}\n`);
        });
      }
    },
  };
}

function statusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
}

function buildPage(
  status: number,
  error: unknown,
  environ: Environ,
  options: ErrorHandlerOptions,
): { headers: Header[]; page: Uint8Array } {
  const reason = getStatusText(status, 'Error');
  const details = options.expose === true ? describeError(error) : '';
  const accept = typeof environ.HTTP_ACCEPT === 'string' ? environ.HTTP_ACCEPT : '';
  const html = options.format === 'html' || ((options.format ?? 'auto') === 'auto' && accept.includes('text/html'));
  const text = html
    ? `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${status} ${escapeHtml(reason)}</title></head>` +
      `<body><h1>${status} ${escapeHtml(reason)}</h1>${details ? `<pre>${escapeHtml(details)}</pre>` : ''}</body></html>\n`
    : `${status} ${reason}\n${details ? `\n${details}\n` : ''}`;
  const page = Buffer.from(text, 'utf8');
  return {
    headers: [
      ['Content-Type', html ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8'],
      ['Content-Length', String(page.length)],
    ],
    page,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function logError(environ: Environ, options: ErrorHandlerOptions, text: string): void {
  if (options.log) {
    options.log(text, environ);
    return;
  }
  const errors = environ['tsgi.errors'] as { write?: unknown } | undefined;
  if (errors && typeof errors.write === 'function') (errors.write as (text: string) => void).call(errors, text);
  else process.stderr.write(text);
}
