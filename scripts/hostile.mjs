#!/usr/bin/env node
/**
 * A hostile mix against a real `tsgi serve --fastcgi` process (issue 10): peers that send PARAMS and STDIN as
 * 1-byte records, begin many requests and never finish them, hold BEGIN_REQUESTs, open idle connections, and
 * declare huge lengths, all at once, while a well-behaved client keeps sending normal requests (a GET and a
 * 64 KiB POST echoed back, on a kept-alive connection, and a GET on a fresh connection) that must all succeed.
 *
 * Reports the backend's peak RSS (VmHWM from /proc/PID/status, and the highest VmRSS sampled), its RSS at the
 * end, the normal requests done and failed, and whether the backend stayed alive. Exit status 0 when the
 * backend is alive, every normal request succeeded and the peak RSS is within --max-rss-mib (when given).
 *
 *   node scripts/hostile.mjs                  # 10 minutes
 *   node scripts/hostile.mjs --seconds 30     # shorter
 *   options: --bin PATH (default bin/tsgi.js; it loads dist/: run `npm run build` first), --from-src (run
 *            src/ through tsx instead: no build needed), --max-rss-mib N, --json (one JSON line at the end),
 *            --serve-arg ARG (repeatable: extra `tsgi serve` arguments), --only LIST (some of the hostile peers:
 *            params,stdin,begins,idle,lengths)
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MIB = 1024 * 1024;

// --- the FastCGI wire, written out here so the script runs without a build --------------------------------
const T = { BEGIN: 1, ABORT: 2, END: 3, PARAMS: 4, STDIN: 5, STDOUT: 6, STDERR: 7, GET_VALUES: 9 };

function header(type, id, length, padding = 0) {
  return Buffer.from([1, type, (id >> 8) & 0xff, id & 0xff, (length >> 8) & 0xff, length & 0xff, padding, 0]);
}

function record(type, id, content = Buffer.alloc(0)) {
  return Buffer.concat([header(type, id, content.length), content]);
}

function begin(id, keepConn = true) {
  return record(T.BEGIN, id, Buffer.from([0, 1, keepConn ? 1 : 0, 0, 0, 0, 0, 0]));
}

function lengthBytes(n) {
  return n <= 127 ? Buffer.from([n]) : Buffer.from([((n >>> 24) & 0x7f) | 0x80, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function pairs(entries) {
  return Buffer.concat(entries.flatMap(([name, value]) => [lengthBytes(name.length), lengthBytes(value.length), Buffer.from(name, 'latin1'), Buffer.from(value, 'latin1')]));
}

function stream(type, id, data) {
  const parts = [];
  for (let at = 0; at < data.length; at += 65535) parts.push(record(type, id, data.subarray(at, at + 65535)));
  return Buffer.concat(parts);
}

/** `data` as 1-byte records of `type` for request `id`. */
function oneByteRecords(type, id, data) {
  const out = Buffer.alloc(data.length * 9);
  for (let i = 0, at = 0; i < data.length; i++, at += 9) {
    out[at] = 1;
    out[at + 1] = type;
    out[at + 2] = (id >> 8) & 0xff;
    out[at + 3] = id & 0xff;
    out[at + 5] = 1;
    out[at + 8] = data[i];
  }
  return out;
}

function params(method, uri, extra = []) {
  return pairs([
    ['REQUEST_METHOD', method],
    ['REQUEST_URI', uri],
    ['SCRIPT_NAME', ''],
    ['PATH_INFO', uri.split('?')[0]],
    ['QUERY_STRING', uri.split('?')[1] ?? ''],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SERVER_NAME', 'localhost'],
    ['SERVER_PORT', '80'],
    ['REMOTE_ADDR', '127.0.0.1'],
    ...extra,
  ]);
}

/** A well-formed request's bytes. */
function request(id, method, uri, body = Buffer.alloc(0), keepConn = true) {
  const extra = body.length > 0 ? [['CONTENT_LENGTH', String(body.length)], ['CONTENT_TYPE', 'application/octet-stream']] : [];
  const parts = [begin(id, keepConn), stream(T.PARAMS, id, params(method, uri, extra)), record(T.PARAMS, id)];
  if (body.length > 0) parts.push(stream(T.STDIN, id, body));
  parts.push(record(T.STDIN, id));
  return Buffer.concat(parts);
}

// --- the app the backend serves ---------------------------------------------------------------------------
const APP = `
const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});
export default async function app(environ, start) {
  const path = environ.PATH_INFO || '/';
  if (path === '/echo') {
    const chunks = [];
    for (;;) { const chunk = await environ['tsgi.input'].read(65536); if (chunk.length === 0) break; chunks.push(chunk); }
    start('200 OK', [['Content-Type', 'application/octet-stream']]);
    return chunks;
  }
  if (path === '/hold') {
    // Never reads its body: the input waits in the server's buffers.
    await sleep(20000, environ['tsgi.signal']);
    start('200 OK', [['Content-Type', 'text/plain']]);
    return ['held'];
  }
  start('200 OK', [['Content-Type', 'text/plain']]);
  return ['ok ' + (environ.QUERY_STRING || '')];
}
`;

// --- arguments --------------------------------------------------------------------------------------------
function parseArgs(argv) {
  const options = { seconds: 600, bin: join(ROOT, 'bin/tsgi.js'), fromSrc: false, maxRssMib: 0, json: false, serveArgs: [], only: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`hostile: ${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--seconds') options.seconds = Number(next());
    else if (arg === '--bin') options.bin = resolve(next());
    else if (arg === '--max-rss-mib') options.maxRssMib = Number(next());
    else if (arg === '--serve-arg') options.serveArgs.push(next());
    else if (arg === '--json') options.json = true;
    else if (arg === '--from-src') options.fromSrc = true;
    else if (arg === '--only') options.only = new Set(next().split(','));
    else throw new Error(`hostile: unknown argument ${arg}`);
  }
  if (!(options.seconds > 0)) throw new Error('hostile: --seconds must be a positive number');
  return options;
}

const sleep = (ms) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function readStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kib('VmRSS') * 1024, hwm: kib('VmHWM') * 1024 };
  } catch {
    return null;
  }
}

/** A raw connection that swallows errors and whose writes respect backpressure. */
function open(port) {
  return new Promise((resolveOpen) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('connect', () => resolveOpen(socket));
    socket.once('close', () => resolveOpen(socket));
  });
}

/** Writes; resolves true once the socket can take more, false when it closed or `deadline` passed first. */
function write(socket, bytes, deadline = Number.POSITIVE_INFINITY) {
  if (socket.destroyed) return Promise.resolve(false);
  if (socket.write(bytes)) return Promise.resolve(true);
  return new Promise((resolveWrite) => {
    const done = (ok) => {
      clearTimeout(timer);
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolveWrite(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), Math.max(0, Math.min(deadline - Date.now(), 2 ** 31 - 1)));
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** Reads whole records from a socket; `onRecord(type, id, content)`. */
function onRecords(socket, onRecord) {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 8) {
      const length = pending.readUInt16BE(at + 4);
      const total = 8 + length + pending[at + 6];
      if (pending.length - at < total) break;
      onRecord(pending[at + 1], pending.readUInt16BE(at + 2), pending.subarray(at + 8, at + 8 + length));
      at += total;
    }
    pending = pending.subarray(at);
  });
}

// --- the well-behaved client ------------------------------------------------------------------------------
class NormalClient {
  constructor(port) {
    this.port = port;
    this.socket = null;
    this.waiting = null;
  }

  async #connect() {
    this.socket = await open(this.port);
    const stdout = [];
    onRecords(this.socket, (type, _id, content) => {
      if (type === T.STDOUT) stdout.push(Buffer.from(content));
      if (type === T.END) {
        const waiting = this.waiting;
        this.waiting = null;
        waiting?.resolve({ stdout: Buffer.concat(stdout.splice(0)), protocolStatus: content[4] });
      }
    });
    this.socket.once('close', () => {
      const waiting = this.waiting;
      this.waiting = null;
      waiting?.reject(new Error('connection closed'));
    });
  }

  /** One request on the kept-alive connection (reconnecting when the server closed it). */
  async exchange(method, uri, body, keepConn = true, timeoutMs = 15_000) {
    if (this.socket === null || this.socket.destroyed || this.socket.writableEnded || this.socket.readableEnded) await this.#connect();
    const reply = new Promise((resolveReply, reject) => {
      this.waiting = { resolve: resolveReply, reject };
    });
    const timer = setTimeout(() => this.waiting?.reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    try {
      await write(this.socket, request(1, method, uri, body, keepConn), Date.now() + timeoutMs);
      return await reply;
    } finally {
      clearTimeout(timer);
      if (!keepConn) this.socket.destroy();
    }
  }
}

function checkReply(reply, expected) {
  if (reply.protocolStatus !== 0) throw new Error(`protocolStatus ${reply.protocolStatus}`);
  const split = reply.stdout.indexOf('\r\n\r\n');
  const head = reply.stdout.subarray(0, split).toString('latin1');
  const body = reply.stdout.subarray(split + 4);
  if (/^Status: (?!200)/m.test(head)) throw new Error(`answered ${head.split('\r\n')[0]}`);
  if (typeof expected === 'string' ? body.toString() !== expected : !body.equals(expected)) throw new Error('wrong body');
}

async function normalTraffic(port, until, stats) {
  const kept = new NormalClient(port);
  const postBody = createHash('sha512').update('hostile').digest();
  const body = Buffer.concat(Array.from({ length: 1024 }, () => postBody)); // 64 KiB
  let n = 0;
  while (Date.now() < until) {
    n++;
    const attempts = [
      () => kept.exchange('GET', `/ok?n=${n}`).then((reply) => checkReply(reply, `ok n=${n}`)),
      () => kept.exchange('POST', '/echo', body).then((reply) => checkReply(reply, body)),
      () => new NormalClient(port).exchange('GET', `/ok?fresh=${n}`, Buffer.alloc(0), false).then((reply) => checkReply(reply, `ok fresh=${n}`)),
    ];
    for (const attempt of attempts) {
      const started = Date.now();
      try {
        await attempt();
        stats.ok++;
        stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - started);
        if (process.env.HOSTILE_DEBUG && Date.now() - started > 500) process.stdout.write(`  slow: attempt ${attempts.indexOf(attempt)} took ${Date.now() - started} ms\n`);
      } catch (error) {
        stats.failed++;
        const line = `${new Date().toISOString()} ${['kept-alive GET', 'kept-alive POST', 'fresh GET'][attempts.indexOf(attempt)]}: ${error.message}`;
        if (stats.errors.length < 10) stats.errors.push(line);
        stats.onError?.(line);
      }
    }
    await sleep(50);
  }
}

// --- the hostile peers ------------------------------------------------------------------------------------
/** Begins `count` requests and sends each `bytes` of PARAMS as 1-byte records, never ending them. */
async function oneBytePARAMS(port, until, count, bytes) {
  while (Date.now() < until) {
    const socket = await open(port);
    const filler = pairs([['HTTP_X_FILL', 'p'.repeat(bytes)]]).subarray(0, bytes);
    for (let id = 1; id <= count && !socket.destroyed && Date.now() < until; id++) {
      await write(socket, begin(id), until);
      for (let at = 0; at < filler.length && !socket.destroyed && Date.now() < until; at += 16 * 1024) {
        await write(socket, oneByteRecords(T.PARAMS, id, filler.subarray(at, at + 16 * 1024)), until);
      }
    }
    // Held until the server gives up on it (header timeout) or the run ends.
    while (!socket.destroyed && Date.now() < until) await sleep(200);
    socket.destroy();
  }
}

/**
 * Requests to an app that does not read (it answers after 20 s), whose bodies arrive as 1-byte STDIN records
 * for as long as the server takes them; a new connection and new requests every 25 s.
 */
async function oneByteSTDIN(port, until, count) {
  const chunk = oneByteRecords(T.STDIN, 0, Buffer.alloc(16 * 1024, 0x73));
  while (Date.now() < until) {
    const cycleEnd = Math.min(until, Date.now() + 25_000);
    const socket = await open(port);
    const ids = [];
    for (let id = 1; id <= count; id++) {
      ids.push(id);
      await write(socket, Buffer.concat([begin(id), stream(T.PARAMS, id, params('POST', '/hold')), record(T.PARAMS, id)]), cycleEnd);
    }
    let round = 0;
    while (!socket.destroyed && Date.now() < cycleEnd) {
      const id = ids[round++ % ids.length];
      for (let at = 0; at < chunk.length; at += 9) chunk.writeUInt16BE(id, at + 2);
      if (!(await write(socket, chunk, cycleEnd))) break;
    }
    socket.destroy();
  }
}

/** 1,024 BEGIN_REQUESTs and nothing more, held. */
async function heldBegins(port, until) {
  while (Date.now() < until) {
    const socket = await open(port);
    await write(socket, Buffer.concat(Array.from({ length: 1024 }, (_, i) => begin(i + 1))), until);
    while (!socket.destroyed && Date.now() < until) await sleep(200);
    socket.destroy();
  }
}

/** `count` connections that never send a byte, reopened as the server closes them. */
async function idleConnections(port, until, count) {
  const keepOne = async () => {
    while (Date.now() < until) {
      const socket = await open(port);
      while (!socket.destroyed && Date.now() < until) await sleep(250);
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: count }, keepOne));
}

/** Huge declared lengths: a name-value length of 2^31-1, a record that announces 65535 bytes and stalls. */
async function hugeLengths(port, until) {
  while (Date.now() < until) {
    const a = await open(port);
    const lying = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from('x')]);
    await write(a, Buffer.concat([begin(1), record(T.PARAMS, 1, lying), record(T.PARAMS, 1)]));
    const b = await open(port);
    await write(b, Buffer.concat([begin(1), header(T.PARAMS, 1, 65535, 255), Buffer.alloc(100, 0x41)]));
    const c = await open(port);
    await write(c, record(T.GET_VALUES, 0, lying));
    await sleep(1000);
    for (const socket of [a, b, c]) socket.destroy();
  }
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'tsgi-hostile-'));
  const appFile = join(dir, 'app.mjs');
  writeFileSync(appFile, APP);
  const port = await freePort();
  let command = [options.bin];
  if (options.fromSrc) {
    const launcher = join(dir, 'launch.mjs');
    const main = JSON.stringify(join(ROOT, 'src/cli/main.ts'));
    writeFileSync(launcher, `import { main } from ${main};\nmain(process.argv.slice(2)).then((status) => { process.exitCode = status; });\n`);
    command = ['--import', 'tsx', launcher];
  }
  const child = spawn(process.execPath, [...command, 'serve', appFile, '--fastcgi', `127.0.0.1:${port}`, '--workers', '0', ...options.serveArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (data) => {
    log += data.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.once('exit', (code, signal) => (exited = `exit ${code ?? signal}`));
  const pid = child.pid;
  const ready = Date.now() + 15_000;
  for (;;) {
    const probe = connect(port, '127.0.0.1');
    const up = await new Promise((resolveProbe) => {
      probe.once('connect', () => resolveProbe(true));
      probe.once('error', () => resolveProbe(false));
    });
    probe.destroy();
    if (up) break;
    if (exited || Date.now() > ready) throw new Error(`hostile: the backend did not start (${exited ?? 'timeout'}):\n${log}`);
    await sleep(100);
  }
  await sleep(300);
  const baseline = readStatus(pid);
  let peakRss = baseline?.rss ?? 0;
  const sampler = setInterval(() => {
    const status = readStatus(pid);
    if (status) peakRss = Math.max(peakRss, status.rss);
  }, 100);

  const started = Date.now();
  const until = started + options.seconds * 1000;
  const stats = { ok: 0, failed: 0, maxLatencyMs: 0, errors: [], onError: options.json ? null : (line) => process.stdout.write(`  normal request failed: ${line}\n`) };
  if (!options.json) process.stdout.write(`hostile: backend pid ${pid} on 127.0.0.1:${port}, RSS ${(baseline.rss / MIB).toFixed(1)} MiB; ${options.seconds} s of hostile mix\n`);
  const progress = options.json
    ? null
    : setInterval(() => {
        const status = readStatus(pid);
        process.stdout.write(`  ${Math.round((Date.now() - started) / 1000)} s: RSS ${status ? (status.rss / MIB).toFixed(1) : '-'} MiB, peak ${(peakRss / MIB).toFixed(1)} MiB, normal ok ${stats.ok} failed ${stats.failed}\n`);
      }, 10_000);
  const peers = {
    params: () => Promise.all([oneBytePARAMS(port, until, 40, MIB - 64), oneBytePARAMS(port, until, 16, 512 * 1024)]),
    stdin: () => oneByteSTDIN(port, until, 8),
    begins: () => heldBegins(port, until),
    idle: () => idleConnections(port, until, 300),
    lengths: () => hugeLengths(port, until),
  };
  const chosen = Object.entries(peers).filter(([name]) => options.only === null || options.only.has(name));
  await Promise.all([normalTraffic(port, until, stats), ...chosen.map(([, run]) => run())]);
  // After the attack: normal requests are served again.
  const after = { ok: 0, failed: 0, maxLatencyMs: 0, errors: [] };
  await normalTraffic(port, Date.now() + 2_000, after);
  clearInterval(sampler);
  if (progress) clearInterval(progress);
  const end = readStatus(pid);
  const alive = exited === null && end !== null;
  const result = {
    seconds: options.seconds,
    alive,
    peakRssMiB: Math.round((Math.max(peakRss, end?.hwm ?? 0) / MIB) * 10) / 10,
    vmHwmMiB: end ? Math.round((end.hwm / MIB) * 10) / 10 : null,
    baselineRssMiB: baseline ? Math.round((baseline.rss / MIB) * 10) / 10 : null,
    endRssMiB: end ? Math.round((end.rss / MIB) * 10) / 10 : null,
    normalOk: stats.ok,
    normalFailed: stats.failed,
    normalMaxLatencyMs: stats.maxLatencyMs,
    afterOk: after.ok,
    afterFailed: after.failed,
    errors: [...stats.errors, ...after.errors],
    limitLines: log.split('\n').filter((line) => line.includes('refused at the limit')).slice(0, 12),
    otherLogLines: [...new Set(log.split('\n').filter((line) => line.startsWith('tsgi: fastcgi') && !line.includes('refused at the limit')))].slice(0, 12),
  };
  if (!alive) result.backendLog = log.slice(-4000);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // gone already
  }
  await Promise.race([new Promise((resolveExit) => child.once('exit', resolveExit)), sleep(5_000)]);
  if (exited === null) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const ok = alive && stats.failed === 0 && after.failed === 0 && after.ok > 0 && (!options.maxRssMib || result.peakRssMiB <= options.maxRssMib);
  process.exitCode = ok ? 0 : 1;
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exitCode = 1;
});
