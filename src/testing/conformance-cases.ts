import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

/** A request of the conformance suite, relative to where the conformance app is mounted. */
export interface ConformanceRequest {
  method: string;
  /** Path below the mount point plus query, e.g. "/env/a%20b?x=1". */
  path: string;
  headers?: Array<[string, string]>;
  body?: Uint8Array;
}

/** A response as any transport's client collects it. Header names in any case; order kept. */
export interface ConformanceResponse {
  status: number;
  headers: Array<[string, string]>;
  body: Uint8Array;
}

/** What a check may need to know about the transport under test. */
export interface ConformanceContext {
  /** The SCRIPT_NAME the app should see (the mount point: "" in process, "/cgi-bin/conformance.cgi" under CGI). */
  scriptName: string;
  /** A name for messages: "memory", "http", "cgi-apache"... */
  transport: string;
}

/** One case: a name, the request, and a check that throws (node:assert) when the response is wrong. */
export interface ConformanceCase {
  name: string;
  request: ConformanceRequest;
  check(response: ConformanceResponse, context: ConformanceContext): void;
}

/** A client that sends a conformance request through one transport. */
export type ConformanceClient = (request: ConformanceRequest) => Promise<ConformanceResponse>;

/** The first value of header `name`, case-insensitive. */
export function headerOf(response: ConformanceResponse, name: string): string | undefined {
  const lower = name.toLowerCase();
  return response.headers.find(([key]) => key.toLowerCase() === lower)?.[1];
}

/** Every value of header `name`, in order. */
export function headersOf(response: ConformanceResponse, name: string): string[] {
  const lower = name.toLowerCase();
  return response.headers.filter(([key]) => key.toLowerCase() === lower).map(([, value]) => value);
}

function text(response: ConformanceResponse): string {
  return Buffer.from(response.body).toString('utf8');
}

function environOf(response: ConformanceResponse): Record<string, unknown> {
  assert.equal(response.status, 200, `GET /env answered ${response.status}: ${text(response).slice(0, 200)}`);
  return JSON.parse(text(response)) as Record<string, unknown>;
}

/** Deterministic pseudo-random bytes (xorshift), so a binary body is the same in every run. */
export function patternBytes(length: number, seed = 0x2545f491): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const BIG_BODY = patternBytes(1024 * 1024 + 7);
const BIG_BODY_SHA = sha256(BIG_BODY);

/**
 * The shared conformance suite (the idea of Plack::Test::Suite): every transport runs these cases against
 * `conformanceApp`, in process and behind the real web servers.
 */
export const conformanceCases: ConformanceCase[] = [
  {
    name: 'GET returns the body and Content-Type',
    request: { method: 'GET', path: '/hello' },
    check(response) {
      assert.equal(response.status, 200);
      assert.match(headerOf(response, 'content-type') ?? '', /^text\/plain/);
      assert.equal(text(response), 'Hello, tsgi');
    },
  },
  {
    name: 'CGI variables: method, protocol, gateway, tsgi keys',
    request: { method: 'GET', path: '/env' },
    check(response) {
      const env = environOf(response);
      assert.equal(env.REQUEST_METHOD, 'GET');
      assert.match(String(env.SERVER_PROTOCOL), /^HTTP\/1\.[01]$/);
      assert.match(String(env.SERVER_PORT), /^[0-9]+$/);
      assert.equal(typeof env.SERVER_NAME, 'string');
      assert.deepEqual(env['tsgi.version'], [1, 0]);
      assert.equal(env['tsgi.url_scheme'], 'http');
      assert.equal(env.QUERY_STRING, '');
      // RFC 3875 §4.1.2 wants it unset without a body; lighttpd sends "0", which means the same (B3).
      assert.ok(env.CONTENT_LENGTH === undefined || env.CONTENT_LENGTH === '0', `no body -> CONTENT_LENGTH unset or 0 (${String(env.CONTENT_LENGTH)})`);
      assert.equal(env.HTTP_CONTENT_TYPE, undefined);
      assert.equal(env.HTTP_CONTENT_LENGTH, undefined);
    },
  },
  {
    name: 'SCRIPT_NAME is the mount point and PATH_INFO the rest',
    request: { method: 'GET', path: '/env/sub/path' },
    check(response, context) {
      const env = environOf(response);
      assert.equal(env.SCRIPT_NAME, context.scriptName);
      assert.equal(env.PATH_INFO, '/env/sub/path');
    },
  },
  {
    name: '% escapes in PATH_INFO are decoded',
    request: { method: 'GET', path: '/env/a%20b' },
    check(response) {
      assert.equal(environOf(response).PATH_INFO, '/env/a b');
    },
  },
  {
    name: 'UTF-8 in PATH_INFO arrives as one char per byte (latin-1 policy)',
    request: { method: 'GET', path: '/env/caf%C3%A9' },
    check(response) {
      assert.equal(environOf(response).PATH_INFO, '/env/caf\u00c3\u00a9');
    },
  },
  {
    name: 'QUERY_STRING is passed raw',
    request: { method: 'GET', path: '/env?x=1%2B2&y=%C3%A9&z=a+b' },
    check(response) {
      assert.equal(environOf(response).QUERY_STRING, 'x=1%2B2&y=%C3%A9&z=a+b');
    },
  },
  {
    name: 'request headers become HTTP_* variables',
    request: { method: 'GET', path: '/env', headers: [['X-Custom-Thing', 'one two']] },
    check(response) {
      assert.equal(environOf(response).HTTP_X_CUSTOM_THING, 'one two');
    },
  },
  {
    // Every transport must give the app the same environ (environ/variables.ts addVariable). nginx 1.22 passes
    // a repeated header to FastCGI, SCGI and uwsgi as repeated variables, which tsgi joins; lighttpd joins them
    // itself, Cookie with "; "; tsgi's HTTP server joins them. Apache 2.4 joins every repeated request header
    // with ", " in its core (apr_table_compress with APR_OVERLAP_TABLES_MERGE, before any handler), Cookie
    // included, so behind Apache (mod_cgi, mod_cgid, mod_proxy_fcgi, mod_fcgid, mod_proxy_scgi,
    // mod_proxy_uwsgi) the variable arrives as one "a=1, b=2": nothing tells tsgi it was two fields, and
    // rewriting ", " to "; " could corrupt a cookie value, so the check accepts that there (transport names
    // with "Apache"). A client that sends this case must send four header lines.
    name: 'repeated-header: two X-Dup and two Cookie fields reach the app as "one, two" and "a=1; b=2"',
    request: {
      method: 'GET',
      path: '/env',
      headers: [
        ['X-Dup', 'one'],
        ['Cookie', 'a=1'],
        ['X-Dup', 'two'],
        ['Cookie', 'b=2'],
      ],
    },
    check(response, context) {
      const env = environOf(response);
      assert.equal(env.HTTP_X_DUP, 'one, two');
      assert.equal(env.HTTP_COOKIE, /\bApache\b/.test(context.transport) ? 'a=1, b=2' : 'a=1; b=2');
    },
  },
  {
    name: 'httpoxy: a Proxy header never becomes HTTP_PROXY',
    request: { method: 'GET', path: '/env', headers: [['Proxy', 'http://evil.test:8080']] },
    check(response) {
      assert.equal(environOf(response).HTTP_PROXY, undefined);
    },
  },
  {
    name: 'POST: CONTENT_TYPE and CONTENT_LENGTH are set',
    request: {
      method: 'POST',
      path: '/env',
      headers: [['Content-Type', 'application/x-www-form-urlencoded']],
      body: Buffer.from('a=1&b=2'),
    },
    check(response) {
      const env = environOf(response);
      assert.equal(env.REQUEST_METHOD, 'POST');
      assert.equal(env.CONTENT_TYPE, 'application/x-www-form-urlencoded');
      assert.equal(env.CONTENT_LENGTH, '7');
    },
  },
  {
    name: 'POST body is echoed byte-exact (1 MiB binary)',
    request: {
      method: 'POST',
      path: '/echo',
      headers: [['Content-Type', 'application/octet-stream']],
      body: BIG_BODY,
    },
    check(response) {
      assert.equal(response.status, 200);
      assert.equal(response.body.length, BIG_BODY.length);
      assert.equal(sha256(response.body), BIG_BODY_SHA);
    },
  },
  {
    name: 'read(n) returns n bytes at a time and stops at CONTENT_LENGTH',
    request: { method: 'POST', path: '/read?n=3', headers: [['Content-Type', 'text/plain']], body: Buffer.from('abcdefghij') },
    check(response) {
      assert.equal(response.status, 200);
      assert.deepEqual(JSON.parse(text(response)), { total: 10, sizes: [3, 3, 3, 1], reads: 4 });
    },
  },
  {
    name: 'HEAD sends the headers and no body',
    request: { method: 'HEAD', path: '/hello' },
    check(response) {
      assert.equal(response.status, 200);
      assert.match(headerOf(response, 'content-type') ?? '', /^text\/plain/);
      assert.equal(response.body.length, 0);
    },
  },
  {
    name: 'a status chosen by the app is kept (404)',
    request: { method: 'GET', path: '/status/404' },
    check(response) {
      assert.equal(response.status, 404);
      assert.equal(text(response), 'status 404\n');
    },
  },
  {
    name: 'a 304 carries no body',
    request: { method: 'GET', path: '/status/304' },
    check(response) {
      assert.equal(response.status, 304);
      assert.equal(response.body.length, 0);
    },
  },
  {
    name: 'Location redirect with 302',
    request: { method: 'GET', path: '/redirect' },
    check(response) {
      assert.equal(response.status, 302);
      assert.equal(headerOf(response, 'location'), 'http://example.test/target');
    },
  },
  {
    name: 'two Set-Cookie headers stay separate; Cookie reaches the app',
    request: { method: 'GET', path: '/cookies', headers: [['Cookie', 'x=1; y=2']] },
    check(response) {
      assert.deepEqual(headersOf(response, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
      assert.equal(text(response), 'x=1; y=2');
    },
  },
  {
    name: 'an empty body is a complete 200',
    request: { method: 'GET', path: '/empty' },
    check(response) {
      assert.equal(response.status, 200);
      assert.equal(response.body.length, 0);
    },
  },
  {
    name: 'an async generator body is streamed in order',
    request: { method: 'GET', path: '/chunks' },
    check(response) {
      assert.equal(text(response), 'chunk0;chunk1;chunk2;chunk3;chunk4;');
    },
  },
  {
    name: 'write() output comes before the returned body',
    request: { method: 'GET', path: '/write' },
    check(response) {
      assert.equal(text(response), 'written;returned');
    },
  },
  {
    name: 'string chunks are sent as UTF-8',
    request: { method: 'GET', path: '/utf8' },
    check(response) {
      assert.deepEqual(Buffer.from(response.body), Buffer.from('caf\u00e9 \u20ac', 'utf8'));
    },
  },
  {
    name: 'binary bodies are byte-exact',
    request: { method: 'GET', path: '/binary' },
    check(response) {
      assert.equal(response.body.length, 256);
      for (let i = 0; i < 256; i++) assert.equal(response.body[i], i);
    },
  },
  {
    name: 'a 1 MiB response with Content-Length arrives whole',
    request: { method: 'GET', path: '/big?bytes=1048576' },
    check(response) {
      assert.equal(response.status, 200);
      assert.equal(response.body.length, 1048576);
    },
  },
  {
    name: 'an exception before the headers becomes a 500 without details',
    request: { method: 'GET', path: '/throw' },
    check(response) {
      assert.equal(response.status, 500);
      assert.doesNotMatch(text(response), /on purpose/);
    },
  },
  {
    name: 'startResponse with excInfo replaces unsent headers',
    request: { method: 'GET', path: '/exc' },
    check(response) {
      assert.equal(response.status, 500);
      assert.equal(text(response), 'recovered');
    },
  },
  {
    name: 'an unknown route answers 404',
    request: { method: 'GET', path: '/no-such-route' },
    check(response) {
      assert.equal(response.status, 404);
    },
  },
];
