/**
 * The reliability harness: a tsgi backend started as users start it (`node bin/tsgi.js serve APP --fastcgi
 * ADDR`), measured from /proc over its whole process tree (a master and its workers alike), nginx or Apache
 * in front of it (test/e2e/servers.ts renders the conf/ files), and a load generator that checks every body
 * it gets back byte for byte.
 *
 * Environment (read by the tests; scripts/soak.mjs and scripts/faults.mjs set them for the long runs):
 * - TSGI_SOAK_REQUESTS: requests per web server in the soak (default 2,500).
 * - TSGI_SOAK_CONCURRENCY: requests in flight at once in the soak (default 16).
 * - TSGI_FAULTS_SCALE: multiplies the fault tests' repetitions and load durations (default 1).
 * - TSGI_RELIABILITY_REPORT: a file each test appends its figures to, one JSON object a line.
 * Linux only: everything is read from /proc.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, readlink, rm, chmod } from 'node:fs/promises';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  findFreePort,
  NODE_DIR,
  PROJECT_ROOT,
  sleep,
  startApache,
  startNginx,
  STOP_TIMEOUT_MS,
  TSGI_BIN,
  type ServerHandle,
} from '../e2e/servers.js';

export const MIB = 1024 * 1024;
/** The URL prefix the web servers forward to the app. */
export const MOUNT = '/app';
/** The app every reliability test serves. */
export const APP = join(PROJECT_ROOT, 'test/reliability/fixtures/app.ts');

/** Reads a positive integer from the environment, or `fallback`; a bad value is an error, not a silent default. */
export function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`reliability: ${name} must be a positive integer (got ${JSON.stringify(text)})`);
  return value;
}

/** Appends one figures record to TSGI_RELIABILITY_REPORT (if set) for scripts/soak.mjs and scripts/faults.mjs. */
export function report(record: Record<string, unknown>): void {
  const file = process.env.TSGI_RELIABILITY_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify(record)}\n`);
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// --- /proc: process trees, memory, descriptors, TCP states ---

interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
}

async function readStat(pid: number): Promise<ProcStat | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: read after the last ")".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') return null; // a zombie holds no memory or descriptors
  return { pid, ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

async function allStats(): Promise<ProcStat[]> {
  const stats: ProcStat[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** `root` and all its live descendants (sorted), or [] when root is gone. */
export async function processTree(root: number): Promise<number[]> {
  const stats = await allStats();
  if (!stats.some((stat) => stat.pid === root)) return [];
  const children = new Map<number, number[]>();
  for (const stat of stats) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), stat.pid]);
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree.sort((a, b) => a - b);
}

/** Live members of process group `pgrp`. */
export async function groupMembers(pgrp: number): Promise<number[]> {
  return (await allStats()).filter((stat) => stat.pgrp === pgrp).map((stat) => stat.pid);
}

/** Resident set size of `pid` in bytes (VmRSS), 0 when it is gone. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/** One TCP socket from /proc/net/tcp{,6}. */
interface TcpEntry {
  localPort: number;
  remotePort: number;
  state: string;
}

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
};

/** TCP sockets by inode. */
async function tcpByInode(): Promise<Map<string, TcpEntry>> {
  const map = new Map<string, TcpEntry>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const line of lines) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const port = (address: string): number => Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
      const state = fields[3] ?? '';
      map.set(fields[9] ?? '', {
        localPort: port(fields[1] ?? ''),
        remotePort: port(fields[2] ?? ''),
        state: TCP_STATES[state] ?? state,
      });
    }
  }
  return map;
}

/** What the backend holds at one moment, summed over its process tree. */
export interface BackendSnapshot {
  pids: number[];
  rssBytes: number;
  /** Every open descriptor. */
  fds: number;
  /** Accepted connections on the backend's port (the web server's connection pool to it). */
  connections: number;
  /** Everything else: listeners, pipes, files, the event loop's own descriptors. */
  otherFds: number;
  /** Connections the peer closed and the backend did not (a descriptor leak in the making). */
  closeWait: number;
}

/** Measures the process tree under `root`: RSS and descriptors, connections on `port` counted apart. */
export async function snapshot(root: number, port: number): Promise<BackendSnapshot> {
  const pids = await processTree(root);
  const tcp = await tcpByInode();
  let rssBytes = 0;
  let fds = 0;
  let connections = 0;
  let closeWait = 0;
  for (const pid of pids) {
    rssBytes += await rssOf(pid);
    const entries = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const entry of entries) {
      const link = await readlink(`/proc/${pid}/fd/${entry}`).catch(() => null);
      if (link === null) continue;
      fds++;
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      const socket = inode !== undefined ? tcp.get(inode) : undefined;
      if (socket && socket.localPort === port && socket.state !== 'LISTEN') {
        connections++;
        if (socket.state === 'CLOSE_WAIT') closeWait++;
      }
    }
  }
  return { pids, rssBytes, fds, connections, otherFds: fds - connections, closeWait };
}

// --- the backend ---

/** A `tsgi serve --fastcgi` started by this harness, in its own process group. */
export interface TsgiBackend {
  /** "127.0.0.1:PORT" */
  address: string;
  port: number;
  /** The process spawned (`node bin/tsgi.js`), leader of the group holding any workers. */
  pid: number;
  /** What it wrote to stdout and stderr so far. */
  output(): string;
  /** Whether the spawned process has exited. */
  exited(): boolean;
  /** Sends `signal` to the whole process group. */
  signalGroup(signal: NodeJS.Signals): void;
  /** Resolves once no process of the group is left (throws after `timeoutMs`). */
  waitGone(timeoutMs?: number): Promise<void>;
  /** SIGTERM to the group, SIGKILL after STOP_TIMEOUT_MS. */
  stop(): Promise<void>;
  snapshot(): Promise<BackendSnapshot>;
}

export interface BackendStartOptions {
  /** The port to listen on (a restart reuses the old one); default a free one. */
  port?: number;
  /** Extra `tsgi serve` arguments. */
  args?: string[];
  /** The side-channel file for the app's events (TSGI_RELIABILITY_EVENTS). */
  eventsFile?: string;
  /** How long it gets to accept connections. Default 30 s (tsx compiles the app on first load). */
  startTimeoutMs?: number;
  /** NODE_OPTIONS for the backend's processes (the master and the workers it forks inherit it). */
  nodeOptions?: string;
}

/**
 * Starts `node bin/tsgi.js serve APP --fastcgi 127.0.0.1:PORT --mount /app` detached (its own process
 * group) and resolves once the port accepts connections. It does not depend on the startup line's wording, so
 * a master that forks its workers is waited for the same way: the port answers once a worker listens.
 */
export async function startTsgi(options: BackendStartOptions = {}): Promise<TsgiBackend> {
  const port = options.port ?? (await findFreePort());
  const address = `127.0.0.1:${port}`;
  const args = [TSGI_BIN, 'serve', APP, '--fastcgi', address, '--mount', MOUNT, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    detached: true,
    env: {
      PATH: `${NODE_DIR}:/usr/local/bin:/usr/bin:/bin`,
      LANG: 'C',
      ...(options.eventsFile ? { TSGI_RELIABILITY_EVENTS: options.eventsFile } : {}),
      ...(options.nodeOptions ? { NODE_OPTIONS: options.nodeOptions } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output = keepTail(output + data.toString())));
  child.stderr?.on('data', (data: Buffer) => (output = keepTail(output + data.toString())));
  let exitStatus: string | null = null;
  const exited = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exitStatus = String(code ?? signal);
      resolveExit();
    });
    child.once('error', (error) => {
      exitStatus = error.message;
      resolveExit();
    });
  });
  const pid = child.pid ?? 0;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is gone already
    }
  };
  const waitGone = async (timeoutMs = STOP_TIMEOUT_MS): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    await Promise.race([exited, sleep(timeoutMs)]);
    while ((await groupMembers(pid)).length > 0) {
      if (Date.now() > deadline) throw new Error(`reliability: backend group ${pid} still has processes after ${timeoutMs} ms`);
      await sleep(50);
    }
  };
  let stopping: Promise<void> | null = null;
  const backend: TsgiBackend = {
    address,
    port,
    pid,
    output: () => output,
    exited: () => exitStatus !== null,
    signalGroup,
    waitGone,
    stop: () =>
      (stopping ??= (async () => {
        signalGroup('SIGTERM');
        try {
          await waitGone(STOP_TIMEOUT_MS);
        } catch {
          signalGroup('SIGKILL');
          await waitGone(STOP_TIMEOUT_MS).catch(() => undefined);
        }
      })()),
    snapshot: () => snapshot(pid, port),
  };
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exitStatus !== null) throw new Error(`reliability: tsgi ${args.slice(1).join(' ')} exited (${exitStatus})\n--- output ---\n${output}`);
    if (await canConnect(port)) return backend;
    if (Date.now() > deadline) {
      await backend.stop();
      throw new Error(`reliability: tsgi ${args.slice(1).join(' ')} did not accept connections in time\n--- output ---\n${output}`);
    }
    await sleep(50);
  }
}

function keepTail(text: string): string {
  return text.length > 1_000_000 ? text.slice(-500_000) : text;
}

/** Whether 127.0.0.1:port accepts a TCP connection (closed again at once). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket: Socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => resolveConnect(false));
  });
}

// --- web servers in front ---

export type WebServerName = 'nginx' | 'apache';

/** nginx (conf/nginx-fastcgi.conf) or Apache mod_proxy_fcgi (conf/apache-proxy-fcgi.conf) in front of `backend`. */
export function startWebServer(name: WebServerName, backend: TsgiBackend): Promise<ServerHandle> {
  if (name === 'nginx') {
    return startNginx('nginx-fastcgi.conf', { label: 'reliability-nginx', vars: { BACKEND: backend.address, MOUNT } });
  }
  return startApache('apache-proxy-fcgi.conf', {
    label: 'reliability-apache',
    vars: { BACKEND_URL: `fcgi://${backend.address}`, MOUNT },
  });
}

/** The worker processes of a web server (its master's descendants), to see a reload replace them. */
export async function serverWorkers(server: ServerHandle): Promise<number[]> {
  return (await processTree(server.pid)).filter((pid) => pid !== server.pid);
}

// --- the app's side channel ---

/** A scratch directory holding the events file; world-writable since the backend writes it. */
export async function makeEventsFile(): Promise<{ file: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tsgi-reliability-'));
  await chmod(dir, 0o755);
  return { file: join(dir, 'events.log'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The lines of the events file so far. */
export async function readEvents(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((line) => line.length > 0);
}

/** Polls the events file until `check` returns a value (not undefined/false); throws after `timeoutMs`. */
export async function waitForEvents<T>(file: string, what: string, check: (lines: string[]) => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await readEvents(file);
    const value = check(lines);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`reliability: timed out after ${timeoutMs} ms waiting for ${what}; events:\n${lines.slice(-20).join('\n')}`);
    }
    await sleep(50);
  }
}

// --- the load generator ---

/** One request and what its answer must be. */
export interface Exchange {
  kind: string;
  method: 'GET' | 'POST';
  path: string;
  body?: Uint8Array;
  /** The sha256 the response body must have (checked on a 2xx). */
  expectSha256?: string;
  /** A POST that may be sent twice (an echo): see LoadOptions.retryResets. GETs are idempotent anyway. */
  idempotent?: boolean;
}

/** How one exchange ended. */
export interface Outcome {
  kind: string;
  /** null when no response head arrived (a transport error or a timeout). */
  status: number | null;
  ms: number;
  bytesIn: number;
  bytesOut: number;
  /** The transport error or timeout, if any. */
  error: string | null;
  /** The body differed from what was expected. */
  mismatch: string | null;
  /** Sent on a kept-alive connection that an earlier request used. */
  reused: boolean;
  /** When it started, relative to the load's start. */
  startedAt: number;
}

/**
 * Sends one exchange through `agent`, reading and hashing the whole answer; never throws. A request gets
 * `timeoutMs` from start to last byte; when it runs out the request is destroyed and reported as a timeout.
 */
export function send(port: number, exchange: Exchange, agent: Agent | false, timeoutMs: number, startedAt = 0): Promise<Outcome> {
  const started = performance.now();
  const bytesOut = exchange.body?.length ?? 0;
  return new Promise<Outcome>((resolveOutcome) => {
    let settled = false;
    let status: number | null = null;
    let bytesIn = 0;
    let reused = false;
    const finish = (error: string | null, mismatch: string | null = null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolveOutcome({ kind: exchange.kind, status, ms: performance.now() - started, bytesIn, bytesOut, error, mismatch, reused, startedAt });
    };
    const headers: Record<string, string> = {};
    if (exchange.method === 'POST') {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(bytesOut);
    }
    const req = httpRequest({ host: '127.0.0.1', port, method: exchange.method, path: exchange.path, agent, headers });
    const timer = setTimeout(() => {
      req.destroy();
      finish(`timeout after ${timeoutMs} ms${status === null ? ' (no response head)' : ` (status ${status}, ${bytesIn} bytes in)`}`);
    }, timeoutMs);
    req.once('socket', () => {
      reused = req.reusedSocket;
    });
    req.on('error', (error: NodeJS.ErrnoException) => finish(`${error.code ?? error.name}: ${error.message}`));
    req.on('response', (res: IncomingMessage) => {
      status = res.statusCode ?? 0;
      const hash = createHash('sha256');
      res.on('data', (chunk: Buffer) => {
        bytesIn += chunk.length;
        hash.update(chunk);
      });
      res.on('error', (error: NodeJS.ErrnoException) => finish(`${error.code ?? error.name}: ${error.message} (after ${bytesIn} bytes)`));
      res.on('aborted', () => finish(`response aborted after ${bytesIn} bytes`));
      res.on('end', () => {
        if (!res.complete) return finish(`response incomplete after ${bytesIn} bytes`);
        const ok = status !== null && status >= 200 && status < 300;
        const digest = hash.digest('hex');
        const mismatch =
          ok && exchange.expectSha256 !== undefined && digest !== exchange.expectSha256
            ? `${exchange.method} ${exchange.path}: body sha256 ${digest.slice(0, 12)}... (${bytesIn} bytes), expected ${exchange.expectSha256.slice(0, 12)}...`
            : null;
        finish(null, mismatch);
      });
    });
    req.end(exchange.body && exchange.body.length > 0 ? exchange.body : undefined);
  });
}

/** Totals of a load run. */
export interface LoadStats {
  requests: number;
  ok: number;
  non2xx: number;
  transportErrors: number;
  timeouts: number;
  mismatches: number;
  statuses: Record<string, number>;
  byKind: Record<string, number>;
  /** The first few failures, described. */
  samples: string[];
  /** Requests sent again after an early reset (LoadOptions.retryResets), and the first few of them described. */
  retried: number;
  retriedSamples: string[];
  /** "METHOD PATH" of every request sent again. */
  retriedPaths: string[];
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Every outcome, when `keepOutcomes` was set. */
  outcomes: Outcome[];
}

export interface LoadOptions {
  port: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** The exchange for request number i, or null to stop issuing. */
  next(i: number): Exchange | null;
  /** Upper bound on requests issued. */
  maxRequests: number;
  /** Stop issuing after this long (in-flight requests still finish). */
  maxDurationMs?: number;
  /** Stop issuing once this returns true. */
  stop?: () => boolean;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
  /** Keep-alive agent; default a fresh one with `concurrency` sockets, destroyed at the end. */
  agent?: Agent | false;
  /** Called with each outcome as it arrives. */
  onOutcome?(outcome: Outcome): void;
  /** Each loop waits this long between its requests (clients that are busy but not flat out). Default 0. */
  pauseMs?: number;
  keepOutcomes?: boolean;
  /**
   * Send an idempotent request again (at most RESET_RETRIES times, after a pause of RESET_RETRY_PAUSE_MS,
   * then twice that) when its connection was reset before any
   * byte of the answer arrived. That is what a web server's old worker does to the idle connections it still
   * holds when a reload retires it (kept-alive ones, and ones it accepted but has not read yet): a request
   * that races with that close is lost before it was processed, and HTTP lets a client send it again
   * (RFC 9112 §9.3.1; browsers do). Never after a response head, never on a timeout; every retry is counted
   * in `retried` and its request listed in `retriedPaths`, so a test can check the web server's access log
   * that the lost attempt was never processed.
   */
  retryResets?: boolean;
}

/** How many times retryResets sends a request again, and the pause before the first (doubled for the second). */
export const RESET_RETRIES = 2;
export const RESET_RETRY_PAUSE_MS = 100;

/** Whether an outcome is a reset before any response byte (see LoadOptions.retryResets). */
export function isEarlyReset(outcome: Outcome): boolean {
  return outcome.status === null && outcome.bytesIn === 0 && outcome.error !== null && /ECONNRESET|EPIPE|socket hang up/.test(outcome.error);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Stats with nothing counted yet. */
export function emptyStats(): LoadStats {
  return {
    requests: 0,
    ok: 0,
    non2xx: 0,
    transportErrors: 0,
    timeouts: 0,
    mismatches: 0,
    statuses: {},
    byKind: {},
    samples: [],
    durationMs: 0,
    bytesIn: 0,
    bytesOut: 0,
    p50Ms: 0,
    p99Ms: 0,
    maxMs: 0,
    outcomes: [],
    retried: 0,
    retriedSamples: [],
    retriedPaths: [],
  };
}

/** Runs `concurrency` loops issuing exchanges until maxRequests, maxDurationMs or stop(); never throws. */
export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const ownAgent = options.agent === undefined;
  const agent = options.agent ?? new Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency });
  const stats = emptyStats();
  const latencies: number[] = [];
  const started = performance.now();
  let issued = 0;
  let stopped = false;
  const sample = (text: string): void => {
    if (stats.samples.length < 10) stats.samples.push(text);
  };
  const loop = async (): Promise<void> => {
    for (;;) {
      if (stopped || issued >= options.maxRequests) return;
      if (options.maxDurationMs !== undefined && performance.now() - started > options.maxDurationMs) return;
      if (options.stop?.()) return;
      const exchange = options.next(issued);
      if (exchange === null) {
        stopped = true;
        return;
      }
      issued++;
      const startedAt = performance.now() - started;
      let outcome = await send(options.port, exchange, agent, timeoutMs, startedAt);
      const retryable = options.retryResets && (exchange.method === 'GET' || exchange.idempotent === true);
      for (let retry = 0; retryable && retry < RESET_RETRIES && isEarlyReset(outcome); retry++) {
        stats.retried++;
        stats.retriedPaths.push(`${exchange.method} ${exchange.path}`);
        if (stats.retriedSamples.length < 10) stats.retriedSamples.push(`${exchange.method} ${exchange.path} after: ${outcome.error}${outcome.reused ? ' (reused connection)' : ' (new connection)'}`);
        // A moment's pause first: right away, the retry could land in the same closing window.
        await sleep(RESET_RETRY_PAUSE_MS * (retry + 1));
        outcome = await send(options.port, exchange, agent, timeoutMs, startedAt);
      }
      stats.requests++;
      stats.byKind[outcome.kind] = (stats.byKind[outcome.kind] ?? 0) + 1;
      stats.bytesIn += outcome.bytesIn;
      stats.bytesOut += outcome.bytesOut;
      latencies.push(outcome.ms);
      if (outcome.status !== null) stats.statuses[outcome.status] = (stats.statuses[outcome.status] ?? 0) + 1;
      if (outcome.error !== null) {
        stats.transportErrors++;
        if (outcome.error.startsWith('timeout')) stats.timeouts++;
        sample(`${exchange.method} ${exchange.path}: ${outcome.error}${outcome.reused ? ' (reused connection)' : ''}`);
      } else if (outcome.status === null || outcome.status < 200 || outcome.status >= 300) {
        stats.non2xx++;
        sample(`${exchange.method} ${exchange.path}: status ${outcome.status}`);
      } else if (outcome.mismatch !== null) {
        stats.mismatches++;
        sample(outcome.mismatch);
      } else {
        stats.ok++;
      }
      if (options.keepOutcomes) stats.outcomes.push(outcome);
      options.onOutcome?.(outcome);
      if (options.pauseMs) await sleep(options.pauseMs);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, loop));
  } finally {
    if (ownAgent && agent) agent.destroy();
  }
  stats.durationMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  stats.p50Ms = percentile(latencies, 50);
  stats.p99Ms = percentile(latencies, 99);
  stats.maxMs = latencies[latencies.length - 1] ?? 0;
  return stats;
}

/** A compact, printable summary of a load run (no outcome list). */
export function summary(stats: LoadStats): Record<string, unknown> {
  const { outcomes: _outcomes, retriedPaths: _retriedPaths, ...rest } = stats;
  return {
    ...rest,
    durationMs: Math.round(stats.durationMs),
    reqPerSec: Math.round((stats.requests / stats.durationMs) * 1000),
    p50Ms: Number(stats.p50Ms.toFixed(1)),
    p99Ms: Number(stats.p99Ms.toFixed(1)),
    maxMs: Number(stats.maxMs.toFixed(1)),
  };
}
