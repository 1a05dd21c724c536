/**
 * Helpers for test/e2e/cgi-bin-programs.test.ts, which serves real CGI programs (git http-backend, php-cgi,
 * Perl CGI.pm, shell scripts) with `tsgi serve --cgi-bin`: the scratch cgi-bin folder built from
 * test/e2e/fixtures/cgi-bin-programs, the tsgi process, a small HTTP client that shows every response header,
 * a multipart body builder, git run with a clean configuration, and process liveness read from /proc.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { spawnProcess, type ProcessHandle } from './recipes-harness.js';
import { findFreePort, makeScratchDir, NODE_DIR, PROJECT_ROOT, sleep, TSGI_BIN } from './servers.js';

/** The CGI programs the tests serve (copied into a scratch cgi-bin folder). */
export const PROGRAMS_DIR = join(PROJECT_ROOT, 'test', 'e2e', 'fixtures', 'cgi-bin-programs');
/** git's smart HTTP server (Debian package git). */
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';
/** The git client (Debian package git). */
export const GIT_BIN = '/usr/bin/git';
/** php-cgi (Debian package php-cgi). */
export const PHP_CGI_BIN = '/usr/bin/php-cgi';
/** Perl's CGI.pm (Debian package libcgi-pm-perl). */
export const CGI_PM_FILE = '/usr/share/perl5/CGI.pm';
/** The URL prefix the cgi-bin folder is served at, over HTTP and behind nginx alike (conf/nginx-cgi-bin.conf). */
export const MOUNT = '/cgi-bin';
/** How long a tsgi process gets to accept connections. */
const START_TIMEOUT_MS = 30_000;
/** The php.ini PHPRC points at: upload limits above a test upload, which PHP's defaults (2M) would refuse. */
const PHP_INI = 'upload_max_filesize = 16M\npost_max_size = 24M\nfile_uploads = On\n';

/** A scratch site: the cgi-bin folder, git's project root, PHPRC, a run directory for pid files, the logs. */
export interface CgiBinSite {
  root: string;
  cgiBin: string;
  /** GIT_PROJECT_ROOT: where the bare repositories served over HTTP live. */
  gitRoot: string;
  /** PHPRC: the directory of the php.ini above. */
  phpIniDir: string;
  /** CGI_TEST_RUN_DIR: where never.cgi and flood.cgi write their pids. */
  runDir: string;
  errorLog: string;
  accessLog: string;
}

/**
 * Builds a scratch site: every fixture copied into ROOT/cgi-bin (the .php files 0644, as PHP files are
 * deployed, the others 0755), plus a symlink `git-link` to git-http-backend outside the folder, which the
 * host must refuse.
 */
export async function makeCgiBinSite(label: string): Promise<CgiBinSite> {
  const root = await makeScratchDir(label);
  const site: CgiBinSite = {
    root,
    cgiBin: join(root, 'cgi-bin'),
    gitRoot: join(root, 'git'),
    phpIniDir: join(root, 'php'),
    runDir: join(root, 'run'),
    errorLog: join(root, 'error.log'),
    accessLog: join(root, 'access.log'),
  };
  for (const dir of [site.cgiBin, site.gitRoot, site.phpIniDir, site.runDir]) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
  }
  for (const name of await readdir(PROGRAMS_DIR)) {
    const target = join(site.cgiBin, name);
    await copyFile(join(PROGRAMS_DIR, name), target);
    await chmod(target, name.endsWith('.php') ? 0o644 : 0o755);
  }
  await writeFile(join(site.phpIniDir, 'php.ini'), PHP_INI);
  await symlink(GIT_HTTP_BACKEND, join(site.cgiBin, 'git-link'));
  return site;
}

/** Removes a scratch directory made by these helpers, unless TSGI_E2E_KEEP=1 asks to keep it for a post-mortem. */
export async function removeScratch(dir: string | undefined): Promise<void> {
  if (dir !== undefined && process.env.TSGI_E2E_KEEP !== '1') await rm(dir, { recursive: true, force: true });
}

/** The `--cgi-*` flags that serve `site`: php-cgi for .php, git's and the tests' variables, both logs. */
export function siteArgs(site: CgiBinSite): string[] {
  return [
    '--cgi-bin', site.cgiBin,
    '--mount', MOUNT,
    '--cgi-interpreter', `.php=${PHP_CGI_BIN}`,
    '--cgi-env', `GIT_PROJECT_ROOT=${site.gitRoot}`,
    '--cgi-env', 'GIT_HTTP_EXPORT_ALL=1',
    '--cgi-env', `PHPRC=${site.phpIniDir}`,
    '--cgi-env', `CGI_TEST_RUN_DIR=${site.runDir}`,
    '--error-log', site.errorLog,
    '--access-log', site.accessLog,
  ];
}

/** A running `tsgi serve --cgi-bin`. */
export interface CgiBinServer {
  /** 127.0.0.1:PORT, as given to --http or --fastcgi. */
  address: string;
  port: number;
  proc: ProcessHandle;
  stop(): Promise<void>;
}

/**
 * Starts `node bin/tsgi.js serve ARGS --http|--fastcgi 127.0.0.1:PORT` in its own process group and waits
 * until the port accepts connections.
 */
export async function startCgiBinServer(protocol: 'http' | 'fastcgi', args: string[]): Promise<CgiBinServer> {
  const port = await findFreePort();
  const address = `127.0.0.1:${port}`;
  const proc = spawnProcess(process.execPath, [TSGI_BIN, 'serve', ...args, `--${protocol}`, address], {
    cwd: PROJECT_ROOT,
    env: { PATH: `${NODE_DIR}:/usr/local/bin:/usr/bin:/bin`, HOME: '/nonexistent' },
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await canConnect(port))) {
    if (proc.exitStatus() !== null || Date.now() > deadline) {
      await proc.stop();
      const why = proc.exitStatus() !== null ? `exited (${proc.exitStatus()})` : `did not listen within ${START_TIMEOUT_MS} ms`;
      throw new Error(`e2e: tsgi serve ${args.join(' ')} --${protocol} ${address} ${why}\n--- output ---\n${proc.output()}`);
    }
    await sleep(50);
  }
  return { address, port, proc, stop: () => proc.stop() };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// --- HTTP ---

/** A response with every header as node:http gives it (Set-Cookie as an array). */
export interface CgiResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
}

/** Options of send. */
export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** A body sent as these chunks with `Transfer-Encoding: chunked` and no Content-Length (instead of `body`). */
  chunks?: Buffer[];
  timeoutMs?: number;
}

/** One request on a fresh connection; redirects are not followed. Rejects on a connection error or the timeout. */
export function send(url: string, options: SendOptions = {}): Promise<CgiResponse> {
  const { method = 'GET', headers = {}, body, chunks, timeoutMs = 30_000 } = options;
  const framing = chunks ? { 'Transfer-Encoding': 'chunked' } : {};
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { Connection: 'close', ...framing, ...headers }, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => {
        const data = Buffer.concat(parts);
        const text = data.toString('utf8');
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`e2e: ${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (chunks) {
      for (const chunk of chunks) req.write(chunk);
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** One part of a multipart/form-data body: a field, or a file when `filename` is given. */
export interface FormPart {
  name: string;
  value: Buffer | string;
  filename?: string;
  contentType?: string;
}

/** A multipart/form-data body (RFC 7578) and its Content-Type header, as a browser sends it. */
export function multipartBody(parts: FormPart[]): { body: Buffer; contentType: string } {
  const boundary = `----tsgi-e2e-${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename === undefined ? '' : `; filename="${part.filename}"`}`;
    const type = part.filename === undefined ? '' : `Content-Type: ${part.contentType ?? 'application/octet-stream'}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`));
    chunks.push(Buffer.isBuffer(part.value) ? part.value : Buffer.from(part.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The hex sha256 of `data`. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// --- git ---

/** What a git command printed and how it ended. */
export interface GitResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Runs git with a configuration of its own (no system or user config, HOME in `home`, a fixed identity),
 * bounded by `timeoutMs`. Never throws for a failing git: the caller checks exitCode and shows stderr.
 */
export async function git(args: string[], options: { cwd: string; home: string; env?: Record<string, string>; timeoutMs?: number }): Promise<GitResult> {
  const result = await execa(GIT_BIN, ['-c', 'init.defaultBranch=main', ...args], {
    cwd: options.cwd,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
    env: {
      PATH: '/usr/bin:/bin',
      HOME: options.home,
      LANG: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'tsgi e2e',
      GIT_AUTHOR_EMAIL: 'e2e@tsgi.invalid',
      GIT_COMMITTER_NAME: 'tsgi e2e',
      GIT_COMMITTER_EMAIL: 'e2e@tsgi.invalid',
      ...options.env,
    },
    extendEnv: false,
  });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Like git(), but throws with git's output unless it exits 0; resolves with stdout, trimmed. */
export async function gitOk(args: string[], options: { cwd: string; home: string; env?: Record<string, string>; timeoutMs?: number }): Promise<string> {
  const result = await git(args, options);
  if (result.exitCode !== 0) {
    throw new Error(`e2e: git ${args.join(' ')} exited ${result.exitCode}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
  return result.stdout.trim();
}

/** Writes `size` random (incompressible) bytes to `path` and returns them. */
export async function writeRandomFile(path: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return data;
}

// --- processes ---

/** True while `pid` is a live process (present in /proc and not a zombie). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  return state !== 'Z' && state !== 'X';
}

/** Live (non-zombie) processes whose process group is `pgid` (from /proc; Linux only). */
export async function liveGroupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') members.push(Number(entry));
  }
  return members;
}

/** The pid written in `path`, once the file exists and holds one (polled up to `timeoutMs`). */
export async function readPidFile(path: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if (/^\d+\s*$/.test(text)) return Number(text.trim());
    if (Date.now() > deadline) throw new Error(`e2e: no pid in ${path} after ${timeoutMs} ms`);
    await sleep(50);
  }
}
