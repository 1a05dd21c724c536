/**
 * The CGI end-to-end suite every web server runs (Apache mod_cgi, Apache mod_cgid, lighttpd): the cgi-bin/
 * examples, built once per file, behind the real server, started once per file. Known, documented
 * differences between servers are passed in as `quirks` and asserted as such, so a server that changes its
 * behaviour fails the suite instead of slipping by.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceCases, createFetchClient, type ConformanceClient } from 'tsgi/testing';
import { bodyTruncation, parseRawResponse, rawBody, rawHeader, rawRequest } from './http-client.js';
import {
  buildScripts,
  describeWithServer,
  findProcesses,
  makeScratchDir,
  NODE_DIR,
  waitFor,
  type Availability,
  type ServerHandle,
} from './servers.js';

/** How a server is known to differ; each flag is asserted, not just tolerated. */
export interface CgiQuirks {
  /**
   * The server normalizes the query string (lighttpd: %41 -> "A", raw UTF-8 bytes -> %XX) instead of
   * passing it raw.
   */
  normalizesQuery: boolean;
  /** The script's stderr still reaches the log after the client left (not with mod_cgi: it closes the pipe). */
  logsAfterDisconnect: boolean;
  /**
   * The server passes the script's Content-Length on, so a body cut short is visible to the client (lighttpd).
   * Apache 2.4.71 drops it and re-frames the body (chunked on HTTP/1.1), and usually ends the chunked stream
   * normally even when the script died mid-body: the client can't tell.
   */
  keepsContentLength: boolean;
}

/** What defineCgiSuite needs. */
export interface CgiSuiteOptions {
  title: string;
  availability: Availability;
  /** Starts the server with the built scripts in `cgiDir` served at /cgi-bin/. */
  start(cgiDir: string): Promise<ServerHandle>;
  quirks: CgiQuirks;
}

/** Memory bound for the CGI child that streams 100 MiB (peak RSS, as the script itself reports it). */
const MAX_STREAM_RSS_KIB = 120 * 1024;
const STREAM_PERIOD = 251;
const MIB = 1024 * 1024;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Bytes as a byte string's chars: the inverse of the latin-1 byte policy, for comparing env values. */
function fromByteString(value: unknown): string {
  return Buffer.from(String(value), 'latin1').toString('utf8');
}

/** A unique tag for log lines of one request. */
function tag(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

/** Declares the whole suite for one server. */
export function defineCgiSuite(options: CgiSuiteOptions): void {
  const { quirks } = options;
  describeWithServer(options.title, options.availability, () => {
    let server: ServerHandle;
    let scriptsDir: string;
    let cgiDir: string;

    beforeAll(async () => {
      scriptsDir = await makeScratchDir('scripts');
      cgiDir = join(scriptsDir, 'cgi-bin');
      await buildScripts(cgiDir);
      server = await options.start(cgiDir);
    });

    afterAll(async () => {
      await server?.stop();
      if (scriptsDir && process.env.TSGI_E2E_KEEP !== '1') await rm(scriptsDir, { recursive: true, force: true });
    });

    const url = (path: string): string => `${server.baseUrl}${path}`;
    async function envOf(path: string, init?: RequestInit): Promise<Record<string, unknown>> {
      const response = await fetch(url(path), init);
      const text = await response.text();
      expect(response.status, text).toBe(200);
      return JSON.parse(text) as Record<string, unknown>;
    }

    it('hello: the example app tsgi serve runs over HTTP answers a plain GET as a CGI script', async () => {
      const response = await fetch(url('/cgi-bin/hello.cgi/some/path'));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await response.text()).toBe('Hello from tsgi! You asked for /cgi-bin/hello.cgi/some/path\n');
    });

    it('env: CGI variables, a decoded UTF-8 PATH_INFO, the raw query, PATH from the conf', async () => {
      const env = await envOf('/cgi-bin/env.cgi/caf%C3%A9/a%20b?x=1%2B2&y=%E2%82%AC&z=a+b', {
        headers: { Proxy: 'http://evil.test:8080', 'X-Custom-Thing': 'one two' },
      });
      expect(env.GATEWAY_INTERFACE).toBe('CGI/1.1');
      expect(env.REQUEST_METHOD).toBe('GET');
      expect(env.SERVER_PROTOCOL).toBe('HTTP/1.1');
      expect(env.SERVER_PORT).toBe(String(server.port));
      expect(env.REMOTE_ADDR).toBe('127.0.0.1');
      expect(env.SCRIPT_NAME).toBe('/cgi-bin/env.cgi');
      expect(fromByteString(env.PATH_INFO)).toBe('/café/a b');
      expect(env.PATH_INFO).toBe('/caf\u00c3\u00a9/a b');
      // Only reserved-character and non-ASCII escapes here: every server keeps them as sent.
      expect(env.QUERY_STRING).toBe('x=1%2B2&y=%E2%82%AC&z=a+b');
      expect(env.HTTP_X_CUSTOM_THING).toBe('one two');
      expect(env.HTTP_PROXY).toBeUndefined();
      expect(String(env.PATH).split(':')[0]).toBe(NODE_DIR);
      expect(env['tsgi.run_once']).toBe(true);
      expect(env['tsgi.multiprocess']).toBe(true);
      expect(env['tsgi.url_scheme']).toBe('http');
    });

    it(`env: escapes of unreserved chars and raw UTF-8 in the query ${quirks.normalizesQuery ? 'are normalized (quirk)' : 'stay raw'}`, async () => {
      const escaped = await envOf('/cgi-bin/env.cgi?a=%41%7E');
      expect(escaped.QUERY_STRING).toBe(quirks.normalizesQuery ? 'a=A~' : 'a=%41%7E');
      // Raw bytes in the request line: node's clients refuse them, so write the request by hand.
      const request = Buffer.concat([
        Buffer.from('GET /cgi-bin/env.cgi?q='),
        Buffer.from('é€', 'utf8'),
        Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
      ]);
      const response = parseRawResponse(await rawRequest(server.port, request));
      expect(response.status).toBe(200);
      const env = JSON.parse(rawBody(response).toString('utf8')) as Record<string, unknown>;
      expect(env.QUERY_STRING).toBe(quirks.normalizesQuery ? 'q=%C3%A9%E2%82%AC' : 'q=\u00c3\u00a9\u00e2\u0082\u00ac');
      // Either way the app decodes the same text.
      expect(new URLSearchParams(fromByteString(env.QUERY_STRING)).get('q')).toBe('é€');
    });

    it('env: Authorization reaches the app as HTTP_AUTHORIZATION', async () => {
      const env = await envOf('/cgi-bin/env.cgi', { headers: { Authorization: 'Basic dXNlcjpwYXNz' } });
      expect(env.HTTP_AUTHORIZATION).toBe('Basic dXNlcjpwYXNz');
    });

    it('echo: a 10 MiB random binary POST comes back byte-exact', async () => {
      const body = randomBytes(10 * MIB);
      const path = '/cgi-bin/echo.cgi';
      const response = await fetch(url(path), {
        method: 'POST',
        body,
        headers: { 'Content-Type': 'application/x-tsgi-test' },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/x-tsgi-test');
      const back = Buffer.from(await response.arrayBuffer());
      expect(back.length).toBe(body.length);
      expect(sha256(back)).toBe(sha256(body));
    });

    it('upload: multipart/form-data, the file part hashes to what was sent', async () => {
      const file = randomBytes(2 * MIB + 13);
      const form = new FormData();
      form.append('title', 'holiday');
      form.append('file', new Blob([file], { type: 'application/octet-stream' }), 'photo.bin');
      const response = await fetch(url('/cgi-bin/upload.cgi'), { method: 'POST', body: form });
      const result = (await response.json()) as {
        contentType: string;
        bytes: number;
        parts: Array<{ name: string; filename: string | null; bytes: number; sha256: string }>;
      };
      expect(response.status).toBe(200);
      expect(result.contentType).toMatch(/^multipart\/form-data; boundary=/);
      expect(result.parts.map((part) => part.name)).toEqual(['title', 'file']);
      const filePart = result.parts[1];
      expect(filePart?.filename).toBe('photo.bin');
      expect(filePart?.bytes).toBe(file.length);
      expect(filePart?.sha256).toBe(sha256(file));
      expect(result.parts[0]?.sha256).toBe(sha256(Buffer.from('holiday')));
    });

    it('upload: a malformed multipart body gets 400, a GET gets 405', async () => {
      const bad = await fetch(url('/cgi-bin/upload.cgi'), {
        method: 'POST',
        headers: { 'Content-Type': 'multipart/form-data; boundary=xyz' },
        body: '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nunterminated',
      });
      expect(bad.status).toBe(400);
      expect((await fetch(url('/cgi-bin/upload.cgi'))).status).toBe(405);
    });

    it('HEAD: headers, no body', async () => {
      const raw = await rawRequest(server.port, 'HEAD /cgi-bin/hello.cgi HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      const response = parseRawResponse(raw);
      expect(response.status).toBe(200);
      expect(rawHeader(response, 'content-type')).toBe('text/plain; charset=utf-8');
      expect(response.rest.length).toBe(0);
    });

    it('status: the app picks the status (404, 503) and its body goes out', async () => {
      for (const code of [404, 503]) {
        const response = await fetch(url(`/cgi-bin/status.cgi/${code}`));
        expect(response.status).toBe(code);
        expect(await response.text()).toMatch(new RegExp(`^${code} `));
      }
    });

    it('redirect: 302 with Location, ?status=301 picks another code', async () => {
      const found = await fetch(url('/cgi-bin/redirect.cgi'), { redirect: 'manual' });
      expect(found.status).toBe(302);
      expect(found.headers.get('location')).toBe('/cgi-bin/hello.cgi');
      const moved = await fetch(url('/cgi-bin/redirect.cgi?status=301&to=/elsewhere'), { redirect: 'manual' });
      expect(moved.status).toBe(301);
      expect(moved.headers.get('location')).toBe('/elsewhere');
    });

    it('cookies: two Set-Cookie headers arrive separate; Cookie reaches the app', async () => {
      const response = await fetch(url('/cgi-bin/cookies.cgi'), { headers: { Cookie: 'a=1; b=2' } });
      expect(response.headers.getSetCookie()).toEqual([
        'first=1; Path=/; HttpOnly',
        'second=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax',
      ]);
      expect(await response.text()).toBe('cookie: a=1; b=2\n');
    });

    it('throws: an exception before the headers is a clean 500, details in the error log only', async () => {
      const id = tag('before');
      const response = await fetch(url(`/cgi-bin/throws.cgi?id=${id}`));
      expect(response.status).toBe(500);
      const text = await response.text();
      expect(text).toBe('500 Internal Server Error\n');
      const log = await waitFor('the stack trace in the error log', async () => {
        const current = await server.errorLog();
        return current.includes(`throws.cgi[${id}]: deliberate failure before the headers`) && current;
      });
      expect(log).not.toMatch(/Premature end of script headers|malformed header/i);
    });

    it(`throws ?after=1: the head went out, so the body is cut short${quirks.keepsContentLength ? ' (visibly: fewer bytes than Content-Length)' : ' (invisibly: the server re-frames it)'}`, async () => {
      const id = tag('after');
      const raw = await rawRequest(
        server.port,
        `GET /cgi-bin/throws.cgi?after=1&id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      );
      const response = parseRawResponse(raw);
      expect(response.status).toBe(200);
      const truncation = bodyTruncation(response);
      expect(truncation.received).toBeLessThan(2048);
      if (quirks.keepsContentLength) {
        expect(truncation.framing).toBe('content-length 2048');
        expect(truncation.truncated).toBe(true);
      } else {
        expect(rawHeader(response, 'content-length')).toBeUndefined();
      }
      const log = await waitFor('the failure in the error log', async () => {
        const current = await server.errorLog();
        return current.includes(`throws.cgi[${id}]: deliberate failure after the first chunk`) && current;
      });
      expect(log).not.toMatch(/Premature end of script headers|malformed header/i);
    });

    it('stream: 100 MiB download completes, byte-exact, with the CGI child under 120 MiB peak RSS', async () => {
      const id = tag('big');
      const response = await fetch(url(`/cgi-bin/stream.cgi?id=${id}`));
      expect(response.status).toBe(200);
      const expected = 100 * MIB;
      let reference = Buffer.alloc(0);
      let received = 0;
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (reference.length < value.length + STREAM_PERIOD) {
          reference = Buffer.alloc(value.length + STREAM_PERIOD, 0);
          for (let i = 0; i < reference.length; i++) reference[i] = i % STREAM_PERIOD;
        }
        const start = received % STREAM_PERIOD;
        if (Buffer.compare(value, reference.subarray(start, start + value.length)) !== 0) {
          throw new Error(`stream: wrong bytes in the chunk at offset ${received}`);
        }
        received += value.length;
      }
      expect(received).toBe(expected);
      const line = await waitFor('the stream script\'s "done" line', async () => {
        const match = new RegExp(`stream\\.cgi\\[${id}\\]: done bytes=(\\d+) maxrss_kib=(\\d+)`).exec(await server.errorLog());
        return match ?? undefined;
      });
      expect(Number(line[1])).toBe(expected);
      expect(Number(line[2])).toBeLessThan(MAX_STREAM_RSS_KIB);
    });

    it('stream: a client that leaves mid-download ends the CGI process', async () => {
      const id = tag('gone');
      const needle = join(cgiDir, 'stream.cgi');
      await waitFor('no stream.cgi left from earlier tests', async () => (await findProcesses(needle)).length === 0);
      // Read 1 MiB, check the script is running (else the check below proves nothing), read to 4 MiB, leave.
      const { received, runningWhileReading } = await new Promise<{ received: number; runningWhileReading: number[] }>(
        (resolve, reject) => {
          const socket = connect({ port: server.port, host: '127.0.0.1' });
          let count = 0;
          let running: number[] | null = null;
          const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`stream: only ${count} bytes arrived in time`));
          }, 20_000);
          socket.on('data', (data: Buffer) => {
            count += data.length;
            if (running === null && count >= MIB) {
              running = [];
              socket.pause();
              void findProcesses(needle).then((pids) => {
                running = pids;
                socket.resume();
              });
            }
            if (count >= 4 * MIB && running !== null && !socket.isPaused()) {
              clearTimeout(timer);
              socket.destroy();
              resolve({ received: count, runningWhileReading: running });
            }
          });
          socket.on('error', () => undefined);
          socket.write(`GET /cgi-bin/stream.cgi?mib=2000&id=${id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        },
      );
      expect(received).toBeGreaterThanOrEqual(4 * MIB);
      expect(runningWhileReading.length).toBeGreaterThan(0);
      await waitFor('the stream.cgi process to exit after the client left', async () => (await findProcesses(needle)).length === 0, 15_000);
      if (quirks.logsAfterDisconnect) {
        await waitFor('the abort marker in the log', async () => (await server.errorLog()).includes(`stream.cgi[${id}]: client went away after`));
      }
    });

    describe('shared conformance suite (cgi-bin/conformance.cgi)', () => {
      const scriptName = '/cgi-bin/conformance.cgi';
      // The server starts in beforeAll, after collection: resolve its URL per request.
      const send: ConformanceClient = (request) => createFetchClient(url(scriptName))(request);
      for (const testCase of conformanceCases) {
        it(testCase.name, async () => {
          testCase.check(await send(testCase.request), { scriptName, transport: options.title });
        });
      }
    });
  });
}
