/**
 * Helpers for the recipe e2e tests (test/e2e/recipes-*.test.ts), which deploy tsgi exactly the way the files
 * in conf/ say: systemd units read and run under systemd-socket-activate, conf/spawn-fcgi.sh run as is, an
 * nginx upstream of several backends. What the shared harness (servers.ts) does not have lives here: reading
 * systemd unit files, spawning and signalling arbitrary processes, and looking at what a process tree listens on.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT, sleep, STOP_TIMEOUT_MS } from './servers.js';

/** The directory of the recipe app (test/e2e/fixtures/recipes/app.js): the stand-in for /srv/app. */
export const RECIPE_APP_DIR = join(PROJECT_ROOT, 'test', 'e2e', 'fixtures', 'recipes');
/** systemd-socket-activate (Debian package systemd). */
export const SOCKET_ACTIVATE_BIN = process.env.TSGI_SOCKET_ACTIVATE ?? '/usr/bin/systemd-socket-activate';
/** systemd-analyze (Debian package systemd): `verify` checks unit files without a running systemd. */
export const SYSTEMD_ANALYZE_BIN = process.env.TSGI_SYSTEMD_ANALYZE ?? '/usr/bin/systemd-analyze';
/** spawn-fcgi (Debian package spawn-fcgi). */
export const SPAWN_FCGI_BIN = process.env.TSGI_SPAWN_FCGI ?? '/usr/bin/spawn-fcgi';
/** ss (Debian package iproute2): the backlog of a listening socket is its Send-Q. */
export const SS_BIN = '/usr/bin/ss';

// --- systemd unit files ---

/** One parsed unit file: each `Key=value` line per section, and the commented-out `#Key=value` alternatives. */
export interface UnitFile {
  /** conf/systemd/NAME */
  path: string;
  /** Every value of `key` in `[section]`, in order (ListenStream= may repeat). */
  values(section: string, key: string): string[];
  /** The one value of `key` in `[section]`; throws when it is missing or repeated. */
  value(section: string, key: string): string;
  /** The values of `#key=value` lines in `[section]`: alternatives the file documents. */
  commented(section: string, key: string): string[];
}

/**
 * Reads conf/systemd/NAME. Understands what the shipped units use: `[Section]` headers, `Key=value` lines,
 * `#` / `;` comments. A continuation line (trailing backslash) is refused rather than misread.
 */
export async function readUnit(name: string): Promise<UnitFile> {
  const path = join(PROJECT_ROOT, 'conf', 'systemd', name);
  const text = await readFile(path, 'utf8');
  const entries: Array<{ section: string; key: string; value: string; commented: boolean }> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.endsWith('\\')) throw new Error(`e2e: ${name}: continuation lines are not understood here (${line})`);
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    const assignment = /^([#;]?)([A-Za-z]+)=(.*)$/.exec(line);
    if (assignment) {
      entries.push({ section, key: assignment[2] as string, value: (assignment[3] as string).trim(), commented: assignment[1] !== '' });
    }
  }
  const pick = (sectionName: string, key: string, commented: boolean): string[] =>
    entries.filter((entry) => entry.section === sectionName && entry.key === key && entry.commented === commented).map((entry) => entry.value);
  return {
    path,
    values: (sectionName, key) => pick(sectionName, key, false),
    value: (sectionName, key) => {
      const found = pick(sectionName, key, false);
      if (found.length !== 1) throw new Error(`e2e: ${name}: expected one ${key}= in [${sectionName}], found ${found.length}`);
      return found[0] as string;
    },
    commented: (sectionName, key) => pick(sectionName, key, true),
  };
}

/**
 * Splits an ExecStart= command line into argv the way systemd does for the simple case the shipped units use
 * (words separated by spaces, no quotes, no `$VAR` expansion, no `-@+!` prefixes), then replaces whole words
 * found in `substitutions` (e.g. the unit's /srv/app/node_modules/.bin/tsgi by this checkout's bin/tsgi.js).
 */
export function execStartArgv(value: string, substitutions: Record<string, string> = {}): string[] {
  if (/["'$\\]/.test(value) || /^[-@+!:]/.test(value)) throw new Error(`e2e: ExecStart= uses syntax this reader does not handle (${value})`);
  return value
    .split(/\s+/)
    .filter((word) => word !== '')
    .map((word) => substitutions[word] ?? word);
}

/** `Environment=NAME=VALUE` lines as an object (one assignment per line, unquoted, as the shipped units write them). */
export function unitEnvironment(unit: UnitFile): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unit.values('Service', 'Environment')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(line);
    if (!match) throw new Error(`e2e: ${unit.path}: Environment= this reader does not handle (${line})`);
    env[match[1] as string] = match[2] as string;
  }
  return env;
}

/** A systemd time span as used by the units ("30", "30s", "2min") in milliseconds. */
export function timeSpanMs(value: string): number {
  const match = /^(\d+)\s*(ms|s|sec|min|m)?$/.exec(value.trim());
  if (!match) throw new Error(`e2e: time span this reader does not handle (${value})`);
  const unit = match[2] ?? 's';
  return Number(match[1]) * (unit === 'ms' ? 1 : unit === 'min' || unit === 'm' ? 60_000 : 1000);
}

// --- processes ---

/** A process spawned by spawnProcess (detached: it leads its own process group). */
export interface ProcessHandle {
  pid: number;
  /** Everything it (and whatever it exec'd into) wrote to stdout and stderr so far. */
  output(): string;
  /** Exit code, or the signal name, once it exited; null while it runs. */
  exitStatus(): number | string | null;
  /** Resolves with the exit code (or signal name) when it exits. */
  exited: Promise<number | string>;
  /** Resolves with the first match of `pattern` in the output; rejects if it exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends `signal` to this pid only. */
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM to its process group, SIGKILL after STOP_TIMEOUT_MS. Safe to call twice; a no-op once exited. */
  stop(): Promise<void>;
  /** SIGKILL to its whole process group at once (a crash). Resolves when the process is gone. */
  kill9(): Promise<void>;
}

/** Spawns `command args` detached with a minimal environment (PATH, LANG plus `env`), collecting its output. */
export function spawnProcess(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }): ProcessHandle {
  const child = spawn(command, args, {
    cwd: options.cwd,
    detached: true,
    env: { PATH: `${process.execPath.replace(/\/[^/]+$/, '')}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, LANG: 'C', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  let status: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve((status = code ?? signal ?? 'unknown')));
    child.once('error', (error) => resolve((status = error.message)));
  });
  const pid = child.pid ?? -1;
  const groupSignal = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  };
  let stopping: Promise<void> | null = null;
  return {
    pid,
    output: () => output,
    exitStatus: () => status,
    exited,
    async waitForOutput(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (status !== null) throw new Error(`e2e: ${command} exited (${status}) before printing ${pattern}\n--- output ---\n${output}`);
        if (Date.now() > deadline) throw new Error(`e2e: ${command} printed no ${pattern} within ${timeoutMs} ms\n--- output ---\n${output}`);
        await sleep(25);
      }
    },
    signal(signal) {
      if (status === null) process.kill(pid, signal);
    },
    stop() {
      stopping ??= (async () => {
        if (status !== null || pid < 0) return;
        groupSignal('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
        if (timedOut) {
          groupSignal('SIGKILL');
          await exited;
        }
      })();
      return stopping;
    },
    async kill9() {
      if (status !== null || pid < 0) return;
      groupSignal('SIGKILL');
      await exited;
    },
  };
}

/** The command line of `pid` (NUL-separated words joined by spaces), or null when it is gone. */
export async function commandLine(pid: number): Promise<string | null> {
  const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  return text === null ? null : text.replace(/\0+$/, '').replace(/\0/g, ' ');
}

/** `pid` and all its descendants (from /proc/N/stat; Linux only). */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(Number(entry), ppid);
  }
  const tree = [pid];
  for (let added = true; added; ) {
    added = false;
    for (const [child, parent] of parents) {
      if (tree.includes(parent) && !tree.includes(child)) {
        tree.push(child);
        added = true;
      }
    }
  }
  return tree;
}

/** What a set of processes listens on: TCP "ADDR:PORT" strings (IPv4 and IPv6) and unix socket paths. */
export interface ListeningSockets {
  tcp: string[];
  unix: string[];
}

/**
 * The listening sockets held by any process of `pids`: each /proc/PID/fd/N that is `socket:[INODE]`, looked up
 * in /proc/PID/net/{tcp,tcp6,unix} (state LISTEN, or a unix socket with __SO_ACCEPTCON).
 */
export async function listeningSockets(pids: number[]): Promise<ListeningSockets> {
  const tcp = new Set<string>();
  const unix = new Set<string>();
  for (const pid of pids) {
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (match) inodes.add(match[1] as string);
    }
    for (const table of ['tcp', 'tcp6']) {
      const rows = (await readFile(`/proc/${pid}/net/${table}`, 'latin1').catch(() => '')).split('\n').slice(1);
      for (const row of rows) {
        const fields = row.trim().split(/\s+/);
        if (fields[3] === '0A' && inodes.has(fields[9] ?? '')) tcp.add(decodeProcAddress(fields[1] as string));
      }
    }
    const rows = (await readFile(`/proc/${pid}/net/unix`, 'latin1').catch(() => '')).split('\n').slice(1);
    for (const row of rows) {
      const fields = row.trim().split(/\s+/);
      if ((Number.parseInt(fields[3] ?? '0', 16) & 0x10000) !== 0 && inodes.has(fields[6] ?? '')) unix.add(fields[7] ?? '(unnamed)');
    }
  }
  return { tcp: [...tcp].sort(), unix: [...unix].sort() };
}

/** "0100007F:1F90" -> "127.0.0.1:8080" (IPv6 addresses are left in hex, with the decoded port). */
function decodeProcAddress(text: string): string {
  const [hexAddress = '', hexPort = '0'] = text.split(':');
  const port = Number.parseInt(hexPort, 16);
  if (hexAddress.length !== 8) return `[${hexAddress}]:${port}`;
  const bytes = (hexAddress.match(/../g) ?? []).map((pair) => Number.parseInt(pair, 16)).reverse();
  return `${bytes.join('.')}:${port}`;
}

/**
 * The backlog (accept queue limit) of the listening socket on 127.0.0.1:`port` or at unix path `path`: the
 * Send-Q column of `ss -l` for a listening socket. Null when ss shows no such socket.
 */
export async function listenBacklog(where: { port: number } | { path: string }): Promise<number | null> {
  const args = 'port' in where ? ['-ltnH', `sport = :${where.port}`] : ['-lxH'];
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn(SS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.once('error', reject);
    child.once('exit', () => resolve(out));
  });
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if ('port' in where) {
      // State Recv-Q Send-Q Local Peer
      if (fields[3] === `127.0.0.1:${where.port}`) return Number(fields[2]);
    } else if (fields[4] === where.path) {
      // Netid State Recv-Q Send-Q Local ...
      return Number(fields[3]);
    }
  }
  return null;
}

/** The kernel's ceiling for a listen backlog (net.core.somaxconn). */
export async function somaxconn(): Promise<number> {
  return Number((await readFile('/proc/sys/net/core/somaxconn', 'latin1')).trim());
}

// --- HTTP ---

/** A response from get(). */
export interface GetResponse {
  status: number;
  text: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: Record<string, unknown> | undefined;
}

/**
 * GET `url` on a fresh connection (no agent, `Connection: close`), bounded by `timeoutMs`. Rejects on a
 * connection error or the timeout.
 */
export function get(url: string, timeoutMs = 30_000): Promise<GetResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { Connection: 'close' }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`e2e: GET ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * True when the process that answered (the recipe app's `pid`/`ppid`) is `servingPid` or a direct child of it
 * (a worker under tsgi's master process).
 */
export function answeredBy(answer: Record<string, unknown> | undefined, servingPid: number): boolean {
  return answer !== undefined && (answer.pid === servingPid || answer.ppid === servingPid);
}
