/**
 * `tsgi serve --cgi-bin DIR` (the built command) on every transport, with its flags and config keys, and the
 * memory of the serving process while 1 GiB goes up to a script and 1 GiB comes down from one.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FastCgiClient, parseFastCgiResponse } from '../../src/testing/fastcgi-client.js';
import { parseCgiHead } from '../../src/response/cgi-head-parse.js';
import { freePort, waitForLine } from './cli-helpers.js';
import { parseEnv } from '../host/env-text.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const MIB = 1024 * 1024;

let root = '';
let bin = '';
const children: ResultPromise[] = [];

/** Starts `tsgi serve ARGS` and waits for its startup line. */
async function start(args: string[]): Promise<{ child: ResultPromise; line: string }> {
  const child = execa('node', [BIN, 'serve', ...args], { reject: false, cwd: root, env: { CGI_SERVE_SECRET: 'must-not-leak' } });
  children.push(child);
  const line = await waitForLine(child, /tsgi: serving .*\n/);
  return { child, line };
}

async function stop(child: ResultPromise): Promise<void> {
  child.kill('SIGTERM');
  await child;
}

async function get(port: number, path: string, init: RequestInit = {}): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { redirect: 'manual', ...init });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

beforeAll(async () => {
  root = await realpath(await mkdtemp(join(tmpdir(), 'tsgi-serve-cgi-bin-')));
  bin = join(root, 'cgi-bin');
  await mkdir(bin);
  await writeFile(join(bin, 'env.cgi'), '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nenv\n', { mode: 0o755 });
  await writeFile(join(bin, 'count.cgi'), '#!/bin/sh\nsleep "${SLEEP_FIRST:-0}"\nn=$(wc -c)\nprintf "Content-Type: text/plain\\r\\nX-Content-Length: %s\\r\\n\\r\\n%s" "${CONTENT_LENGTH-unset}" "$n"\n', { mode: 0o755 });
  await writeFile(join(bin, 'zeros.cgi'), '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\r\\n\\r\\n"\nexec head -c "$ZERO_BYTES" /dev/zero\n', { mode: 0o755 });
  await writeFile(join(bin, 'slow.cgi'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
  await writeFile(join(bin, 'hello.pl'), 'print "Content-Type: text/plain\\n\\nperl $ENV{GIT_PROJECT_ROOT}";\n', { mode: 0o644 });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

describe('tsgi serve --cgi-bin', () => {
  it('serves over HTTP with no workers; the startup line names the folder; flags reach the scripts', async () => {
    const port = await freePort();
    const { child, line } = await start([
      '--cgi-bin', 'cgi-bin', '--http', `127.0.0.1:${port}`, '-w', '0', '--mount', '/cgi-bin',
      '--cgi-interpreter', '.pl=perl', '--cgi-env', 'GIT_PROJECT_ROOT=/srv/git', '--cgi-env', 'OTHER=2',
    ]);
    try {
      expect(line).toContain(`tsgi: serving cgi-bin ${bin} over HTTP at http://127.0.0.1:${port}/`);
      expect(line).toMatch(/mount \/cgi-bin; interpreters \.pl=perl/);
      const env = parseEnv((await get(port, '/cgi-bin/env.cgi/x?y=1')).text);
      expect(env).toMatchObject({ SCRIPT_NAME: '/cgi-bin/env.cgi', PATH_INFO: '/x', QUERY_STRING: 'y=1', GIT_PROJECT_ROOT: '/srv/git', OTHER: '2', REDIRECT_STATUS: '200' });
      expect(env).not.toHaveProperty('CGI_SERVE_SECRET');
      expect(env).not.toHaveProperty('TSGI_CGI_BIN');
      expect((await get(port, '/cgi-bin/hello.pl')).text).toBe('perl /srv/git');
    } finally {
      await stop(child);
    }
  });

  it('serves with 2 workers, the folder at the site root by default; --timeout is the scripts\' time (504)', async () => {
    const port = await freePort();
    const { child, line } = await start(['--cgi-bin', bin, '--http', `127.0.0.1:${port}`, '--workers', '2', '--timeout', '1']);
    try {
      expect(line).toContain(`tsgi: serving cgi-bin ${bin} over HTTP`);
      expect(line).toContain('with 2 workers');
      expect(parseEnv((await get(port, '/env.cgi')).text).SCRIPT_NAME).toBe('/env.cgi');
      const started = Date.now();
      expect((await get(port, '/slow.cgi')).status).toBe(504);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await stop(child);
    }
  });

  it('serves FastCGI, SCGI and uwsgi, the path re-split at --mount', async () => {
    for (const transport of ['fastcgi', 'scgi', 'uwsgi'] as const) {
      const port = await freePort();
      const { child } = await start(['--cgi-bin', bin, `--${transport}`, `127.0.0.1:${port}`, '-w', '1', '--mount', '/cgi']);
      try {
        const params: Array<[string, string]> = [
          ['CONTENT_LENGTH', '3'],
          ['REQUEST_METHOD', 'POST'],
          ['REQUEST_URI', '/cgi/count.cgi/p?q=1'],
          ['QUERY_STRING', 'q=1'],
          ['SERVER_PROTOCOL', 'HTTP/1.1'],
          ['SCRIPT_NAME', '/cgi/count.cgi/p'],
        ];
        const { status, body } = await exchange(transport, port, params, 'abc');
        expect(status, transport).toBe(200);
        expect(body, transport).toBe('3');
      } finally {
        await stop(child);
      }
    }
  });

  it('reads a chunked body ahead with --cgi-read-ahead (CONTENT_LENGTH set), else streams it without one', async () => {
    for (const readAhead of [false, true]) {
      const port = await freePort();
      const { child } = await start(['--cgi-bin', bin, '--http', `127.0.0.1:${port}`, '-w', '0', ...(readAhead ? ['--cgi-read-ahead'] : [])]);
      try {
        const reply = await upload(port, '/count.cgi', [Buffer.from('abc'), Buffer.from('de')]);
        expect(reply.body).toBe('5');
        expect(reply.contentLength).toBe(readAhead ? '5' : 'unset');
      } finally {
        await stop(child);
      }
    }
  });

  it('takes cgi-bin, cgi-interpreter (an object) and cgi-env (a list) from a config file', async () => {
    const port = await freePort();
    const config = join(root, 'tsgi.json');
    await writeFile(
      config,
      JSON.stringify({ 'cgi-bin': 'cgi-bin', http: `127.0.0.1:${port}`, workers: 0, 'cgi-interpreter': { '.pl': 'perl' }, 'cgi-env': ['GIT_PROJECT_ROOT=/from/file'] }),
    );
    const { child, line } = await start(['-c', config]);
    try {
      expect(line).toContain(`cgi-bin ${bin}`);
      expect((await get(port, '/hello.pl')).text).toBe('perl /from/file');
    } finally {
      await stop(child);
    }
  });

  it('refuses a MODULE with --cgi-bin, stray --cgi-* flags (exit 2), and a folder that is not one (exit 1)', async () => {
    const both = await execa('node', [BIN, 'serve', 'app.ts', '--cgi-bin', bin], { reject: false });
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('--cgi-bin DIR serves CGI programs, not an app');
    const stray = await execa('node', [BIN, 'serve', 'app.ts', '--cgi-env', 'A=1'], { reject: false });
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toContain('--cgi-env needs --cgi-bin DIR');
    const missing = await execa('node', [BIN, 'serve', '--cgi-bin', join(root, 'nope')], { reject: false });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('--cgi-bin is not a folder');
    const badPair = await execa('node', [BIN, 'serve', '--cgi-bin', bin, '--cgi-interpreter', 'php=/usr/bin/php-cgi'], { reject: false });
    expect(badPair.exitCode).toBe(1);
    expect(badPair.stderr).toContain('--cgi-interpreter must read .EXT=PATH');
  });
});

describe('tsgi serve --cgi-bin: memory stays flat for 1 GiB each way', () => {
  it('streams a 1 GiB chunked upload to a slow script and 1 GiB down to a paused client, RSS growth < 150 MiB', async () => {
    const port = await freePort();
    const child = execa(
      'node',
      [BIN, 'serve', '--cgi-bin', bin, '--http', `127.0.0.1:${port}`, '-w', '0', '--cgi-env', 'SLEEP_FIRST=1', '--cgi-env', `ZERO_BYTES=${1024 * MIB}`],
      { reject: false },
    );
    children.push(child);
    await waitForLine(child, /tsgi: serving/);
    const pid = child.pid as number;
    try {
      // Warm up, then take the baseline.
      await upload(port, '/count.cgi', [Buffer.alloc(MIB)]);
      const baseline = rss(pid);
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 50);
      try {
        const chunk = Buffer.alloc(256 * 1024, 0x61);
        const up = await upload(port, '/count.cgi', (function* () {
          for (let sent = 0; sent < 1024 * MIB; sent += chunk.length) yield chunk;
        })());
        expect(up.body).toBe(String(1024 * MIB));
        expect(up.contentLength).toBe('unset');
        const down = await download(port, '/zeros.cgi', 1_500);
        expect(down).toBe(1024 * MIB);
      } finally {
        clearInterval(sampler);
      }
      expect((peak - baseline) / MIB).toBeLessThan(150);
    } finally {
      await stop(child);
    }
  }, 180_000);
});

/** VmRSS of `pid`, in bytes. */
function rss(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** A chunked POST of `chunks`, written with backpressure; resolves with the body and X-Content-Length. */
function upload(port: number, path: string, chunks: Iterable<Buffer>): Promise<{ body: string; contentLength: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.on('end', () => resolve({ body, contentLength: res.headers['x-content-length'] as string | undefined }));
    });
    req.on('error', reject);
    const iterator = chunks[Symbol.iterator]();
    const pump = (): void => {
      for (let step = iterator.next(); !step.done; step = iterator.next()) {
        if (!req.write(step.value)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** GETs `path`, pausing `pauseMs` after the first 16 MiB; resolves with the number of body bytes. */
function download(port: number, path: string, pauseMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let received = 0;
      let paused = false;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (!paused && received > 16 * MIB) {
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), pauseMs);
        }
      });
      res.on('end', () => resolve(received));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One request over FastCGI, SCGI or uwsgi; the status and body of the CGI-style (or HTTP-style) answer. */
async function exchange(transport: 'fastcgi' | 'scgi' | 'uwsgi', port: number, params: Array<[string, string]>, body: string): Promise<{ status: number; body: string }> {
  if (transport === 'fastcgi') {
    const client = await FastCgiClient.connect(port);
    try {
      const reply = parseFastCgiResponse(await client.request({ params, stdin: body }));
      return { status: reply.status, body: reply.body.toString() };
    } finally {
      client.socket.destroy();
    }
  }
  let packet: Buffer;
  if (transport === 'scgi') {
    const ordered = [['CONTENT_LENGTH', String(Buffer.byteLength(body))], ['SCGI', '1'], ...params.filter(([name]) => name !== 'CONTENT_LENGTH')];
    const head = Buffer.from(ordered.map(([name, value]) => `${name}\0${value}\0`).join(''), 'latin1');
    packet = Buffer.concat([Buffer.from(`${head.length}:`), head, Buffer.from(','), Buffer.from(body)]);
  } else {
    const vars = Buffer.concat(
      params.map(([name, value]) => {
        const key = Buffer.from(name, 'latin1');
        const val = Buffer.from(value, 'latin1');
        const sizes = Buffer.alloc(2);
        sizes.writeUInt16LE(key.length);
        const valueSize = Buffer.alloc(2);
        valueSize.writeUInt16LE(val.length);
        return Buffer.concat([sizes, key, valueSize, val]);
      }),
    );
    const header = Buffer.from([0, vars.length & 0xff, vars.length >> 8, 0]);
    packet = Buffer.concat([header, vars, Buffer.from(body)]);
  }
  const output = await new Promise<Buffer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.write(packet);
  });
  if (transport === 'uwsgi') {
    // "HTTP/1.1 200 OK" first: parse the rest as a CGI head.
    const lineEnd = output.indexOf('\r\n');
    const status = Number(output.subarray(9, 12).toString());
    const head = parseCgiHead(output.subarray(lineEnd + 2));
    return { status, body: output.subarray(lineEnd + 2 + head.bodyStart).toString() };
  }
  const head = parseCgiHead(output);
  return { status: head.status, body: output.subarray(head.bodyStart).toString() };
}
