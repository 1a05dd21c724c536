/**
 * The end-to-end suite for the one-request-per-connection gateways (SCGI, uwsgi) behind nginx and Apache:
 * test/e2e/fixtures/fastcgi-app.ts served by `tsgi serve --scgi/--uwsgi ADDR --mount MOUNT`, behind the real
 * server, started once per file. Known differences between servers are passed in as `quirks` and asserted as
 * such, so a server that changes its behaviour fails the suite instead of slipping by.
 */
import { downloadThenLeave } from './http-client.js';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceCases, createFetchClient, type ConformanceClient } from 'tsgi/testing';
import { tag } from './fastcgi-suite.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFiles,
  describeWithServer,
  NGINX_BIN,
  PROJECT_ROOT,
  startApache,
  startBackend,
  startNginx,
  waitFor,
  type Availability,
  type BackendHandle,
  type ServerHandle,
} from './servers.js';
import { accessSync, constants } from 'node:fs';

/** The gateway protocols this suite covers. */
export type GatewayProtocol = 'scgi' | 'uwsgi';

/** How a server is known to differ; each flag is asserted, not just tolerated. */
export interface GatewayQuirks {
  /** The app's Content-Length reaches the client (else the server re-frames the body as chunked). */
  keepsContentLength: boolean;
  /**
   * CONTENT_LENGTH of a request without a body: "0" (SCGI requires the header, so nginx and Apache send "0")
   * or absent (nginx's uwsgi_params send "", which tsgi treats as absent; Apache sends none).
   */
  contentLengthWithoutBody: '0' | 'absent';
}

/** What defineGatewaySuite needs. */
export interface GatewaySuiteOptions {
  protocol: GatewayProtocol;
  server: 'nginx' | 'apache';
  quirks: GatewayQuirks;
}

const MOUNT = '/app';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');
const MIB = 1024 * 1024;
const PERIOD = 251;
const UPLOAD_BYTES = 10 * MIB;
const DOWNLOAD_BYTES = 100 * MIB;
const CONCURRENCY = 200;
/** How long the abort marker may take to reach the backend's output after the client left. */
const ABORT_MARKER_TIMEOUT_MS = 15_000;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Whether dist/ (what bin/tsgi.js runs) has the SCGI and uwsgi servers: they need `npm run build`. */
function checkGatewayBuild(protocol: GatewayProtocol): Availability {
  const file = join(PROJECT_ROOT, 'dist', 'servers', `${protocol}.js`);
  try {
    accessSync(file, constants.R_OK);
    return { available: true, reason: `${file} found` };
  } catch {
    return { available: false, reason: `${file} not found (npm run build)` };
  }
}

/** Reads a body stream, checking each chunk against the fixture's pattern (byte k is k % 251); returns the count. */
async function countPatternBytes(body: ReadableStream<Uint8Array>): Promise<number> {
  let reference = Buffer.alloc(0);
  let received = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return received;
    if (reference.length < value.length + PERIOD) {
      reference = Buffer.alloc(value.length + PERIOD);
      for (let i = 0; i < reference.length; i++) reference[i] = i % PERIOD;
    }
    const start = received % PERIOD;
    if (Buffer.compare(value, reference.subarray(start, start + value.length)) !== 0) throw new Error(`download: wrong bytes at offset ${received}`);
    received += value.length;
  }
}

/** Declares the whole suite for one web server and one protocol. */
export function defineGatewaySuite(options: GatewaySuiteOptions): void {
  const { protocol, quirks } = options;
  const title = `${protocol === 'scgi' ? 'SCGI' : 'uwsgi'} behind ${options.server === 'nginx' ? 'nginx' : `Apache (mod_proxy_${protocol})`}`;
  const availability =
    options.server === 'nginx'
      ? allAvailable(checkBinary(NGINX_BIN), checkGatewayBuild(protocol))
      : allAvailable(
          checkBinary(APACHE_BIN),
          checkFiles([{ path: `/usr/lib/apache2/modules/mod_proxy_${protocol}.so`, package: 'apache2', executable: false }]),
          checkGatewayBuild(protocol),
        );

  describeWithServer(title, availability, () => {
    let server: ServerHandle;
    let backend: BackendHandle;

    beforeAll(async () => {
      backend = await startBackend(APP, 'tcp', { mount: MOUNT, protocol });
      try {
        server =
          options.server === 'nginx'
            ? await startNginx(`nginx-${protocol}.conf`, { label: `nginx-${protocol}`, vars: { BACKEND: backend.nginxAddress, MOUNT } })
            : await startApache(`apache-proxy-${protocol}.conf`, { label: `apache-${protocol}`, vars: { BACKEND_URL: `${protocol}://${backend.address}`, MOUNT } });
      } catch (error) {
        await backend.stop();
        throw error;
      }
    });

    afterAll(async () => {
      await server?.stop();
      await backend?.stop();
    });

    const url = (path: string): string => `${server.baseUrl}${MOUNT}${path}`;
    async function jsonOf<T>(path: string, init?: RequestInit): Promise<T> {
      const response = await fetch(url(path), init);
      const text = await response.text();
      expect(response.status, text).toBe(200);
      return JSON.parse(text) as T;
    }

    it(`mount: the app under ${MOUNT}/ sees SCRIPT_NAME=${MOUNT} and PATH_INFO=the decoded rest`, async () => {
      const env = await jsonOf<Record<string, unknown>>('/env/x%20y/caf%C3%A9?q=1');
      expect(env.SCRIPT_NAME).toBe(MOUNT);
      expect(env.PATH_INFO).toBe('/env/x y/caf\u00c3\u00a9');
      expect(env.QUERY_STRING).toBe('q=1');
      expect(env.REQUEST_URI).toBe(`${MOUNT}/env/x%20y/caf%C3%A9?q=1`);
      expect(env.SERVER_PORT).toBe(String(server.port));
      expect(env.CONTENT_LENGTH).toBe(quirks.contentLengthWithoutBody === '0' ? '0' : undefined);
      expect(env['tsgi.url_scheme']).toBe('http');
      if (protocol === 'scgi') expect(env.SCGI).toBe('1');
    });

    it('upload: a 10 MiB random binary POST arrives byte-exact and is echoed byte-exact', async () => {
      const body = randomBytes(UPLOAD_BYTES);
      const expected = sha256(body);
      const digest = await jsonOf<{ bytes: number; sha256: string; contentLength: string | null }>('/digest', {
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

    it(`download: 100 MiB arrive complete and in order${quirks.keepsContentLength ? '' : ' (Content-Length dropped, re-framed as chunked)'}`, async () => {
      const id = tag('download');
      const response = await fetch(url(`/download?bytes=${DOWNLOAD_BYTES}&id=${id}`));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-length')).toBe(quirks.keepsContentLength ? String(DOWNLOAD_BYTES) : null);
      expect(await countPatternBytes(response.body as ReadableStream<Uint8Array>)).toBe(DOWNLOAD_BYTES);
      await waitFor('the "done" line', () => backend.output().includes(`fastcgi-app[${id}]: done bytes=${DOWNLOAD_BYTES}`));
    });

    it("download: a client that leaves mid-download fires the app's tsgi.signal", async () => {
      const id = tag('gone');
      const received = await downloadThenLeave(server.port, `${MOUNT}/download?bytes=${4096 * MIB}&id=${id}`, 4 * MIB);
      expect(received).toBeGreaterThanOrEqual(4 * MIB);
      // SCGI and uwsgi have no error channel: tsgi.errors is the backend's stderr.
      const output = await waitFor(
        'the abort marker in the backend output',
        () => backend.output().includes(`fastcgi-app[${id}]: client went away after`) && backend.output(),
        ABORT_MARKER_TIMEOUT_MS,
      );
      const sent = Number(new RegExp(`fastcgi-app\\[${id}\\]: client went away after (\\d+) bytes`).exec(output)?.[1]);
      expect(sent).toBeLessThan(1024 * MIB);
    });

    it(`concurrency: ${CONCURRENCY} requests in flight at once all answer correctly`, async () => {
      const results = await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, n) => {
          const response = await fetch(url(`/slow?ms=50&n=${n}`));
          return { status: response.status, body: await response.text() };
        }),
      );
      const wrong = results.filter((result, n) => result.status !== 200 || (JSON.parse(result.body) as { n: string }).n !== String(n));
      expect(wrong.slice(0, 3), `${wrong.length} of ${CONCURRENCY} wrong`).toEqual([]);
    });

    describe(`shared conformance suite (fixtures/fastcgi-app.ts at ${MOUNT})`, () => {
      // The server starts in beforeAll, after collection: resolve its URL per request.
      const send: ConformanceClient = (request) => createFetchClient(url(''))(request);
      for (const testCase of conformanceCases) {
        it(testCase.name, async () => {
          testCase.check(await send(testCase.request), { scriptName: MOUNT, transport: title });
        });
      }
    });
  });
}
