import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import { encodeScgiRequest } from '../../src/protocol/scgi/netstring.js';
import { firstLine, freePort } from './cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');

/**
 * Logs a line to tsgi.errors and throws from a named function, so the log must hold both the line and a stack
 * that names `explodeForTheLog`.
 */
const FAILING_APP = `
function explodeForTheLog() {
  throw new Error('kaboom from the app');
}
export default (environ, startResponse) => {
  if (environ.PATH_INFO === '/ok') {
    startResponse('200 OK', [['Content-Type', 'text/plain']]);
    return ['ok'];
  }
  environ['tsgi.errors'].write('app says: the widget is missing\\n');
  explodeForTheLog();
};
`;

let dir = '';
let app = '';
const children: ResultPromise[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-error-log-'));
  app = join(dir, 'failing.mjs');
  await writeFile(app, FAILING_APP);
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function serve(args: string[]): ResultPromise {
  const child = execa('node', [BIN, 'serve', ...args], { reject: false, timeout: 60_000, cwd: dir });
  children.push(child);
  return child;
}

/** Waits until `file` contains every one of `parts` (log lines may land just after the response). */
async function logHolding(file: string, parts: (string | RegExp)[], timeoutMs = 10_000): Promise<string> {
  const started = Date.now();
  let text = '';
  for (;;) {
    text = await readFile(file, 'utf8').catch(() => '');
    if (parts.every((part) => (typeof part === 'string' ? text.includes(part) : part.test(text)))) return text;
    if (Date.now() - started > timeoutMs) return text;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const CGI_PARAMS = {
  GATEWAY_INTERFACE: 'CGI/1.1',
  SERVER_PROTOCOL: 'HTTP/1.1',
  SERVER_NAME: 'example.org',
  SERVER_PORT: '80',
  REQUEST_METHOD: 'GET',
  SCRIPT_NAME: '',
  PATH_INFO: '/fail',
  QUERY_STRING: '',
  REMOTE_ADDR: '203.0.113.7',
};

describe('tsgi serve --error-log FILE: the servers\' log in a file (hosts such as Caddy drop FCGI_STDERR)', () => {
  it('FastCGI (master and worker): the app\'s tsgi.errors line, its stack, and a refused body reach the file', async () => {
    const port = await freePort();
    const log = join(dir, 'fastcgi-error.log');
    const child = serve([app, '--fastcgi', `127.0.0.1:${port}`, '--error-log', log, '--max-body', '4']);
    await firstLine(child);
    const client = await FastCgiClient.connect(port);
    try {
      const failed = await client.request({ id: 1, keepConn: true, params: CGI_PARAMS });
      expect(parseFastCgiResponse(failed).status).toBe(500);
      const refused = await client.request({ id: 2, keepConn: true, params: { ...CGI_PARAMS, REQUEST_METHOD: 'POST', CONTENT_LENGTH: '10' }, stdin: '0123456789' });
      expect(parseFastCgiResponse(refused).status).toBe(413);
    } finally {
      client.socket.destroy();
    }
    const text = await logHolding(log, ['app says: the widget is missing', 'kaboom from the app', /at explodeForTheLog /, /maxBodyBytes/]);
    expect(text).toContain('app says: the widget is missing\n');
    expect(text).toContain('kaboom from the app');
    expect(text).toMatch(/at explodeForTheLog /);
    // The refusal names the limit (its wording is the limit log's).
    expect(text).toMatch(/maxBodyBytes/);
  });

  it('HTTP (single process): the app\'s line and stack, and a malformed request refused, reach the file, not stderr', async () => {
    const port = await freePort();
    const log = join(dir, 'http-error.log');
    const child = serve([app, '--http', `127.0.0.1:${port}`, '--workers', '0', '--error-log', log]);
    await firstLine(child);
    const response = await fetch(`http://127.0.0.1:${port}/fail`);
    expect(response.status).toBe(500);
    await rawExchange(port, 'GET /x HTTP/1.1\r\nHost: a\r\nBad Header Name: 1\r\n\r\n');
    const text = await logHolding(log, ['app says: the widget is missing', /at explodeForTheLog /, 'bad request refused']);
    expect(text).toContain('app says: the widget is missing\n');
    expect(text).toMatch(/at explodeForTheLog /);
    expect(text).toContain('tsgi: http: bad request refused');
    child.kill('SIGTERM');
    const result = await child;
    expect(result.stderr).not.toContain('kaboom from the app');
    expect(result.stderr).not.toContain('the widget is missing');
  });

  it('SCGI, from a config file (a relative "error-log" is relative to the file): line, stack, refusal', async () => {
    const port = await freePort();
    const confDir = join(dir, 'conf');
    await mkdir(confDir, { recursive: true });
    const config = join(confDir, 'tsgi.json');
    await writeFile(config, JSON.stringify({ app, scgi: `127.0.0.1:${port}`, workers: 0, 'max-body': '4', 'error-log': 'logs-scgi.log' }));
    const child = serve(['-c', config]);
    await firstLine(child);
    const scgi = (variables: Record<string, string>, body = ''): Promise<string> => rawExchange(port, encodeScgiRequest(variables, body));
    expect(await scgi({ ...CGI_PARAMS })).toMatch(/^Status: 500 /);
    expect(await scgi({ ...CGI_PARAMS, REQUEST_METHOD: 'POST' }, '0123456789')).toMatch(/^Status: 413 /);
    const log = join(confDir, 'logs-scgi.log');
    const text = await logHolding(log, ['app says: the widget is missing', /at explodeForTheLog /, /maxBodyBytes/]);
    expect(text).toContain('app says: the widget is missing\n');
    expect(text).toMatch(/at explodeForTheLog /);
    // The refusal names the limit (its wording is the limit log's).
    expect(text).toMatch(/maxBodyBytes/);
  });

  it('a path that cannot be opened stops the start with a clear message', async () => {
    const port = await freePort();
    const result = await serve([app, '--http', `127.0.0.1:${port}`, '--workers', '0', '--error-log', join(dir, 'missing-dir', 'e.log')]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('tsgi serve: cannot open the error log');
    expect(result.stderr).toContain('ENOENT');
  });
});

/** Sends `request` on a fresh TCP connection and resolves with everything read until the server closes it. */
function rawExchange(port: number, request: string | Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(request);
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}
