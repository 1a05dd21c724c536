import { createEnviron } from '../environ/create-environ.js';
import { percentDecodeToByteString } from '../environ/byte-policy.js';
import { headersToVariables } from '../environ/header-variables.js';
import { refuseRequest, runApp, type ResponseSink, type RunResult } from '../response/run-app.js';
import type { App, Header } from '../types.js';

/** A request for the in-process test client. */
export interface TestRequest {
  method?: string;
  /** Path and query below the mount point, e.g. "/users/1?x=2". Default "/". */
  url?: string;
  headers?: Record<string, string | string[]> | Array<[string, string]>;
  body?: string | Uint8Array | AsyncIterable<Uint8Array>;
  /** Send the body without CONTENT_LENGTH, ended by its end (like a de-chunked upload). */
  chunked?: boolean;
  /** Extra CGI variables (REMOTE_USER, HTTPS...). */
  variables?: Record<string, string>;
  /** Aborts the request as if the client went away. */
  signal?: AbortSignal;
}

/** What the test client returns. */
export interface TestResponse {
  status: number;
  reason: string;
  headers: Header[];
  body: Buffer;
  /** What the app and the server wrote to tsgi.errors. */
  errors: string;
  /** How the run ended (ok, failedAfterHead, aborted...). */
  result: RunResult;
  /** The first value of a header (case-insensitive). */
  header(name: string): string | undefined;
  /** Every value of a header, in order. */
  headerAll(name: string): string[];
  text(): string;
  json(): unknown;
}

/** Options for testClient. */
export interface TestClientOptions {
  /** Where the app is mounted (SCRIPT_NAME). Default "". */
  scriptName?: string;
  serverName?: string;
  serverPort?: string;
  /** Pass Authorization as HTTP_AUTHORIZATION (a CGI host would not by default). Default true. */
  passAuthorization?: boolean;
}

/** An in-process client for a tsgi app. */
export interface TestClient {
  request(request?: TestRequest): Promise<TestResponse>;
  get(url: string, request?: Omit<TestRequest, 'url' | 'method'>): Promise<TestResponse>;
  post(url: string, body: TestRequest['body'], request?: Omit<TestRequest, 'url' | 'method' | 'body'>): Promise<TestResponse>;
}

/**
 * Creates a client that runs requests through `app` in this process, with no sockets: the environ comes from
 * the same translator every server uses, the response from the same runner. Responses are collected whole.
 */
export function testClient(app: App, options: TestClientOptions = {}): TestClient {
  const client: TestClient = {
    request: (request = {}) => runTestRequest(app, request, options),
    get: (url, request = {}) => runTestRequest(app, { ...request, url, method: 'GET' }, options),
    post: (url, body, request = {}) => runTestRequest(app, { ...request, url, body, method: 'POST' }, options),
  };
  return client;
}

async function runTestRequest(app: App, request: TestRequest, options: TestClientOptions): Promise<TestResponse> {
  const url = request.url ?? '/';
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : url.slice(queryAt + 1);
  const scriptName = options.scriptName ?? '';
  const headerPairs: Array<[string, string]> = [];
  if (Array.isArray(request.headers)) headerPairs.push(...request.headers);
  else if (request.headers) {
    for (const [name, value] of Object.entries(request.headers)) {
      for (const one of Array.isArray(value) ? value : [value]) headerPairs.push([name, one]);
    }
  }
  let input: AsyncIterable<Uint8Array> | null = null;
  let contentLength: string | undefined;
  const body = request.body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    input = (async function* () {
      if (bytes.length > 0) yield bytes;
    })();
    if (!request.chunked) contentLength = String(bytes.length);
  } else if (body) {
    input = body;
  }
  const variables: Record<string, string | undefined> = {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'tsgi-test-client',
    SERVER_NAME: options.serverName ?? 'localhost',
    SERVER_PORT: options.serverPort ?? '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: request.method ?? 'GET',
    SCRIPT_NAME: scriptName,
    PATH_INFO: percentDecodeToByteString(rawPath),
    QUERY_STRING: query,
    REQUEST_URI: scriptName + url,
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '50000',
    HTTP_HOST: options.serverName ?? 'localhost',
    ...headersToVariables(headerPairs, { passAuthorization: options.passAuthorization ?? true }),
    ...(contentLength !== undefined ? { CONTENT_LENGTH: contentLength } : {}),
    ...request.variables,
  };
  let errors = '';
  const errorStream = { write: (text: string) => void (errors += text) };
  const parts: Uint8Array[] = [];
  let status = 0;
  let reason = '';
  let headers: Header[] = [];
  const sink: ResponseSink = {
    sendHead: (code, text, list) => {
      status = code;
      reason = text;
      headers = list.map(([name, value]) => [name, value]);
    },
    write: (chunk) => void parts.push(Uint8Array.from(chunk)),
    end: () => undefined,
    abort: () => undefined,
  };
  let result: RunResult;
  try {
    const environ = createEnviron({
      variables,
      input,
      inputTerminated: request.chunked ?? false,
      errors: errorStream,
      ...(request.signal ? { signal: request.signal } : {}),
      multithread: false,
      multiprocess: false,
      runOnce: false,
    });
    result = await runApp(app, environ, sink);
  } catch (error) {
    errors += `${String(error)}\n`;
    result = await refuseRequest(sink, error, request.method === 'HEAD');
  }
  const bodyBytes = Buffer.concat(parts);
  return {
    status,
    reason,
    headers,
    body: bodyBytes,
    get errors() {
      return errors;
    },
    result,
    header: (name) => headers.find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1],
    headerAll: (name) => headers.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value),
    text: () => bodyBytes.toString('utf8'),
    json: () => JSON.parse(bodyBytes.toString('utf8')) as unknown,
  };
}
