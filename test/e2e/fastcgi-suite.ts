/**
 * The FastCGI end-to-end suite every web server runs (nginx over TCP and a unix socket, Apache mod_proxy_fcgi,
 * Apache mod_fcgid, lighttpd bin-path): test/e2e/fixtures/fastcgi-app.ts served by `tsgi serve`, mounted at
 * MOUNT, behind the real server, started once per file. Known, documented differences between servers are
 * passed in as `quirks` and asserted as such, so a server that changes its behaviour fails the suite instead
 * of slipping by.
 */
import { downloadThenLeave } from './http-client.js';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceCases, createFetchClient, type ConformanceClient } from 'tsgi/testing';
import { countFds, countTimeWait, describeWithServer, waitFor, type Availability, type ServerHandle } from './servers.js';

/** How a server is known to differ; each flag is asserted, not just tolerated. */
export interface FastCgiQuirks {
  /**
   * What the server does with a chunked upload (no Content-Length): 'streamed' to the app as it arrives,
   * without CONTENT_LENGTH (nginx with fastcgi_request_buffering off, Apache mod_proxy_fcgi), or
   * 'de-chunked': read whole first and sent with its CONTENT_LENGTH (lighttpd with stream-request-body = 0,
   * mod_fcgid).
   */
  chunkedUploads: 'streamed' | 'de-chunked';
  /** The server keeps its connections to the backend open between requests (FCGI_KEEP_CONN). */
  keepsConnections: boolean;
  /**
   * The server reads the answer while it still sends the request body, so an app may stream its answer while
   * it reads (a streaming echo of 10 MiB completes). nginx stops sending STDIN once it passed the response
   * head on to the client; mod_fcgid writes all of STDIN before it reads any STDOUT. Behind either, such an app
   * stalls as soon as the body outgrows the socket buffers.
   */
  fullDuplex: boolean;
  /**
   * The app's Content-Length reaches the client. Apache 2.4.71 drops it and re-frames the body as chunked
   * (as it does for CGI scripts).
   */
  keepsContentLength: boolean;
}

/** A web server in front of a tsgi backend, as the suite needs it. */
export interface FastCgiDeployment {
  server: ServerHandle;
  /**
   * The pids of the tsgi processes serving the app: the one whose startup line the harness read, or those the
   * web server spawned (mod_fcgid runs several).
   */
  backendPids(): Promise<number[]>;
  /** The backend's TCP port, when it listens on TCP (for counting the connections the web server opened). */
  backendPort?: number;
  /** Everything that may carry the app's tsgi.errors lines: the web server's error log and the backend's output. */
  logs(): Promise<string>;
  /** Stops the web server and the backend. */
  stop(): Promise<void>;
}

/** What defineFastCgiSuite needs. */
export interface FastCgiSuiteOptions {
  title: string;
  availability: Availability;
  /** The mount point: the URL prefix the server forwards, and the SCRIPT_NAME the app must see. */
  mount: string;
  start(): Promise<FastCgiDeployment>;
  quirks: FastCgiQuirks;
  /** Requests in flight at once in the concurrency test. Default 200. */
  concurrency?: number;
  /** Sequential requests in the fd-growth test. Default 1000. */
  sequentialRequests?: number;
}

const MIB = 1024 * 1024;
const PERIOD = 251;
const UPLOAD_BYTES = 10 * MIB;
const DOWNLOAD_BYTES = 100 * MIB;
/** How many more fds the backend may hold after the sequential run than before it (timers, a lazy pipe). */
const FD_SLACK = 4;
/** How long a half-duplex server's stalled streaming echo is watched before the test calls it stalled. */
const STALL_WATCH_MS = 3_000;
/**
 * The streamed echo's size: against a half-duplex server it must exceed what the socket buffers and the web
 * server's own buffers can absorb on their own (10 MiB sometimes fit and the echo completed).
 */
const ECHO_BYTES = (fullDuplex: boolean): number => (fullDuplex ? UPLOAD_BYTES : 64 * MIB);
/** How long the abort marker may take to reach a log after the client left. */
const ABORT_MARKER_TIMEOUT_MS = 15_000;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A unique tag for log lines of one request. */
export function tag(name: string): string {
  return `${name}-${randomBytes(4).toString('hex')}`;
}

/** The response of the fixture's /digest route. */
interface Digest {
  bytes: number;
  sha256: string;
  inputTerminated: boolean;
  contentLength: string | null;
}

/** A ReadableStream that yields `bytes` in pieces of `piece` bytes: fetch sends it chunked, without Content-Length. */
function streamOf(bytes: Uint8Array, piece = 256 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.subarray(offset, offset + piece));
      offset += piece;
    },
  });
}

/**
 * Reads a response body chunk by chunk, checking each against the fixture's pattern (byte k is k % 251)
 * without keeping it. Resolves with the number of bytes.
 */
async function countPatternBytes(body: ReadableStream<Uint8Array>): Promise<number> {
  let reference = Buffer.alloc(0);
  let received = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return received;
    if (reference.length < value.length + PERIOD) {
      reference = Buffer.alloc(value.length + PERIOD, 0);
      for (let i = 0; i < reference.length; i++) reference[i] = i % PERIOD;
    }
    const start = received % PERIOD;
    if (Buffer.compare(value, reference.subarray(start, start + value.length)) !== 0) {
      throw new Error(`download: wrong bytes in the chunk at offset ${received}`);
    }
    received += value.length;
  }
}

/** Declares the whole suite for one server. */
export function defineFastCgiSuite(options: FastCgiSuiteOptions): void {
  const { quirks, mount } = options;
  const concurrency = options.concurrency ?? 200;
  const sequential = options.sequentialRequests ?? 1000;
  describeWithServer(options.title, options.availability, () => {
    let deployment: FastCgiDeployment;

    beforeAll(async () => {
      deployment = await options.start();
    });

    afterAll(async () => {
      await deployment?.stop();
    });

    const url = (path: string): string => `${deployment.server.baseUrl}${mount}${path}`;
    async function jsonOf<T>(path: string, init?: RequestInit): Promise<T> {
      const response = await fetch(url(path), init);
      const text = await response.text();
      expect(response.status, text).toBe(200);
      return JSON.parse(text) as T;
    }

    it(`mount: the app under ${mount}/ sees SCRIPT_NAME=${mount} and PATH_INFO=the decoded rest`, async () => {
      const env = await jsonOf<Record<string, unknown>>('/env/x%20y/caf%C3%A9?q=1');
      expect(env.SCRIPT_NAME).toBe(mount);
      expect(env.PATH_INFO).toBe('/env/x y/caf\u00c3\u00a9');
      expect(env.QUERY_STRING).toBe('q=1');
      expect(env.REQUEST_METHOD).toBe('GET');
      expect(env.SERVER_PORT).toBe(String(deployment.server.port));
      expect(env.FCGI_ROLE).toBe('RESPONDER');
      expect(env.HTTP_PROXY).toBeUndefined();
      expect(env['tsgi.run_once']).toBe(false);
    });

    it('stderr: a tsgi.errors line reaches the web server\'s error log (FastCGI STDERR)', async () => {
      const id = tag('log');
      const response = await fetch(url(`/log?id=${id}`));
      expect(await response.text()).toBe('logged\n');
      await waitFor('the tsgi.errors line in the error log', async () => (await deployment.server.errorLog()).includes(`fastcgi-app[${id}]: hello from tsgi.errors`));
    });

    it('upload: a 10 MiB random binary POST arrives byte-exact and is echoed byte-exact', async () => {
      const body = randomBytes(UPLOAD_BYTES);
      const expected = sha256(body);
      const digest = await jsonOf<Digest>('/digest', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body,
      });
      expect(digest).toMatchObject({ bytes: UPLOAD_BYTES, sha256: expected, contentLength: String(UPLOAD_BYTES) });
      const echoed = await fetch(url('/echo'), { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body });
      expect(echoed.status).toBe(200);
      const bytes = new Uint8Array(await echoed.arrayBuffer());
      expect(bytes.length).toBe(UPLOAD_BYTES);
      expect(sha256(bytes)).toBe(expected);
    });

    it(`upload: a ${ECHO_BYTES(quirks.fullDuplex) / MIB} MiB body streamed straight back while it arrives ${quirks.fullDuplex ? 'completes (full-duplex)' : 'stalls (half-duplex server)'}`, async () => {
      const echoBytes = ECHO_BYTES(quirks.fullDuplex);
      const body = randomBytes(echoBytes);
      const controller = new AbortController();
      const hash = createHash('sha256');
      let received = 0;
      const exchange = (async (): Promise<'done'> => {
        const response = await fetch(url('/stream-echo'), {
          method: 'POST',
          headers: { 'Content-Type': 'application/octet-stream' },
          body,
          signal: controller.signal,
        });
        expect(response.status).toBe(200);
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return 'done';
          hash.update(value);
          received += value.length;
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      const watch = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), quirks.fullDuplex ? 30_000 : STALL_WATCH_MS);
      });
      let outcome: 'done' | 'timeout';
      try {
        outcome = await Promise.race([exchange, watch]);
      } finally {
        clearTimeout(timer);
        controller.abort();
        await exchange.catch(() => undefined);
      }
      if (quirks.fullDuplex) {
        expect(outcome).toBe('done');
        expect(received).toBe(echoBytes);
        expect(hash.digest('hex')).toBe(sha256(body));
      } else {
        expect(outcome, `${received} bytes came back`).toBe('timeout');
        expect(received).toBeLessThan(echoBytes);
      }
    });

    it(`upload: a chunked body without Content-Length ${quirks.chunkedUploads === 'streamed' ? 'is streamed: no CONTENT_LENGTH, tsgi.input_terminated' : 'is de-chunked by the server, which sets CONTENT_LENGTH'}`, async () => {
      const body = randomBytes(3 * MIB + 123);
      const digest = await jsonOf<Digest>('/digest', {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: streamOf(body),
        duplex: 'half',
      } as RequestInit);
      expect(digest.bytes).toBe(body.length);
      expect(digest.sha256).toBe(sha256(body));
      expect(digest.inputTerminated).toBe(true);
      expect(digest.contentLength).toBe(quirks.chunkedUploads === 'streamed' ? null : String(body.length));
    });

    it(`download: 100 MiB arrive complete and in order, read as a stream${quirks.keepsContentLength ? '' : ' (Content-Length dropped, re-framed as chunked)'}`, async () => {
      const id = tag('download');
      const response = await fetch(url(`/download?bytes=${DOWNLOAD_BYTES}&id=${id}`));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-length')).toBe(quirks.keepsContentLength ? String(DOWNLOAD_BYTES) : null);
      expect(await countPatternBytes(response.body as ReadableStream<Uint8Array>)).toBe(DOWNLOAD_BYTES);
      await waitFor('the "done" line', async () => (await deployment.logs()).includes(`fastcgi-app[${id}]: done bytes=${DOWNLOAD_BYTES}`));
    });

    it('download: a client that leaves mid-download fires the app\'s tsgi.signal (abort marker logged)', async () => {
      const id = tag('gone');
      const received = await downloadThenLeave(deployment.server.port, `${mount}/download?bytes=${4096 * MIB}&id=${id}`, 4 * MIB);
      expect(received).toBeGreaterThanOrEqual(4 * MIB);
      // Where the line lands: every server closes the backend connection when the client leaves, so there is no
      // STDERR stream left and tsgi writes the line to its own stderr: the harness's pipe (nginx, mod_proxy_fcgi),
      // lighttpd's own stderr (bin-path children inherit it), Apache's error log (mod_fcgid gives it to them).
      const logs = await waitFor(
        'the abort marker in the logs',
        async () => {
          const current = await deployment.logs();
          return current.includes(`fastcgi-app[${id}]: client went away after`) && current;
        },
        ABORT_MARKER_TIMEOUT_MS,
      );
      const sent = Number(new RegExp(`fastcgi-app\\[${id}\\]: client went away after (\\d+) bytes`).exec(logs)?.[1]);
      // It stopped long before the 4 GiB it was asked for.
      expect(sent).toBeLessThan(1024 * MIB);
    });

    it(`concurrency: ${concurrency} requests in flight at once all answer correctly`, async () => {
      const results = await Promise.all(
        Array.from({ length: concurrency }, async (_, n) => {
          const response = await fetch(url(`/slow?ms=50&n=${n}`));
          return { status: response.status, body: await response.text() };
        }),
      );
      const wrong = results.filter((result, n) => result.status !== 200 || (JSON.parse(result.body) as { n: string }).n !== String(n));
      expect(wrong.slice(0, 3), `${wrong.length} of ${concurrency} wrong`).toEqual([]);
    });

    it(`keep-alive: ${sequential} sequential requests ${quirks.keepsConnections ? 'reuse the backend connections' : 'use a backend connection each'}, and the backend's fd count stays flat`, async () => {
      const get = async (path: string): Promise<string> => {
        const response = await fetch(url(path));
        const text = await response.text();
        expect(response.status, text).toBe(200);
        return text;
      };
      for (let i = 0; i < 20; i++) await get('/hello');
      const fdsOf = async (pids: number[]): Promise<Map<number, number>> => {
        const counts = new Map<number, number>();
        for (const pid of pids) counts.set(pid, await countFds(pid).catch(() => -1));
        return counts;
      };
      const pids = await deployment.backendPids();
      expect(pids.length).toBeGreaterThan(0);
      // Connections from the earlier tests may still be closing: start from settled counts.
      const before = await waitFor('settled fd counts', async () => {
        const first = await fdsOf(pids);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const second = await fdsOf(pids);
        return [...first].every(([pid, count]) => second.get(pid) === count) && second;
      });
      const port = deployment.backendPort;
      const closedBefore = port ? await countTimeWait(port) : 0;
      for (let i = 0; i < sequential; i++) expect(await get('/hello')).toBe('Hello, tsgi');
      if (port) {
        // Reuse, not just no leak (a connection per request also leaves the fd count flat): each closed TCP
        // connection leaves a TIME_WAIT entry for a minute, so the count shows how many were closed.
        const closed = (await countTimeWait(port)) - closedBefore;
        if (quirks.keepsConnections) expect(closed, `backend connections closed during ${sequential} requests`).toBeLessThanOrEqual(2);
        else expect(closed).toBeGreaterThanOrEqual(sequential);
      }
      const grown = await waitFor('fd counts back near where they were', async () => {
        const after = await fdsOf(pids);
        const over = [...after].filter(([pid, count]) => count > (before.get(pid) ?? 0) + FD_SLACK);
        return over.length === 0 ? [] : undefined;
      }).catch(async () => {
        const after = await fdsOf(pids);
        return [...after].map(([pid, count]) => `pid ${pid}: ${before.get(pid)} -> ${count}`);
      });
      expect(grown).toEqual([]);
    });

    describe(`shared conformance suite (fixtures/fastcgi-app.ts at ${mount})`, () => {
      // The server starts in beforeAll, after collection: resolve its URL per request.
      const send: ConformanceClient = (request) => createFetchClient(url(''))(request);
      for (const testCase of conformanceCases) {
        it(testCase.name, async () => {
          testCase.check(await send(testCase.request), { scriptName: mount, transport: options.title });
        });
      }
    });
  });
}
