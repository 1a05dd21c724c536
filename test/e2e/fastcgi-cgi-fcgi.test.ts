/**
 * libfcgi's `cgi-fcgi -bind -connect HOST:PORT` as an independent FastCGI client: it turns its own CGI
 * environment and stdin into a FastCGI request (with a padded record layout of its own, no FCGI_KEEP_CONN) and
 * prints the app's STDOUT, CGI-style, on its stdout. Here it drives `tsgi serve --fastcgi` directly, with the
 * SCRIPT_NAME/PATH_INFO splits the web servers really send, and runs the shared conformance suite.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conformanceCases, type ConformanceClient, type ConformanceResponse } from 'tsgi/testing';
import {
  allAvailable,
  CGI_FCGI_BIN,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  PROJECT_ROOT,
  startBackend,
  type BackendHandle,
} from './servers.js';

const MOUNT = '/app';
const APP = join(PROJECT_ROOT, 'test/e2e/fixtures/fastcgi-app.ts');

/** What cgi-fcgi printed and how it exited. */
interface CgiFcgiResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/** Runs `cgi-fcgi -bind -connect 127.0.0.1:PORT` with exactly `env` (the CGI variables) and `body` on stdin. */
function runCgiFcgi(port: number, env: Record<string, string>, body?: Uint8Array): Promise<CgiFcgiResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CGI_FCGI_BIN, ['-bind', '-connect', `127.0.0.1:${port}`], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (data: Buffer) => out.push(data));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr, code });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(body ? Buffer.from(body) : undefined);
  });
}

/** Parses a CGI response (RFC 3875 §6): header lines, a blank line, the body. `Status:` gives the status. */
function parseCgiResponse(raw: Buffer): ConformanceResponse & { reason: string } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
  if (end < 0) throw new Error(`cgi-fcgi: no header block in ${JSON.stringify(raw.subarray(0, 200).toString('latin1'))}`);
  const headers: Array<[string, string]> = [];
  let status = 200;
  let reason = 'OK';
  for (const line of raw.subarray(0, end).toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') {
      status = Number(value.slice(0, 3));
      reason = value.slice(4);
    } else {
      headers.push([name.toLowerCase(), value]);
    }
  }
  if (!headers.some(([name]) => name === 'status') && status === 200 && headers.some(([name]) => name === 'location')) status = 302;
  return { status, reason, headers, body: new Uint8Array(raw.subarray(end + (end === crlf ? 4 : 2))) };
}

/** The CGI variables of a GET to `uri` as nginx's stock fastcgi_params send them: no PATH_INFO. */
function baseVariables(uri: string, method = 'GET'): Record<string, string> {
  const [path = '', query = ''] = uri.split('?');
  return {
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'cgi-fcgi',
    SERVER_NAME: '127.0.0.1',
    SERVER_PORT: '8080',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: method,
    REQUEST_URI: uri,
    QUERY_STRING: query,
    SCRIPT_NAME: decodeURIComponent(path),
    REMOTE_ADDR: '127.0.0.1',
    REMOTE_PORT: '40000',
    HTTP_HOST: '127.0.0.1:8080',
  };
}

const availability = allAvailable(checkFiles([{ path: CGI_FCGI_BIN, package: 'libfcgi-bin' }]), checkFastCgiBuild());

describeWithServer('FastCGI driven by libfcgi\'s cgi-fcgi (tsgi serve --fastcgi, --mount /app)', availability, () => {
  let backend: BackendHandle;
  let unmounted: BackendHandle;

  beforeAll(async () => {
    [backend, unmounted] = await Promise.all([startBackend(APP, 'tcp', { mount: MOUNT }), startBackend(APP, 'tcp')]);
  });

  afterAll(async () => {
    await Promise.all([backend?.stop(), unmounted?.stop()]);
  });

  async function envFrom(port: number, variables: Record<string, string>): Promise<Record<string, unknown>> {
    const result = await runCgiFcgi(port, variables);
    const response = parseCgiResponse(result.stdout);
    expect(response.status, result.stdout.toString()).toBe(200);
    return JSON.parse(Buffer.from(response.body).toString('utf8')) as Record<string, unknown>;
  }

  it('the answer is CGI-style: Status line, headers, blank line, body; exit status 0', async () => {
    const result = await runCgiFcgi(backend.port, baseVariables('/app/hello'));
    expect(result.code).toBe(0);
    expect(result.stdout.toString('latin1')).toMatch(/^Status: 200 OK\r\n/);
    const response = parseCgiResponse(result.stdout);
    expect(Buffer.from(response.body).toString()).toBe('Hello, tsgi');
  });

  describe('--mount /app repairs each web server\'s SCRIPT_NAME/PATH_INFO split', () => {
    const expected = { SCRIPT_NAME: MOUNT, PATH_INFO: '/env/x y' };

    it('nginx stock params: SCRIPT_NAME=the whole path, no PATH_INFO', async () => {
      const env = await envFrom(backend.port, { ...baseVariables('/app/env/x%20y?q=1'), DOCUMENT_URI: '/app/env/x y' });
      expect(env).toMatchObject({ ...expected, QUERY_STRING: 'q=1' });
    });

    it('Apache mod_proxy_fcgi: SCRIPT_NAME=the whole decoded path, SCRIPT_FILENAME=proxy:fcgi://...', async () => {
      const env = await envFrom(backend.port, {
        ...baseVariables('/app/env/x%20y'),
        SCRIPT_FILENAME: 'proxy:fcgi://127.0.0.1:9000/app/env/x y',
      });
      expect(env).toMatchObject(expected);
    });

    it('SCRIPT_NAME=the whole path with an empty PATH_INFO', async () => {
      const env = await envFrom(backend.port, { ...baseVariables('/app/env/x%20y'), PATH_INFO: '' });
      expect(env).toMatchObject(expected);
    });

    it('a split at the wrong segment (lighttpd at the root splits after the first one)', async () => {
      const env = await envFrom(backend.port, { ...baseVariables('/app/env/x%20y'), SCRIPT_NAME: '/app/env', PATH_INFO: '/x y' });
      expect(env).toMatchObject(expected);
    });

    it('a correct split stays as it is', async () => {
      const env = await envFrom(backend.port, { ...baseVariables('/app/env/x%20y'), SCRIPT_NAME: MOUNT, PATH_INFO: '/env/x y' });
      expect(env).toMatchObject(expected);
    });

    it('a path outside the mount keeps the web server\'s split', async () => {
      const env = await envFrom(backend.port, { ...baseVariables('/other/env'), SCRIPT_NAME: '/other', PATH_INFO: '/env' });
      expect(env).toMatchObject({ SCRIPT_NAME: '/other', PATH_INFO: '/env' });
    });

    it('without --mount the web server\'s split is kept as sent', async () => {
      // REQUEST_URI says /app/env/x, but nothing asks tsgi to second-guess the server (Plack#299).
      const env = await envFrom(unmounted.port, { ...baseVariables('/app/env/x'), SCRIPT_NAME: '/rewritten', PATH_INFO: '/env/x' });
      expect(env).toMatchObject({ SCRIPT_NAME: '/rewritten', PATH_INFO: '/env/x' });
    });
  });

  it('POST: a 1 MiB body on stdin arrives byte-exact with its CONTENT_LENGTH', async () => {
    const body = randomBytes(1024 * 1024 + 3);
    const result = await runCgiFcgi(
      backend.port,
      { ...baseVariables('/app/digest', 'POST'), CONTENT_TYPE: 'application/octet-stream', CONTENT_LENGTH: String(body.length) },
      body,
    );
    const response = parseCgiResponse(result.stdout);
    expect(response.status).toBe(200);
    expect(JSON.parse(Buffer.from(response.body).toString())).toEqual({
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
      inputTerminated: true,
      contentLength: String(body.length),
    });
  });

  it('tsgi.errors arrives on the FastCGI STDERR stream (cgi-fcgi prints it on its stderr)', async () => {
    const result = await runCgiFcgi(backend.port, baseVariables('/app/log?id=cgi-fcgi-1'));
    expect(parseCgiResponse(result.stdout).status).toBe(200);
    expect(result.stderr).toContain('fastcgi-app[cgi-fcgi-1]: hello from tsgi.errors');
  });

  describe('shared conformance suite (requests built by hand, sent by cgi-fcgi)', () => {
    const send: ConformanceClient = async (request) => {
      const variables = baseVariables(`${MOUNT}${request.path}`, request.method);
      for (const [name, value] of request.headers ?? []) {
        const key = name.toLowerCase() === 'content-type' ? 'CONTENT_TYPE' : `HTTP_${name.toUpperCase().replace(/-/g, '_')}`;
        // Joined as HTTP joins repeated fields (cgi-fcgi takes the environment: a name can't repeat there).
        variables[key] = variables[key] !== undefined && key !== 'CONTENT_TYPE' ? `${variables[key]}${key === 'HTTP_COOKIE' ? '; ' : ', '}${value}` : value;
      }
      if (request.body) variables.CONTENT_LENGTH = String(request.body.length);
      // Like nginx's stock params: the app sees SCRIPT_NAME=/app only thanks to --mount.
      const result = await runCgiFcgi(backend.port, variables, request.body);
      return parseCgiResponse(result.stdout);
    };
    for (const testCase of conformanceCases) {
      it(testCase.name, async () => {
        testCase.check(await send(testCase.request), { scriptName: MOUNT, transport: 'cgi-fcgi' });
      });
    }
  });
});
