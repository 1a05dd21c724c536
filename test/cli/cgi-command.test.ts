import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCgiCommand } from '../../src/cli/cgi-command.js';

let dir: string;
let echo: string;

/** Runs the command with in-memory streams; returns the exit status and what was written. */
async function run(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const input = stdin === undefined ? undefined : PassThrough.from([Buffer.from(stdin)]);
  const code = await runCgiCommand(args, { stdout, stderr, ...(input ? { stdin: input } : {}) });
  return { code, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString() };
}

async function script(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode: 0o755 });
  return path;
}

beforeAll(async () => {
  dir = await realpath(await mkdtemp(join(tmpdir(), 'tsgi-cgi-command-')));
  echo = await script(
    'echo.cgi',
    `#!/usr/bin/perl
binmode STDIN; binmode STDOUT;
my $len = $ENV{CONTENT_LENGTH} || 0; my $data = '';
read(STDIN, $data, $len) if $len;
print STDERR "log line\\n";
print "Content-Type: text/plain\\r\\nX-Len: ", (defined $ENV{CONTENT_LENGTH} ? $ENV{CONTENT_LENGTH} : 'unset'), "\\r\\n\\r\\n";
print join('|', $ENV{REQUEST_METHOD}, $ENV{PATH_INFO} // '', $ENV{QUERY_STRING}, $ENV{HTTP_X_A} // '', $ENV{CONTENT_TYPE} // '', $ENV{EXTRA} // '', $data);
`,
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tsgi cgi: output', () => {
  it('prints the status line, headers and body like curl -i; stderr goes to stderr', async () => {
    const result = await run([echo]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Len: unset\r\n\r\nGET||||||');
    expect(result.stderr).toBe('log line\n');
  });

  it('passes METHOD, URL, headers, data and env', async () => {
    const result = await run([echo, 'PUT', '/p%20q?x=1', '-H', 'X-A: 1', '-d', 'a=1', '--data', 'b=2', '-e', 'EXTRA=yes', '--include']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('X-Len: 7\r\n');
    expect(result.stdout.endsWith('\r\n\r\nPUT|/p q|x=1|1|application/x-www-form-urlencoded|yes|a=1&b=2')).toBe(true);
  });

  it('defaults to POST with data, takes a URL without METHOD and prints only the body with --body-only', async () => {
    const result = await run([echo, '?q', '--data-binary', 'raw', '-H', 'Content-Type: text/csv', '--body-only']);
    expect(result).toMatchObject({ code: 0, stdout: 'POST||q||text/csv||raw' });
  });

  it('reads --data @file without newlines, --data-binary @file byte for byte, and @- from stdin', async () => {
    const file = join(dir, 'data.txt');
    await writeFile(file, 'a=1\r\nb=2\n');
    expect((await run([echo, '--body-only', '-d', `@${file}`])).stdout).toBe('POST||||application/x-www-form-urlencoded||a=1b=2');
    expect((await run([echo, '--body-only', '--data-binary', `@${file}`])).stdout).toBe('POST||||||a=1\r\nb=2\n');
    expect((await run([echo, '--body-only', '--data-binary', '@-'], 'from stdin')).stdout).toBe('POST||||||from stdin');
  });

  it('prints NPH output as it is', async () => {
    const nph = await script('nph-hi.cgi', "#!/bin/sh\nprintf 'HTTP/1.0 201 Made\\r\\nX: 1\\r\\n\\r\\nhi'\n");
    expect(await run([nph])).toMatchObject({ code: 0, stdout: 'HTTP/1.0 201 Made\r\nX: 1\r\n\r\nhi' });
  });

  it('exits 0 for a complete response from a script that exits non-zero', async () => {
    const failing = await script('exit2.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\ndone'\nexit 2\n");
    const result = await run([failing]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('cgi-host: script exited with code 2\n');
  });
});

describe('tsgi cgi: failures exit 1', () => {
  it('for a malformed head (500)', async () => {
    const bad = await script('bad.cgi', "#!/bin/sh\nprintf 'Status: x\\n\\n'\n");
    const result = await run([bad]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n500 Internal Server Error\n');
    expect(result.stderr).toContain('cgi-host: bad Status line (x)');
  });

  it('for a missing script (404)', async () => {
    const result = await run([join(dir, 'missing.cgi')]);
    expect(result.code).toBe(1);
    expect(result.stdout.startsWith('HTTP/1.1 404 Not Found\r\n')).toBe(true);
    expect(result.stderr).toContain('cgi-host: script not found');
  });

  it('for a timeout (504)', async () => {
    const silent = await script('silent.cgi', '#!/bin/sh\nexec sleep 30\n');
    const result = await run([silent, '--timeout', '0.2']);
    expect(result.code).toBe(1);
    expect(result.stdout.startsWith('HTTP/1.1 504 Gateway Timeout\r\n')).toBe(true);
  });

  it('for a body cut off by a death mid-body', async () => {
    const dies = await script('dies.cgi', '#!/usr/bin/perl\n$| = 1;\nprint "Content-Type: a\\n\\npart";\nkill "KILL", $$;\n');
    const result = await run([dies]);
    expect(result.code).toBe(1);
    expect(result.stdout.endsWith('part')).toBe(true);
    expect(result.stderr).toContain('killed by SIGKILL');
  });

  it('when stdout goes away, and the script is stopped', async () => {
    const endless = await script('yes.cgi', "#!/bin/sh\nprintf 'Content-Type: a\\n\\n'\nexec yes\n");
    let written = 0;
    const stdout: Writable = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        written += chunk.length;
        if (written > 100_000) callback(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
        else setTimeout(callback, 1);
      },
    });
    stdout.on('error', () => {});
    const code = await runCgiCommand([endless], { stdout, stderr: new PassThrough() });
    expect(code).toBe(1);
  });
});

describe('tsgi cgi: usage errors exit 2', () => {
  it.each([
    [[], /expected a SCRIPT/],
    [['s.cgi', '--nope'], /Unknown option '--nope'/],
    [['s.cgi', '-H', 'no colon'], /header must read 'Name: value' \(no colon\)/],
    [['s.cgi', '--timeout', 'soon'], /--timeout must be a positive number of seconds \(soon\)/],
    [['s.cgi', '--timeout', '0'], /--timeout must be a positive number/],
    [['s.cgi', '/a', '/b'], /more than one URL \(\/b\)/],
    [['s.cgi', '/a', 'GET'], /expected METHOD then a URL/],
    [['s.cgi', 'http://h/x'], /expected METHOD then a URL/],
    [['s.cgi', '-i', '--body-only'], /exclude each other/],
    [['s.cgi', '-e', 'NOVALUE'], /--env must read NAME=VALUE/],
    [['s.cgi', '-d', '@/nonexistent/file'], /cannot read the --data file \(\/nonexistent\/file: ENOENT\)/],
    [['s.cgi', '-F', 'a=1', '-d', 'b=2'], /-F builds the body: it excludes -d\/--data\/--data-binary/],
    [['s.cgi', '-F', 'a=1', '--data-binary', 'b'], /-F builds the body/],
    [['s.cgi', '-F', 'novalue'], /-F must read name=value/],
    [['s.cgi', '-F', 'a=@f;charset=x'], /-F knows ;type= and ;filename=/],
    [['s.cgi', '-F', 'a="open'], /a quote is not closed/],
    [['s.cgi', '-F', 'a=@/nonexistent/file'], /cannot read the -F file \(\/nonexistent\/file: ENOENT\)/],
  ])('%j', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^tsgi cgi: /);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('usage: tsgi cgi SCRIPT');
  });

  it('prints the usage with --help and exits 0', async () => {
    const result = await run(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: tsgi cgi SCRIPT \[METHOD\] \[URL\]/);
  });
});

describe('tsgi cgi -F: multipart/form-data, as curl -F', () => {
  it('builds the body from fields and files, with a fresh boundary, CONTENT_TYPE and CONTENT_LENGTH; POST by default', async () => {
    const dump = await script('dump.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n%s\\n%s\\n" "$REQUEST_METHOD" "$CONTENT_TYPE" "$CONTENT_LENGTH"\ncat\n');
    await writeFile(join(dir, 'photo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]));
    await writeFile(join(dir, 'note.txt'), 'from a file');
    const result = await run([dump, '--body-only', '-F', 'title=hello world', '-F', `photo=@${join(dir, 'photo.png')}`, '-F', `doc=@${join(dir, 'note.txt')};type=text/x-note;filename=re"named.txt`, '-F', `inline=<${join(dir, 'note.txt')}`, '-F', 'q="a;b"']);
    expect(result.code).toBe(0);
    const [method, contentType, contentLength, ...rest] = result.stdout.split('\n');
    const body = rest.join('\n');
    expect(method).toBe('POST');
    const boundary = /^multipart\/form-data; boundary=(-{24}[0-9a-f]{24})$/.exec(contentType as string)?.[1] as string;
    expect(boundary).toBeDefined();
    expect(Number(contentLength)).toBe(Buffer.byteLength(body, 'latin1'));
    expect(body).toBe(
      [
        `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello world\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="photo"; filename="photo.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\xff\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="doc"; filename="re%22named.txt"\r\nContent-Type: text/x-note\r\n\r\nfrom a file\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="inline"\r\n\r\nfrom a file\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="q"\r\n\r\na;b\r\n`,
        `--${boundary}--\r\n`,
      ].join(''),
    );
    // Another run, another boundary.
    const again = await run([dump, '--body-only', '-F', 'a=1']);
    expect(again.stdout.split('\n')[1]).not.toBe(contentType);
  });

  it('keeps a method given, and a Content-Type given with -H, adding the boundary', async () => {
    const dump = await script('dump2.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s %s" "$REQUEST_METHOD" "$CONTENT_TYPE"\n');
    const result = await run([dump, 'PUT', '--body-only', '-H', 'Content-Type: multipart/mixed', '-F', 'a=1']);
    expect(result.stdout).toMatch(/^PUT multipart\/mixed; boundary=-{24}[0-9a-f]{24}$/);
  });

  it('is read by a real form parser (Perl CGI.pm)', async () => {
    const form = await script(
      'form.pl',
      `#!/usr/bin/perl
use strict; use CGI;
my $q = CGI->new;
print $q->header('text/plain');
my $fh = $q->upload('file');
local $/; my $data = <$fh>;
print join('|', scalar $q->param('name'), scalar $q->param('file'), length($data), $q->uploadInfo(scalar $q->param('file'))->{'Content-Type'});
`,
    );
    await writeFile(join(dir, 'big.bin'), Buffer.alloc(100_000, 7));
    const result = await run([form, '--body-only', '-F', 'name=ann', '-F', `file=@${join(dir, 'big.bin')};type=application/x-test`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('ann|big.bin|100000|application/x-test');
  });
});
