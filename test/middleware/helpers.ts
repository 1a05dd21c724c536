/**
 * A tiny in-memory server for the middleware and helper tests: builds environs by hand and drives an app the way
 * types.ts says a server must (lazy head, excInfo replacement and re-throw, close() exactly once).
 */
import type { App, Body, Chunk, Environ, ErrorStream, Header, InputStream, StartResponse, Write } from '../../src/types.js';

/** An InputStream over fixed bytes, delivered in chunks of `chunkSize`. */
export function createTestInput(bytes: Uint8Array, chunkSize = 7): InputStream {
  let offset = 0;
  const take = (n: number): Uint8Array => {
    const part = bytes.subarray(offset, Math.min(bytes.length, offset + n));
    offset += part.length;
    return part;
  };
  return {
    async read(n?: number): Promise<Uint8Array> {
      return take(n ?? bytes.length - offset);
    },
    async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
      while (offset < bytes.length) yield take(chunkSize);
    },
  };
}

/** An ErrorStream that records what was written. */
export interface TestErrors extends ErrorStream {
  text: string;
}

/** Creates a recording error stream. */
export function createTestErrors(): TestErrors {
  const errors = {
    text: '',
    write(text: string): void {
      errors.text += text;
    },
    flush(): void {},
  };
  return errors;
}

/** Builds a conforming environ for `method path?query`; `extra` overrides or adds keys; `body` becomes tsgi.input. */
export function buildEnviron(
  target = '/',
  extra: Record<string, unknown> = {},
  body: Uint8Array | string = new Uint8Array(0),
): Environ & { 'tsgi.errors': TestErrors } {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const [path = '/', query = ''] = target.split('?', 2);
  const environ: Record<string, unknown> = {
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '',
    // The byte policy: percent-decode to bytes, one char per byte.
    PATH_INFO: Buffer.from(decodeURIComponent(path), 'utf8').toString('latin1'),
    QUERY_STRING: query,
    SERVER_NAME: 'localhost',
    SERVER_PORT: '8080',
    SERVER_PROTOCOL: 'HTTP/1.1',
    HTTP_HOST: 'localhost:8080',
    REMOTE_ADDR: '127.0.0.1',
    'tsgi.version': [1, 0] as const,
    'tsgi.url_scheme': 'http',
    'tsgi.input': createTestInput(bytes),
    'tsgi.input_terminated': false,
    'tsgi.errors': createTestErrors(),
    'tsgi.signal': new AbortController().signal,
    'tsgi.multithread': false,
    'tsgi.multiprocess': false,
    'tsgi.run_once': false,
  };
  if (bytes.length > 0) environ.CONTENT_LENGTH = String(bytes.length);
  Object.assign(environ, extra);
  return environ as Environ & { 'tsgi.errors': TestErrors };
}

/** What running an app produced. */
export interface RunResult {
  /** The status line that was (or would have been) sent, e.g. "200 OK". */
  status: string;
  headers: Header[];
  /** Every startResponse call, in order. */
  calls: Array<{ status: string; headers: Header[]; excInfo: unknown }>;
  /** Body bytes: written ones, then yielded ones. */
  body: Buffer;
  text: string;
  /** Non-empty chunks as received. */
  chunks: Chunk[];
  /** How often the server called body.close(). */
  closeCalls: number;
  /** Set when the app failed; the run still closes the body. */
  error?: unknown;
  /** The environ's error stream text. */
  errors: string;
}

/** Options for `runApp`. */
export interface RunOptions {
  /** Stop iterating after this many chunks (a client that went away). */
  stopAfter?: number;
}

/**
 * Runs `app` like a server: startResponse keeps the latest status and headers until the first non-empty
 * chunk; with excInfo after that it re-throws excInfo; a second call without excInfo throws. The body's close()
 * is called exactly once. An error from the app is captured in `error` instead of thrown.
 */
export async function runApp(app: App, environ: Environ = buildEnviron(), options: RunOptions = {}): Promise<RunResult> {
  // Captured first: middleware (the validator) may replace the environ's stream with a wrapper.
  const errorStream = ((environ as Partial<Environ> | undefined)?.['tsgi.errors'] ?? {}) as Partial<TestErrors>;
  const calls: RunResult['calls'] = [];
  const chunks: Chunk[] = [];
  const parts: Buffer[] = [];
  let headSent = false;
  let started = false;
  let closeCalls = 0;
  const send = (chunk: Chunk): void => {
    if (chunk.length === 0) return;
    if (!started) throw new Error('test server: body before startResponse');
    headSent = true;
    chunks.push(chunk);
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
  };
  const write: Write = async (chunk) => send(chunk);
  const startResponse: StartResponse = (status, headers, excInfo) => {
    if (excInfo !== undefined && excInfo !== null) {
      if (headSent) throw excInfo;
    } else if (started) {
      throw new Error('test server: startResponse called twice without excInfo');
    }
    started = true;
    calls.push({ status, headers: headers.map(([name, value]): Header => [name, value]), excInfo });
    return write;
  };
  let body: Body | undefined;
  let error: unknown;
  try {
    body = await app(environ, startResponse);
    let count = 0;
    if (typeof (body as AsyncIterable<Chunk>)[Symbol.asyncIterator] === 'function') {
      for await (const chunk of body as AsyncIterable<Chunk>) {
        send(chunk);
        if (options.stopAfter !== undefined && ++count >= options.stopAfter) break;
      }
    } else {
      for (const chunk of body as Iterable<Chunk>) {
        send(chunk);
        if (options.stopAfter !== undefined && ++count >= options.stopAfter) break;
      }
    }
  } catch (caught) {
    error = caught;
  } finally {
    if (body && typeof body.close === 'function') {
      closeCalls++;
      try {
        await body.close();
      } catch (caught) {
        error ??= caught;
      }
    }
  }
  const last = calls[calls.length - 1];
  const bytes = Buffer.concat(parts);
  return {
    status: last?.status ?? '',
    headers: last?.headers ?? [],
    calls,
    body: bytes,
    text: bytes.toString('utf8'),
    chunks,
    closeCalls,
    ...(error === undefined ? {} : { error }),
    errors: typeof errorStream.text === 'string' ? errorStream.text : '',
  };
}

/** The value of the first header named `name` (case-insensitive). */
export function headerOf(result: { headers: Header[] }, name: string): string | undefined {
  return result.headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

/** A body that counts its close() calls and records whether it was iterated past `failAt`. */
export function trackedBody(chunks: Chunk[], options: { failAt?: number; error?: unknown } = {}): Body & { closed: number } {
  const body = {
    closed: 0,
    *[Symbol.iterator](): Generator<Chunk> {
      for (const [index, chunk] of chunks.entries()) {
        if (index === options.failAt) throw options.error ?? new Error('boom');
        yield chunk;
      }
      if (options.failAt === chunks.length) throw options.error ?? new Error('boom');
    },
    close(): void {
      body.closed++;
    },
  };
  return body;
}
