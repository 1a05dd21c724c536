/**
 * Express 5, Fastify 5, Koa 3 and Hono 4 (examples/<name>.ts, the same routes in each) behind real web
 * servers: as CGI scripts under Apache mod_cgi (cgi-bin/framework-<name>.ts, bundled once each with buildCgi)
 * and as `tsgi serve --fastcgi --mount /app` backends behind nginx. One list of cases runs against all eight
 * deployments: routing, JSON and form bodies, redirects, cookies, streaming, 404s and thrown errors, plus the
 * field-notes regressions T14-T18 and T38. A CGI request pays Node's start-up (~100-200 ms with a framework
 * bundle), so the cases keep to about fifteen requests per framework.
 */
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCgi } from '../../src/cli/build-command.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  describeWithServer,
  makeScratchDir,
  NGINX_BIN,
  PROJECT_ROOT,
  sleep,
  startApache,
  startBackend,
  startNginx,
  type BackendHandle,
  type ServerHandle,
} from './servers.js';

const FRAMEWORKS = ['express', 'fastify', 'koa', 'hono'] as const;
type Framework = (typeof FRAMEWORKS)[number];
const MOUNT = '/app';
/** GET /binary of every example: this many bytes, byte k being k % 256. */
const BINARY_BYTES = 70_000;
/** What each example's GET /stream writes, 60 ms apart. */
const STREAM_TEXT = 'chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n';
/** The first and last chunk of /stream must arrive at least this far apart (4 x 60 ms were slept between). */
const STREAM_MIN_SPREAD_MS = 150;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Where one framework's example answers: the URL of its mount point, e.g. ".../cgi-bin/framework-koa.cgi". */
type BaseUrl = () => string;

/** POSTs `body` in `pieces` parts `gapMs` apart, with a Content-Length (so CGI hosts pass it on). */
function trickle(url: string, body: Buffer, pieces: number, gapMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) },
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      const size = Math.ceil(body.length / pieces);
      for (let at = 0; at < body.length; at += size) {
        if (at > 0) await sleep(gapMs);
        req.write(body.subarray(at, at + size));
      }
      req.end();
    })();
  });
}

/** The cases every deployment runs, against the example of `framework` at `base()`. */
function defineCases(framework: Framework, base: BaseUrl): void {
  const url = (path: string): string => `${base()}${path}`;

  it('routing: GET / and GET /users/:id (JSON)', async () => {
    const hello = await fetch(url('/'));
    expect(hello.status).toBe(200);
    expect(await hello.text()).toBe(`Hello from ${framework}!\n`);
    const user = await fetch(url('/users/42'));
    expect(user.status).toBe(200);
    expect(user.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await user.json()).toEqual({ id: '42', framework });
  });

  it('JSON body parsing; T15: Content-Type and Content-Length arrive intact', async () => {
    const body = JSON.stringify({ name: 'Ada Lovelace', padding: 'x'.repeat(3000) });
    const response = await fetch(url('/json'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hello: 'Ada Lovelace', contentType: 'application/json', contentLength: String(body.length) });
  });

  it('urlencoded form post', async () => {
    const response = await fetch(url('/form'), { method: 'POST', body: new URLSearchParams({ name: 'Ada Lovelace', lang: 'en' }) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ name: 'Ada Lovelace', lang: 'en' });
  });

  it('redirect: 302 to /', async () => {
    const response = await fetch(url('/redirect'), { redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(new URL(response.headers.get('location') ?? '', base()).pathname).toBe('/');
  });

  it('cookies: two Set-Cookie headers stay separate (T38), the Cookie header reaches the app', async () => {
    const response = await fetch(url('/cookies'), { headers: { Cookie: 'x=1; y=2' } });
    expect(response.status).toBe(200);
    expect(response.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/; HttpOnly']);
    expect(await response.text()).toBe('cookie: x=1; y=2\n');
  });

  it('streaming: the chunks arrive as they are written, not all at the end', async () => {
    const response = await fetch(url('/stream'));
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const arrivals: number[] = [];
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(performance.now());
      text += Buffer.from(value).toString('utf8');
    }
    expect(text).toBe(STREAM_TEXT);
    expect(arrivals.length).toBeGreaterThan(1);
    expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(STREAM_MIN_SPREAD_MS);
  });

  it('a thrown error is a 500 that does not show its message; an unknown path is a 404', async () => {
    const boom = await fetch(url('/boom'));
    expect(boom.status).toBe(500);
    expect(await boom.text()).not.toMatch(/on purpose/);
    const missing = await fetch(url('/no/such/route'));
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
  });

  it('T14: write("a") then end("b") is "ab", without and with Content-Length', async () => {
    const plain = await fetch(url('/write-end'));
    expect([plain.status, await plain.text()]).toEqual([200, 'ab']);
    const sized = await fetch(url('/write-end?length'));
    expect([sized.status, await sized.text()]).toEqual([200, 'ab']);
  });

  it('T16: setHeader then writeHead keeps both headers', async () => {
    const response = await fetch(url('/headers'));
    expect(response.status).toBe(200);
    expect(response.headers.get('x-set-header')).toBe('yes');
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toBe('ok');
  });

  it('T18: a handler that starts reading 400 ms late gets all of a trickled body', async () => {
    const body = Buffer.alloc(96 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const response = await trickle(url('/late'), body, 6, 100);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ bytes: body.length, sha256: sha256(body) });
  });

  it('T38: binary bodies are byte-identical, both ways', async () => {
    const binary = Buffer.from(await (await fetch(url('/binary'))).arrayBuffer());
    expect(binary.length).toBe(BINARY_BYTES);
    expect(binary.every((byte, k) => byte === (k & 0xff))).toBe(true);
    const upload = Buffer.alloc(300_000);
    for (let i = 0; i < upload.length; i++) upload[i] = (i * 31 + (i >> 9)) & 0xff;
    const echoed = await fetch(url('/echo'), { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: upload });
    expect(echoed.status).toBe(200);
    expect(sha256(new Uint8Array(await echoed.arrayBuffer()))).toBe(sha256(upload));
  });
}

describeWithServer('frameworks as CGI scripts behind Apache (mod_cgi)', checkBinary(APACHE_BIN), () => {
  let server: ServerHandle | undefined;
  let scriptsDir = '';

  beforeAll(async () => {
    scriptsDir = await makeScratchDir('frameworks-cgi');
    const cgiDir = join(scriptsDir, 'cgi-bin');
    // Bundled once each: a framework bundle takes esbuild a few hundred ms.
    await Promise.all(
      FRAMEWORKS.map((name) => buildCgi(join(PROJECT_ROOT, 'cgi-bin', `framework-${name}.ts`), join(cgiDir, `framework-${name}.cgi`))),
    );
    server = await startApache('apache-cgi.conf', { cgiDir, label: 'apache-frameworks' });
  });

  afterAll(async () => {
    await server?.stop();
    if (scriptsDir && process.env.TSGI_E2E_KEEP !== '1') await rm(scriptsDir, { recursive: true, force: true });
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => defineCases(framework, () => `${server!.baseUrl}/cgi-bin/framework-${framework}.cgi`));
  }
});

describeWithServer('frameworks over FastCGI behind nginx (tsgi serve --fastcgi --mount /app)', allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()), () => {
  const deployments = new Map<Framework, { backend: BackendHandle; server: ServerHandle }>();

  beforeAll(async () => {
    await Promise.all(
      FRAMEWORKS.map(async (framework) => {
        const backend = await startBackend(join(PROJECT_ROOT, 'examples', `${framework}.ts`), 'tcp', { mount: MOUNT });
        try {
          const server = await startNginx('nginx-fastcgi.conf', {
            label: `nginx-${framework}`,
            vars: { BACKEND: backend.nginxAddress, MOUNT },
          });
          deployments.set(framework, { backend, server });
        } catch (error) {
          await backend.stop();
          throw error;
        }
      }),
    );
  });

  afterAll(async () => {
    await Promise.all([...deployments.values()].map(async ({ backend, server }) => {
      await server.stop();
      await backend.stop();
    }));
  });

  for (const framework of FRAMEWORKS) {
    describe(framework, () => {
      defineCases(framework, () => `${deployments.get(framework)!.server.baseUrl}${MOUNT}`);

      it('the thrown error was logged (backend stderr or, through tsgi.errors, nginx\'s error log)', async () => {
        const { backend, server } = deployments.get(framework)!;
        const output = `${await server.errorLog()}${backend.output()}`;
        expect(output).toMatch(/thrown on purpose/);
        expect(output).not.toMatch(/ERR_HTTP_HEADERS_SENT/);
      });
    });
  }
});
