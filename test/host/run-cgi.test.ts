import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, ProtocolError, RequestError, TsgiError } from '../../src/errors.js';
import { runCgi, spawnCgi } from '../../src/host/run-cgi.js';
import { parseEnv } from './env-text.js';

let dir: string;

/** Writes an executable script into the temp folder and returns its path. */
async function script(name: string, text: string, mode = 0o755): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode });
  return path;
}

/** True while `pid` is a live process (a zombie counts as dead: nothing may reap it in a container). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function waitForDeath(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return !isAlive(pid);
}

async function readPid(file: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(join(dir, file), 'utf8').catch(() => '');
    if (/^\d+\n/.test(text)) return Number(text.trim());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no pid in ${file}`);
}

const PERL_ENV = `#!/usr/bin/perl
print "Content-Type: text/plain\\r\\n\\r\\n";
print "CWD=", (require Cwd and Cwd::getcwd()), "\\n";
print "$_=$ENV{$_}\\n" for sort keys %ENV;
`;

const PERL_ECHO = `#!/usr/bin/perl
binmode STDIN; binmode STDOUT;
my $len = $ENV{CONTENT_LENGTH} || 0; my $data = '';
while (length($data) < $len) { my $n = read(STDIN, $data, $len - length($data), length($data)); last unless $n; }
print "Content-Type: application/octet-stream\\r\\nX-Length: ", length($data), "\\r\\n\\r\\n", $data;
`;

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'tsgi-run-cgi-')));
  process.env.SECRET_TOKEN = 'must-not-leak';
});

afterAll(async () => {
  delete process.env.SECRET_TOKEN;
  await rm(dir, { recursive: true, force: true });
});

describe('environment (B1-B10)', () => {
  it('gives the child the CGI variables, PATH and the allow-list only, in the script folder', async () => {
    const path = await script('env.cgi', PERL_ENV);
    const response = await runCgi(
      path,
      {
        method: 'POST',
        url: '/a%20b?x=1%2B2',
        protocol: 'HTTP/1.0',
        headers: [
          ['Host', 'example.org'],
          ['Content-Type', 'text/plain'],
          ['X-A', '1'],
          ['X-A', '1'],
          ['Cookie', 'a=1'],
          ['Cookie', 'b=2'],
          ['X_A', 'forged'],
          ['X.A', 'forged'],
          ['Proxy', 'evil:8080'],
          ['Authorization', 'Basic YTpi'],
        ],
        body: 'hello',
        remoteAddress: '10.1.2.3',
        auth: { type: 'Basic', user: 'ann' },
      },
      { scriptName: '/cgi-bin/env.cgi', serverPort: 8080, documentRoot: '/srv/www' },
    );
    expect(response.status).toBe(200);
    const env = parseEnv(response.body.toString());
    const { CWD, PATH, LANG, TZ, ...rest } = env;
    expect(CWD).toBe(dir);
    expect(PATH).toBe(process.env.PATH);
    if (process.env.LANG !== undefined) expect(LANG).toBe(process.env.LANG);
    if (process.env.TZ !== undefined) expect(TZ).toBe(process.env.TZ);
    expect(rest).toEqual({
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.0',
      SERVER_SOFTWARE: expect.stringMatching(/^tsgi\/\d+\.\d+\.\d+/),
      SERVER_NAME: 'example.org',
      SERVER_PORT: '8080',
      REQUEST_METHOD: 'POST',
      REQUEST_SCHEME: 'http',
      REMOTE_ADDR: '10.1.2.3',
      REMOTE_HOST: '10.1.2.3',
      SCRIPT_NAME: '/cgi-bin/env.cgi',
      SCRIPT_FILENAME: path,
      DOCUMENT_ROOT: '/srv/www',
      PATH_INFO: '/a b',
      PATH_TRANSLATED: '/srv/www/a b',
      QUERY_STRING: 'x=1%2B2',
      REQUEST_URI: '/cgi-bin/env.cgi/a%20b?x=1%2B2',
      CONTENT_LENGTH: '5',
      CONTENT_TYPE: 'text/plain',
      AUTH_TYPE: 'Basic',
      REMOTE_USER: 'ann',
      HTTP_HOST: 'example.org',
      HTTP_X_A: '1, 1',
      HTTP_COOKIE: 'a=1; b=2',
    });
  });

  it('keeps a parent secret away unless allow-listed; adds extraEnv; passes Authorization on request', async () => {
    const path = await script('env2.cgi', PERL_ENV);
    const plain = parseEnv((await runCgi(path)).body.toString());
    expect(plain).not.toHaveProperty('SECRET_TOKEN');
    expect(plain).not.toHaveProperty('PATH_INFO');
    expect(plain).not.toHaveProperty('CONTENT_LENGTH');
    expect(plain.QUERY_STRING).toBe('');
    expect(plain.SCRIPT_NAME).toBe('/env2.cgi');
    expect(plain.DOCUMENT_ROOT).toBe(dir);
    const opened = parseEnv(
      (
        await runCgi(
          path,
          { headers: { Authorization: 'Basic YTpi' } },
          { envAllowList: ['SECRET_TOKEN'], extraEnv: { REDIRECT_STATUS: '200' }, passAuthorization: true },
        )
      ).body.toString(),
    );
    expect(opened).toMatchObject({ SECRET_TOKEN: 'must-not-leak', REDIRECT_STATUS: '200', HTTP_AUTHORIZATION: 'Basic YTpi' });
    expect(opened).not.toHaveProperty('LANG');
  });

  it('passes UTF-8 PATH_INFO bytes exactly, and other bytes lossily with REQUEST_URI raw (byte policy)', async () => {
    const path = await script(
      'bytes.cgi',
      '#!/usr/bin/perl\nprint "Content-Type: text/plain\\n\\n", unpack("H*", $ENV{PATH_INFO}), " $ENV{REQUEST_URI}";\n',
    );
    expect((await runCgi(path, { url: '/caf%C3%A9' })).body.toString()).toBe('2f636166c3a9 /bytes.cgi/caf%C3%A9');
    expect((await runCgi(path, { url: '/%E9' })).body.toString()).toBe('2fc3a9 /bytes.cgi/%E9');
  });

  it('answers 404 for "%2F" in the path without running the script (B2)', async () => {
    const path = await script('slash.cgi', `#!/bin/sh\ntouch "${dir}/slash-ran"\nprintf 'Content-Type: a\\n\\n'\n`);
    const response = await runCgi(path, { url: '/a%2Fb' });
    expect(response.status).toBe(404);
    expect(response.error).toBeInstanceOf(RequestError);
    expect(response.stderr).toContain('cgi-host: encoded slash in the path (/a%2Fb)');
    expect(existsSync(join(dir, 'slash-ran'))).toBe(false);
  });

  it('runs a Node CGI script', async () => {
    const path = await script(
      'node.cgi',
      `#!${process.execPath}
let body = '';
process.stdin.on('data', (d) => (body += d)).on('end', () => {
  process.stdout.write('Content-Type: application/json\\r\\n\\r\\n' + JSON.stringify({ xa: process.env.HTTP_X_A, body, secret: process.env.SECRET_TOKEN ?? null }));
});
`,
    );
    const response = await runCgi(path, { method: 'PUT', headers: { 'X-A': 'node' }, body: 'payload' });
    expect(JSON.parse(response.body.toString())).toEqual({ xa: 'node', body: 'payload', secret: null });
  });
});

describe('request bodies and pipes', () => {
  it('round-trips a binary body byte for byte', async () => {
    const path = await script('echo.cgi', PERL_ECHO);
    const body = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256));
    const response = await runCgi(path, { method: 'POST', body });
    expect(response.headers).toContainEqual(['X-Length', '4096']);
    expect(response.body.equals(body)).toBe(true);
    expect(response.exitCode).toBe(0);
  });

  it('streams a body with Content-Length, and reads ahead one without (B4)', async () => {
    const path = await script('echo2.cgi', PERL_ECHO);
    const chunks = () => Readable.from([Buffer.from('abc'), Buffer.from('def')]);
    const sized = await runCgi(path, { method: 'POST', headers: { 'Content-Length': '6' }, body: chunks() });
    expect(sized.body.toString()).toBe('abcdef');
    const unsized = await runCgi(path, { method: 'POST', body: chunks() });
    expect(unsized.body.toString()).toBe('abcdef');
    const tooLong = await runCgi(path, { method: 'POST', body: chunks() }, { maxUnsizedBodyBytes: 4 });
    expect(tooLong.status).toBe(411);
    expect(tooLong.error?.message).toMatch(/maxUnsizedBodyBytes \(4\)/);
  });

  it('completes when the script writes 1 MiB to stderr before reading a 1 MiB body (B11)', async () => {
    const path = await script(
      'stderr-first.cgi',
      PERL_ECHO.replace('binmode STDIN;', 'binmode STDIN; print STDERR "e" x 1048576;'),
    );
    const body = Buffer.alloc(1024 * 1024, 0x62);
    const started = Date.now();
    const response = await runCgi(path, { method: 'POST', body }, { maxStderrBytes: 2 * 1024 * 1024, timeoutMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(response.status).toBe(200);
    expect(response.body.equals(body)).toBe(true);
    expect(response.stderr).toBe('e'.repeat(1024 * 1024));
  });

  it('forwards stderr to onStderr and never into the body; caps the collected text', async () => {
    const path = await script('stderr.cgi', "#!/bin/sh\necho 'to the log' >&2\nprintf 'Content-Type: text/plain\\n\\nbody'\necho 0123456789 >&2\n");
    const seen: string[] = [];
    const response = await runCgi(path, {}, { onStderr: (text) => seen.push(text), maxStderrBytes: 15 });
    expect(response.body.toString()).toBe('body');
    expect(seen.join('')).toBe('to the log\n0123456789\n');
    expect(response.stderr).toBe('to the log\n0123\n[cgi-host: stderr truncated, 7 chars dropped]\n');
  });

  it('cuts the collected body at maxBodyBytes, stops the script and says so', async () => {
    const path = await script('endless.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\n'\nexec yes\n");
    const response = await runCgi(path, {}, { maxBodyBytes: 100_000 });
    expect(response.body.length).toBe(100_000);
    expect(response.error?.message).toBe('cgi-host: response body exceeds maxBodyBytes (100000)');
    expect(response.signal).toBe('SIGTERM');
  });

  it('does not fail when the script ignores its body (EPIPE)', async () => {
    const path = await script('no-read.cgi', "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nignored'\n");
    const response = await runCgi(path, { method: 'POST', body: Buffer.alloc(4 * 1024 * 1024) });
    expect(response.body.toString()).toBe('ignored');
    expect(response.error).toBeUndefined();
  });
});

describe('response heads (B12-B15)', () => {
  it('relays status, headers in order and two Set-Cookie; drops hop-by-hop fields', async () => {
    const path = await script(
      'head.cgi',
      "#!/bin/sh\nprintf 'status: 404 Nope\\nContent-Type: text/plain\\nSet-Cookie: a=1\\nSet-Cookie: b=2\\nTransfer-Encoding: chunked\\nConnection: close\\nKeep-Alive: 5\\n\\nmissing'\n",
    );
    const response = await runCgi(path);
    expect(response.status).toBe(404);
    expect(response.reason).toBe('Nope');
    expect(response.headers).toEqual([
      ['Content-Type', 'text/plain'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
    expect(response.body.toString()).toBe('missing');
    expect(response.stderr).toContain('hop-by-hop field removed from the response (Transfer-Encoding: chunked)');
  });

  it.each([
    ['Status: x', "printf 'Status: x\\nContent-Type: a\\n\\n'", /bad Status line \(x\)/],
    ['empty output', 'exit 0', /empty output/],
    ['no blank line', "printf 'Content-Type: text/plain\\nbody'", /blank line/],
    ['line without colon', "printf 'Content-Type: a\\nnonsense\\n\\n'", /line without ":"/],
    ['no Content-Type, Location or Status', "printf 'X-A: 1\\n\\n'", /none of Content-Type, Location, Status/],
    ['Status twice', "printf 'Status: 200 OK\\nStatus: 201 Created\\nContent-Type: a\\n\\n'", /Status twice/],
    ['Location twice', "printf 'Location: /a\\nLocation: /b\\n\\n'", /Location twice/],
    ['an endless head', "yes 'X-A: 1'", /head exceeds maxHeadBytes \(65536\)/],
  ])('answers 500 for %s and logs the defect (B12)', async (_name, command, message) => {
    const path = await script(`bad-${Math.random().toString(36).slice(2)}.cgi`, `#!/bin/sh\n${command}\n`);
    const response = await runCgi(path, {}, { timeoutMs: 5000 });
    expect(response.status).toBe(500);
    expect(response.reason).toBe('Internal Server Error');
    expect(response.error).toBeInstanceOf(ProtocolError);
    expect(response.error?.message).toMatch(message);
    expect(response.stderr).toMatch(message);
    expect(response.headers).toEqual([['Content-Type', 'text/plain; charset=utf-8']]);
    expect(response.body.toString()).toBe('500 Internal Server Error\n');
  });

  it('answers a local redirect with a 302 to it, without re-dispatch (B13a)', async () => {
    const path = await script('local.cgi', "#!/bin/sh\nprintf 'Location: /x?q=1\\n\\n'\n");
    const response = await runCgi(path);
    expect(response.status).toBe(302);
    expect(response.headers).toEqual([['Location', '/x?q=1']]);
    expect(response.body.length).toBe(0);
  });

  it('answers Location: http://h/ alone with 302, and Location + Status 301 + body as such (B13b, c)', async () => {
    const client = await script('client.cgi', "#!/bin/sh\nprintf 'Location: http://h/\\r\\n\\r\\n'\n");
    expect((await runCgi(client)).status).toBe(302);
    const moved = await script(
      'moved.cgi',
      "#!/bin/sh\nprintf 'Status: 301 Moved Permanently\\r\\nLocation: http://h/\\r\\nContent-Type: text/html\\r\\n\\r\\n<a>moved</a>'\n",
    );
    const response = await runCgi(moved);
    expect(response.status).toBe(301);
    expect(response.headers).toEqual([
      ['Location', 'http://h/'],
      ['Content-Type', 'text/html'],
    ]);
    expect(response.body.toString()).toBe('<a>moved</a>');
  });

  it('discards the body of a HEAD response (B14)', async () => {
    const path = await script('head-method.cgi', "#!/bin/sh\nprintf 'Content-Type: text/plain\\nContent-Length: 5\\n\\nhello'\necho \"$REQUEST_METHOD\" >&2\n");
    const response = await runCgi(path, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers).toContainEqual(['Content-Length', '5']);
    expect(response.body.length).toBe(0);
    expect(response.stderr).toBe('HEAD\n');
    expect(response.error).toBeUndefined();
  });

  it('relays NPH output unmodified (B15)', async () => {
    const output = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const path = await script('nph-raw.cgi', `#!/usr/bin/perl\nbinmode STDOUT;\nprint ${JSON.stringify(output)};\n`);
    const response = await runCgi(path);
    expect(response.nph).toBe(true);
    expect(response.status).toBe(200);
    expect(response.headers).toEqual([
      ['Transfer-Encoding', 'chunked'],
      ['Connection', 'close'],
    ]);
    expect(response.body.toString('latin1')).toBe(output);
    const head = await runCgi(path, { method: 'HEAD' });
    expect(head.body.toString()).toBe('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
  });

  it('can force NPH parsing for a script without the prefix', async () => {
    const path = await script('raw.cgi', "#!/bin/sh\nprintf 'HTTP/1.0 404 Gone Away\\r\\nX: 1\\r\\n\\r\\n'\n");
    const response = await runCgi(path, {}, { nph: true });
    expect(response).toMatchObject({ nph: true, status: 404, reason: 'Gone Away' });
  });
});

describe('exits, deaths and timeouts (B16-B17)', () => {
  it('keeps the response of a script that exits non-zero after its head, and logs the exit (B17)', async () => {
    const path = await script('exit3.cgi', "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\npartial'\nexit 3\n");
    const response = await runCgi(path);
    expect(response).toMatchObject({ status: 200, exitCode: 3, signal: null });
    expect(response.body.toString()).toBe('partial');
    expect(response.error).toBeUndefined();
    expect(response.stderr).toBe('cgi-host: script exited with code 3\n');
  });

  it('errors the streamed body when the script dies mid-body (B17)', async () => {
    const path = await script(
      'die.cgi',
      '#!/usr/bin/perl\n$| = 1;\nprint "Content-Type: text/plain\\n\\nfirst part";\nkill "KILL", $$;\n',
    );
    const stream = await spawnCgi(path);
    expect(stream.status).toBe(200);
    const received: Buffer[] = [];
    const failure = await (async () => {
      for await (const chunk of stream.body) received.push(chunk as Buffer);
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ProtocolError);
    expect((failure as Error).message).toBe('cgi-host: script killed by SIGKILL mid-body');
    expect(Buffer.concat(received).toString()).toBe('first part');
    expect(await stream.done).toMatchObject({ exitCode: null, signal: 'SIGKILL' });

    const collected = await runCgi(path);
    expect(collected.body.toString()).toBe('first part');
    expect(collected.error?.message).toMatch(/killed by SIGKILL/);
  });

  it('errors a body shorter than its Content-Length and cuts a longer one', async () => {
    const short = await script('short.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\nContent-Length: 10\\n\\nhello'\n");
    const shortResponse = await runCgi(short);
    expect(shortResponse.body.toString()).toBe('hello');
    expect(shortResponse.error?.message).toBe('cgi-host: body shorter than Content-Length (5 < 10)');
    const long = await script('long.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\nContent-Length: 2\\n\\nhello'\n");
    const longResponse = await runCgi(long);
    expect(longResponse.body.toString()).toBe('he');
    expect(longResponse.error).toBeUndefined();
    expect(longResponse.stderr).toContain('body longer than Content-Length');
  });

  it('kills a silent script and everything it started after timeoutMs, and answers 504 (B16)', async () => {
    const path = await script('silent.cgi', `#!/bin/sh\nsleep 30 &\necho $! > "${dir}/silent-child.pid"\necho $$ > "${dir}/silent.pid"\nwait\n`);
    const started = Date.now();
    const response = await runCgi(path, {}, { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(response.status).toBe(504);
    expect(response.error?.message).toBe('cgi-host: no response head within timeoutMs (300)');
    expect(response.signal).toBe('SIGTERM');
    expect(await waitForDeath(await readPid('silent.pid'), 2000)).toBe(true);
    expect(await waitForDeath(await readPid('silent-child.pid'), 2000)).toBe(true);
  });

  it('times out a head that never completes', async () => {
    const path = await script('half.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n'\nexec sleep 30\n");
    const response = await runCgi(path, {}, { timeoutMs: 200 });
    expect(response.status).toBe(504);
  });

  it('kills a script that goes silent mid-body while the body is read, and errors the body', async () => {
    const path = await script('stalls.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\nstart'\nexec sleep 30\n");
    const started = Date.now();
    const response = await runCgi(path, {}, { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('start');
    expect(response.error?.message).toBe('cgi-host: no body output within timeoutMs (300)');
    expect(response.signal).toBe('SIGTERM');
  });

  it('does not count time the consumer spends not reading', async () => {
    const path = await script('steady.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\n'\nhead -c 1000000 /dev/zero\n");
    const stream = await spawnCgi(path, {}, { timeoutMs: 200 });
    const iterator = stream.body[Symbol.asyncIterator]();
    let total = ((await iterator.next()).value as Buffer).length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) total += (step.value as Buffer).length;
    expect(total).toBe(1_000_000);
    expect(await stream.done).toMatchObject({ exitCode: 0, signal: null });
  });

  it('sends SIGKILL when SIGTERM is ignored', async () => {
    const path = await script('stubborn.cgi', `#!/bin/sh\ntrap '' TERM\necho $$ > "${dir}/stubborn.pid"\nsleep 30\n`);
    const started = Date.now();
    const response = await runCgi(path, {}, { timeoutMs: 200 });
    expect(response.status).toBe(504);
    expect(response.signal).toBe('SIGKILL');
    expect(Date.now() - started).toBeLessThan(6000);
    expect(await waitForDeath(await readPid('stubborn.pid'), 1000)).toBe(true);
  });

  it('kills the script when the client goes away before the head (B16)', async () => {
    const path = await script('wait.cgi', `#!/bin/sh\necho $$ > "${dir}/wait.pid"\nexec sleep 30\n`);
    const controller = new AbortController();
    const pending = runCgi(path, {}, { signal: controller.signal });
    const pid = await readPid('wait.pid');
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    expect(await waitForDeath(pid, 3000)).toBe(true);
  });

  it('kills the script and errors the body when the client goes away mid-body', async () => {
    const path = await script(
      'drip.cgi',
      `#!/bin/sh\necho $$ > "${dir}/drip.pid"\nprintf 'Content-Type: text/plain\\n\\n'\nwhile :; do echo tick; sleep 0.05; done\n`,
    );
    const controller = new AbortController();
    const stream = await spawnCgi(path, {}, { signal: controller.signal });
    const iterator = stream.body[Symbol.asyncIterator]();
    expect(((await iterator.next()).value as Buffer).toString()).toMatch(/^tick/);
    controller.abort();
    await expect(iterator.next()).rejects.toBeInstanceOf(AbortError);
    expect(await waitForDeath(await readPid('drip.pid'), 3000)).toBe(true);
    expect((await stream.done).signal).toBe('SIGTERM');
  });

  it('rejects at once when the signal is already aborted', async () => {
    const path = await script('never.cgi', `#!/bin/sh\ntouch "${dir}/never-ran"\n`);
    await expect(runCgi(path, {}, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(existsSync(join(dir, 'never-ran'))).toBe(false);
  });

  it('does not hang on a script that closes stdout and lingers, or leaves a child holding it', async () => {
    const closes = await script('closes.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\nok'\nexec >&-\nsleep 30\n");
    const lingering = await runCgi(closes, {}, { timeoutMs: 300 });
    expect(lingering.body.toString()).toBe('ok');
    expect(lingering.signal).toBe('SIGTERM');
    const leaves = await script('leaves.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\nok'\n(sleep 30; echo late) &\nexit 0\n");
    const started = Date.now();
    const orphaned = await runCgi(leaves, {}, { timeoutMs: 300 });
    expect(orphaned.body.toString()).toBe('ok');
    expect(orphaned.exitCode).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('streams a 20 MB response with backpressure (spawnCgi)', async () => {
    const marker = join(dir, 'big-done');
    const path = await script(
      'big.cgi',
      `#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\nhead -c 20000000 /dev/zero\ntouch "${marker}"\n`,
    );
    const stream = await spawnCgi(path);
    let settled = false;
    void stream.done.then(() => (settled = true));
    const iterator = stream.body[Symbol.asyncIterator]();
    let total = ((await iterator.next()).value as Buffer).length;
    // Nobody reads for a while: a buffering host would swallow all 20 MB and let the script finish.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(settled).toBe(false);
    expect(existsSync(marker)).toBe(false);
    expect(stream.body.readableLength).toBeLessThanOrEqual(128 * 1024);
    // What the host holds for the consumer stays within one high-water mark and a pipe read, all the way.
    let peakBuffered = 0;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      total += (step.value as Buffer).length;
      peakBuffered = Math.max(peakBuffered, stream.body.readableLength);
    }
    expect(total).toBe(20_000_000);
    expect(peakBuffered).toBeLessThanOrEqual(128 * 1024);
    expect((await stream.done).exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});

describe('scripts that cannot run', () => {
  it.each([
    ['missing', async () => join(dir, 'missing.cgi'), 404, /script not found/],
    ['not executable', async () => script('noexec.cgi', '#!/bin/sh\n', 0o644), 403, /script is not executable/],
    ['a folder', async () => dir, 403, /not a regular file/],
  ])('answers %s with %i and an error, never a rejection', async (_name, makePath, status, message) => {
    const response = await runCgi(await makePath());
    expect(response.status).toBe(status);
    expect(response.error).toBeInstanceOf(RequestError);
    expect(response.error?.message).toMatch(message);
    expect(response.stderr).toMatch(message);
    expect(response.exitCode).toBeNull();
  });

  it('answers 500 when the interpreter named by #! does not exist', async () => {
    const path = await script('bad-shebang.cgi', '#!/nonexistent/interpreter\n');
    const response = await runCgi(path);
    expect(response.status).toBe(500);
    expect(response.error).toBeInstanceOf(TsgiError);
    expect(response.stderr).toMatch(/cannot start the script \(ENOENT\)/);
  });

  it('runs a non-executable script through an interpreter', async () => {
    const path = await script('plain.pl', 'print "Content-Type: text/plain\\n\\nperl says hi";\n', 0o644);
    expect((await runCgi(path, {}, { interpreter: 'perl' })).body.toString()).toBe('perl says hi');
  });

  it('answers a bad request with 400 before starting anything', async () => {
    const path = await script('bad-request.cgi', `#!/bin/sh\ntouch "${dir}/bad-request-ran"\n`);
    const response = await runCgi(path, { method: 'G T' });
    expect(response.status).toBe(400);
    expect(existsSync(join(dir, 'bad-request-ran'))).toBe(false);
    const head = await runCgi(path, { method: 'HEAD', url: '/%2F' });
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });
});
