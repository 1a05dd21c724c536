import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { buildPlan } from '../../src/cli/serve-command.js';
import { parseListenTarget } from '../../src/servers/listen.js';
import { loadApp, parseAppReference } from '../../src/cli/load-app.js';
import { freePort, firstLine } from './cli-helpers.js';
import { LISTEN_PATHS } from './listen-paths.js';

const BIN = join(process.cwd(), 'bin', 'tsgi.js');



describe('address and module references', () => {
  it('parses listen addresses', () => {
    expect(parseListenTarget('0.0.0.0:8080')).toEqual({ kind: 'tcp', host: '0.0.0.0', port: 8080 });
    expect(parseListenTarget(':9000')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(parseListenTarget('9000')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 9000 });
    expect(parseListenTarget('[::1]:8000')).toEqual({ kind: 'tcp', host: '::1', port: 8000 });
    expect(parseListenTarget('unix:/run/app.sock')).toEqual({ kind: 'unix', path: '/run/app.sock' });
    expect(parseListenTarget('fd:0')).toEqual({ kind: 'fd', fd: 0 });
    expect(() => parseListenTarget('host:99999')).toThrow(/bad address/);
    expect(() => parseListenTarget('nope')).toThrow(/bad address/);
    expect(() => parseListenTarget('unix:')).toThrow(/socket path/);
    expect(() => parseListenTarget('fd:x')).toThrow(/descriptor/);
  });

  it('parses MODULE[:EXPORT]', () => {
    expect(parseAppReference('app.ts')).toEqual({ modulePath: 'app.ts', exportName: null });
    expect(parseAppReference('dir/app.ts:api')).toEqual({ modulePath: 'dir/app.ts', exportName: 'api' });
  });

  it('loads TypeScript and JavaScript modules: default export, else app, else the named export', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsgi-load-'));
    try {
      await writeFile(join(dir, 'a.ts'), 'const x: number = 1;\nexport default () => { void x; return []; };\n');
      await writeFile(join(dir, 'b.mjs'), 'export const app = () => [];\nexport const other = 5;\n');
      expect(typeof (await loadApp(join(dir, 'a.ts')))).toBe('function');
      expect(typeof (await loadApp(join(dir, 'b.mjs')))).toBe('function');
      await expect(loadApp(join(dir, 'b.mjs:other'))).rejects.toThrow(/export "other" .* is not an app/);
      await expect(loadApp(join(dir, 'b.mjs:missing'))).rejects.toThrow(/has no export "missing" \(exports: app, other\)/);
      await expect(loadApp(join(dir, 'nope.ts'))).rejects.toThrow(/module not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.each(LISTEN_PATHS)('tsgi serve (the built command; $name)', ({ env }) => {
  let child: ResultPromise | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    child = execa('node', [BIN, 'serve', 'examples/hello.ts', '--http', `127.0.0.1:${port}`], { reject: false, env });
    const line = await firstLine(child);
    expect(line).toContain(`http://127.0.0.1:${port}/`);
    expect(line).toMatch(/pid \d+/);
  });
  afterAll(async () => {
    child?.kill('SIGTERM');
    await child;
  });

  it('answers over HTTP', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/some/path?q=1`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('Hello from tsgi! You asked for /some/path\n');
  });

  it('exits cleanly on SIGTERM', async () => {
    const other = execa('node', [BIN, 'serve', 'examples/hello.ts', '--http', `127.0.0.1:${await freePort()}`], { reject: false, env });
    await firstLine(other);
    other.kill('SIGTERM');
    const result = await other;
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('SIGTERM received');
  });

  it('a missing module or export is a clear error, exit 1', async () => {
    const missing = await execa('node', [BIN, 'serve', 'no/such/app.ts'], { reject: false });
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('tsgi: module not found (no/such/app.ts)');
    const noExport = await execa('node', [BIN, 'serve', 'examples/hello.ts:nothing'], { reject: false });
    expect(noExport.exitCode).toBe(1);
    expect(noExport.stderr).toContain('has no export "nothing"');
  });

  it('ADDR "systemd" without socket activation says why, exit 1', async () => {
    const noVariables = await execa('node', [BIN, 'serve', 'examples/hello.ts', '--fastcgi', 'systemd'], { reject: false, env: { LISTEN_PID: '', LISTEN_FDS: '' }, extendEnv: true });
    expect(noVariables.exitCode).toBe(1);
    expect(noVariables.stderr).toMatch(/no socket from systemd/);
    // A pid of another process: the variables were meant for a wrapper (npx, a shell), not for tsgi.
    const wrapper = await execa('node', [BIN, 'serve', 'examples/hello.ts', '--http', 'systemd:web'], { reject: false, env: { LISTEN_PID: '1', LISTEN_FDS: '1' } });
    expect(wrapper.exitCode).toBe(1);
    expect(wrapper.stderr).toMatch(/LISTEN_PID=1 names another process/);
  });

  it('usage errors exit 2; help exits 0', async () => {
    expect((await execa('node', [BIN, 'serve'], { reject: false })).exitCode).toBe(2);
    expect((await execa('node', [BIN, 'bogus'], { reject: false })).exitCode).toBe(2);
    const help = await execa('node', [BIN, '--help']);
    expect(help.stdout).toContain('serve [MODULE[:EXPORT]]');
  });
});

describe('tsgi build', () => {
  it('writes one executable file that runs as a CGI script', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsgi-build-'));
    try {
      const out = join(dir, 'hello.cgi');
      const build = await execa('node', [BIN, 'build', 'cgi-bin/hello.ts', '-o', out]);
      expect(build.stdout).toContain('wrote');
      const run = await execa(out, [], {
        env: { PATH: process.env.PATH ?? '', GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET' },
        extendEnv: false,
      });
      expect(run.stdout).toMatch(/^Status: 200 OK\r\n/);
      // The same app, pipe-tested through `tsgi cgi` as a web server would run it.
      const piped = await execa('node', [BIN, 'cgi', out, 'GET', '/some/path?x=1', '--script-name', '/cgi-bin/hello.cgi']);
      expect(piped.stdout).toMatch(/^HTTP\/1\.1 200 OK\r?\n/);
      expect(piped.stdout).toMatch(/\r?\n\r?\nHello from tsgi! You asked for \/cgi-bin\/hello.cgi\/some\/path$/);
      const bad = await execa('node', [BIN, 'build', 'no-such.ts', '-o', out], { reject: false });
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toContain('entry not found');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('tsgi serve: the peer limits (--max-connections, --header-timeout, --body-timeout, --idle-timeout)', () => {
  const plan = (...args: string[]) => {
    const values: Record<string, string | boolean | undefined> = {};
    for (let i = 0; i < args.length; i += 2) values[(args[i] as string).slice(2)] = args[i + 1];
    return buildPlan('app.ts', { http: '127.0.0.1:0', ...values });
  };

  it('defaults: 1024 connections, a head within 10 s, a body stalled 30 s; the idle timeout is left to each server', () => {
    const { maxConnections, headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = plan();
    expect({ maxConnections, headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs }).toEqual({ maxConnections: 1024, headerTimeoutMs: 10_000, bodyTimeoutMs: 30_000, idleTimeoutMs: undefined });
  });

  it('seconds (decimals allowed, 0 = off) become milliseconds; a count of connections', () => {
    const { maxConnections, headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = plan('--max-connections', '64', '--header-timeout', '2.5', '--body-timeout', '0', '--idle-timeout', '120');
    expect({ maxConnections, headerTimeoutMs, bodyTimeoutMs, idleTimeoutMs }).toEqual({ maxConnections: 64, headerTimeoutMs: 2_500, bodyTimeoutMs: 0, idleTimeoutMs: 120_000 });
  });

  it('bad values are clear errors naming the flag', () => {
    expect(() => plan('--header-timeout', 'ten')).toThrow('tsgi serve: --header-timeout takes seconds, like 30 or 2.5 (ten)');
    expect(() => plan('--body-timeout', '-1')).toThrow('tsgi serve: --body-timeout takes seconds, like 30 or 2.5 (-1)');
    expect(() => plan('--idle-timeout', '1e3')).toThrow('tsgi serve: --idle-timeout takes seconds');
    expect(() => plan('--idle-timeout', '100000')).toThrow('tsgi serve: --idle-timeout takes at most 86400 seconds, 0 = off (100000)');
    expect(() => plan('--max-connections', '0')).toThrow('tsgi serve: --max-connections takes a whole number of 1 or more (0)');
    expect(() => plan('--max-connections', '1.5')).toThrow('tsgi serve: --max-connections takes a whole number (1.5)');
  });

  it('a bad value exits 1 with the message (the convention for bad values), before anything listens', async () => {
    const result = await execa('node', [BIN, 'serve', 'examples/hello.ts', '--scgi', '127.0.0.1:0', '--header-timeout', 'soon'], { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe('tsgi serve: --header-timeout takes seconds, like 30 or 2.5 (soon)');
  });

  it('--header-timeout and --max-connections reach the server: a silent connection is closed and logged naming the flag', async () => {
    const port = await freePort();
    const child = execa('node', [BIN, 'serve', 'examples/hello.ts', '--scgi', `127.0.0.1:${port}`, '-w', '0', '--header-timeout', '0.3', '--max-connections', '1'], {
      reject: false,
    });
    try {
      await firstLine(child);
      const silent = connect(port, '127.0.0.1');
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const started = Date.now();
        silent.on('error', reject);
        silent.on('close', () => resolve(Date.now() - started));
      });
      expect(closedAfter).toBeGreaterThanOrEqual(250);
      expect(closedAfter).toBeLessThan(5_000);
      // Two at once with --max-connections 1: the second is dropped, and that is logged too.
      const first = connect(port, '127.0.0.1');
      await new Promise((resolve) => first.once('connect', resolve));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const second = connect(port, '127.0.0.1');
      await new Promise((resolve) => second.once('close', resolve));
      first.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      child.kill('SIGTERM');
    }
    const result = await child;
    expect(result.stderr).toMatch(/tsgi: scgi: a connection sent nothing for 0\.3 s: refused at the limit headerTimeoutMs; to change it: --header-timeout SECONDS/);
    expect(result.stderr).toMatch(/tsgi: scgi: closed a new connection: 1 connections are open: refused at the limit maxConnections; to change it: --max-connections N/);
  });

  it.each(['http', 'fastcgi', 'uwsgi'])('--header-timeout reaches the %s server too', async (transport) => {
    const port = await freePort();
    const child = execa('node', [BIN, 'serve', 'examples/hello.ts', `--${transport}`, `127.0.0.1:${port}`, '-w', '0', '--header-timeout', '0.5'], { reject: false });
    try {
      await firstLine(child);
      // Read (and drop) what comes, so the server's FIN is seen (HTTP answers 408 first).
      const silent = connect(port, '127.0.0.1').resume();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const started = Date.now();
        silent.on('error', reject);
        silent.on('close', () => resolve(Date.now() - started));
      });
      // The default is 10 s.
      expect(closedAfter).toBeGreaterThanOrEqual(400);
      expect(closedAfter).toBeLessThan(5_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect((await child).stderr).toMatch(/refused at the limit headerTimeoutMs; to change it: --header-timeout/);
  });
});
