import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './cli-helpers.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');
const HELLO = 'examples/hello.ts';
const DATE = String.raw`\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`;


/** Starts `tsgi serve` and resolves once its startup line is out (bounded). */
async function start(args: string[]): Promise<{ child: ResultPromise; output: () => string }> {
  let output = '';
  const child = execa('node', [BIN, 'serve', HELLO, '--workers', '0', ...args], { reject: false, all: true });
  child.all?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 30_000;
  while (!/\(pid \d+\)\n/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no startup line:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { child, output: () => output };
}

/** One SCGI request on a fresh connection; resolves with everything the server sent. */
function scgiRequest(port: number, variables: Record<string, string>): Promise<string> {
  const head = Object.entries({ CONTENT_LENGTH: '0', SCGI: '1', ...variables })
    .map(([name, value]) => `${name}\0${value}\0`)
    .join('');
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('SCGI reply timed out')));
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
    socket.write(`${Buffer.byteLength(head)}:${head},`);
  });
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsgi-access-log-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tsgi serve --access-log', () => {
  it('HTTP: one Combined Log Format line per request, none lost on SIGTERM', async () => {
    const log = join(dir, 'http.log');
    const port = await freePort();
    const { child, output } = await start(['--http', `127.0.0.1:${port}`, '--access-log', log]);
    try {
      expect(output()).toContain(`tsgi: access log ${log}\n`);
      const first = await fetch(`http://127.0.0.1:${port}/first?q="x"`, { headers: { 'User-Agent': 'agent "one"', Referer: 'http://ref.example/' } });
      expect(first.status).toBe(200);
      await first.text();
      const head = await fetch(`http://127.0.0.1:${port}/head`, { method: 'HEAD', headers: { 'User-Agent': 'two' } });
      expect(head.status).toBe(200);
      // A burst, then SIGTERM at once: every line must reach the file before the process exits.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`http://127.0.0.1:${port}/n/${i}`).then((r) => r.text())));
      expect(burst).toHaveLength(20);
      child.kill('SIGTERM');
      expect((await child).exitCode).toBe(0);
      const lines = (await readFile(log, 'utf8')).split('\n');
      expect(lines.at(-1)).toBe('');
      expect(lines).toHaveLength(23);
      expect(lines[0]).toMatch(
        new RegExp(`^127\\.0\\.0\\.1 - - ${DATE} "GET /first\\?q=%22x%22 HTTP/1\\.1" 200 38 "http://ref\\.example/" "agent \\\\"one\\\\""$`),
      );
      expect(lines[1]).toMatch(new RegExp(`^127\\.0\\.0\\.1 - - ${DATE} "HEAD /head HTTP/1\\.1" 200 - "-" "two"$`));
      for (let i = 0; i < 20; i++) expect(lines.some((line) => line.includes(`"GET /n/${i} HTTP/1.1" 200 `))).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await child;
    }
  }, 60_000);

  it('SCGI: the same line format, from the variables the web server sent', async () => {
    const log = join(dir, 'scgi.log');
    const port = await freePort();
    const { child } = await start(['--scgi', `127.0.0.1:${port}`, '--mount', '/app', '--access-log', log]);
    try {
      const reply = await scgiRequest(port, {
        REQUEST_METHOD: 'GET',
        REQUEST_URI: '/app/page?a=1',
        QUERY_STRING: 'a=1',
        SERVER_PROTOCOL: 'HTTP/1.0',
        SERVER_NAME: 'example.org',
        SERVER_PORT: '80',
        REMOTE_ADDR: '203.0.113.9',
        REMOTE_USER: 'bob',
        HTTP_USER_AGENT: 'nginx-test',
      });
      expect(reply).toMatch(/^Status: 200 OK\r\n[\s\S]*You asked for \/app\/page\n$/);
      child.kill('SIGTERM');
      await child;
      const text = await readFile(log, 'utf8');
      expect(text).toMatch(new RegExp(`^203\\.0\\.113\\.9 - bob ${DATE} "GET /app/page\\?a=1 HTTP/1\\.0" 200 41 "-" "nginx-test"\\n$`));
    } finally {
      child.kill('SIGKILL');
      await child;
    }
  }, 60_000);

  it('"-" logs to stderr; a path that cannot be opened fails at startup', async () => {
    const port = await freePort();
    const { child, output } = await start(['--http', `127.0.0.1:${port}`, '--access-log', '-']);
    try {
      await (await fetch(`http://127.0.0.1:${port}/stderr`)).text();
      const deadline = Date.now() + 10_000;
      while (!output().includes('"GET /stderr HTTP/1.1" 200 ') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(output()).toMatch(new RegExp(`127\\.0\\.0\\.1 - - ${DATE} "GET /stderr HTTP/1\\.1" 200 39 "-" "`));
    } finally {
      child.kill('SIGTERM');
      await child;
    }
    const bad = await execa('node', [BIN, 'serve', HELLO, '--workers', '0', '--http', `127.0.0.1:${port}`, '--access-log', join(dir, 'no', 'such', 'dir.log')], {
      reject: false,
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain(`tsgi serve: cannot open the access log (${join(dir, 'no', 'such', 'dir.log')}: ENOENT)`);
  }, 60_000);
});
