#!/usr/bin/env node
/**
 * tsgi's benchmark: one entry point for every figure (npm run bench; a script, never a test).
 *
 *   node bench/run.mjs [--quick] [--duration 5s] [--warmup 3s] [--rounds 3] [--only|--rows ROW,ROW,...]
 *                      [--connections 32] [--threads 2] [--direct-threads 1] [--php-children N]
 *                      [--stream-mib 1024] [--cgi-runs 20] [--git-mib 50] [--profile ROW] [--no-gc] [--instructions]
 *                      [--results FILE | --no-results] [--no-build] [--no-install] [--max-minutes M] [--keep]
 *
 * 1. Setup. Installs the Debian packages the selected rows need when they are missing (as root, with
 *    apt-get install -y --no-install-recommends and a policy-rc.d so that no packaged service starts;
 *    skipped when everything is there):
 *      PACKAGES
 *    Runs `npm run build` (bin/tsgi.js runs dist/; --no-build measures the dist/ already there), checks the
 *    npm devDependencies (node-fastcgi, express, hono, @hono/node-server, fastify), and builds bench/apps/go-fcgi/main.go into the temp dir
 *    (GOCACHE and GOPATH there, no module, no network).
 * 2. Throughput. Starts ONE nginx (1 worker process, access_log off, upstream keepalive where the protocol
 *    allows it) with one loopback server per row, and every row's backend in its own process group. Every
 *    backend answers "Hello, World!" at / and 64 KiB at /64k (bench/apps/payload.mjs); both are checked
 *    through nginx before anything is measured. Then, per row and payload: wrk warm-up, then
 *    `wrk -t2 -c32 -d5s --latency`, rows one after another, --rounds times in rotating order (median by req/s).
 *    Rows (ids for --only):
 *      tsgi-fastcgi     `tsgi serve bench/apps/hello.ts --fastcgi 127.0.0.1:P --mount /`; fastcgi_pass,
 *                       fastcgi_keep_conn on
 *      tsgi-scgi        the same with --scgi; scgi_pass (a connection per request: SCGI has no reuse)
 *      tsgi-uwsgi       the same with --uwsgi; uwsgi_pass (a connection per request)
 *      tsgi-http        `tsgi serve bench/apps/hello.ts --http 127.0.0.1:P`; proxy_pass, HTTP/1.1 keepalive
 *      node-http        plain node:http (bench/apps/node-http-hello.mjs); proxy_pass: the ratio baseline
 *      express-fastcgi  Express 5 through fromNodeHandler (bench/apps/express-hello.ts), tsgi serve --fastcgi
 *      express-fastcgi-floor  the floor of express-fastcgi: the same Express app behind a minimal bridge
 *                       (bench/apps/express-floor.mjs), tsgi serve --fastcgi
 *      express-http     the same Express app on node:http (app.listen); proxy_pass
 *      node-http-close  the same node:http server; proxy_pass WITHOUT keepalive (a connection per request,
 *                       as SCGI and uwsgi have): the baseline of tsgi SCGI and uwsgi
 *      fcgi-minimal     a minimal Node FastCGI responder (bench/apps/minimal-fastcgi.mjs, written for the
 *                       bench; its header says what it does and does not do); fastcgi_pass, keep_conn on
 *      scgi-minimal     a minimal Node SCGI responder (bench/apps/minimal-scgi-uwsgi.mjs scgi, written for the
 *                       bench; its header says what it does and does not do): the floor of tsgi SCGI
 *      uwsgi-minimal    the same file's uwsgi responder: the floor of tsgi uwsgi
 *      node-fastcgi     node-fastcgi (devDependency), its README's server; fastcgi_pass
 *      php-fpm          Debian's php-fpm, pm = static, one child per wrk connection (bench/apps/hello.php)
 *      uwsgi-python     uWSGI + python3 plugin, 1 process (bench/apps/hello_wsgi.py); uwsgi_pass
 *      go-fcgi          Go's net/http/fcgi, 1 process (bench/apps/go-fcgi/main.go); fastcgi_pass
 *      nginx            nginx alone: `return 200` / a static 64 KiB file (the ceiling)
 *    tsgi rows run the way users start them, `tsgi serve` without --workers; every Node row has one process
 *    serving. Printed per payload: req/s, the ratio to Node http via proxy (the headline), p50/p99 latency,
 *    the backend tree's peak RSS (sum of VmHWM over its processes, from /proc) and PSS, the serving
 *    process's peak RSS, CPU time per request of the backend and of nginx (steadier than req/s on a shared
 *    machine), the GC share (below), errors, and the CPU used by processes not of this bench (a WARNING
 *    when the machine is busy); then the goals of the FastCGI and bridges issues.
 *    Direct HTTP (no nginx): the same backends' HTTP servers measured with wrk straight at their port,
 *    `wrk -t1 -c32` (--direct-threads), in the same rounds. Rows (ids for --only):
 *      direct-node          raw node:http handler (bench/apps/node-http-hello.mjs): the anchor, 1.00x
 *      direct-hono          Hono 4 on @hono/node-server (bench/apps/hono-hello.mjs)
 *      direct-fastify       Fastify 5 (bench/apps/fastify-hello.mjs)
 *      direct-tsgi          `tsgi serve bench/apps/hello.ts --http 127.0.0.1:P` (a master and one worker)
 *      direct-inprocess     `createHttpServer(app)` in one process (bench/apps/tsgi-http-inprocess.mjs)
 *      direct-express       Express on node:http directly (bench/apps/express-http-hello.mjs)
 *      direct-express-tsgi  Express via fromNodeHandler, `tsgi serve bench/apps/express-hello.ts --http`
 *      direct-floor         the floor of the tsgi rows: a minimal environ gateway on node:http
 *                           (bench/apps/minimal-http-gateway.mjs; its header says what it does and does not do)
 *      direct-express-floor the floor of the Express row: the same Express app behind a minimal bridge,
 *                           `tsgi serve bench/apps/express-floor.mjs --http` (its header says what it leaves out)
 *    Memory: every row's serving process (the one that used the most CPU: a `tsgi serve` worker) has its
 *    peak RSS (VmHWM) read after its first hello run; when direct-tsgi runs, an idle
 *    `node -e 'setInterval(()=>{},1e3)'` and the master's floor (bench/apps/master-floor.mjs: the least a
 *    prefork master does, its header says what) run beside it, and the master's RSS (VmRSS) is compared
 *    with the idle node's and the floor's, all read at that moment.
 *    GC (unless --no-gc): afterwards every Node row's backend is started again under
 *    `node --cpu-prof --cpu-prof-dir DIR`, gets a wrk warm-up then one hello run, and stops with SIGINT;
 *    the GC share is the `(garbage collector)` node's self time over all non-idle samples taken during that
 *    run, in the busiest profile (the serving process). Printed as the "GC %" column of the hello tables.
 *    Summary: the goals of issues 11 and 12 as ratios of this run, each PASS or MISS, at the very end.
 *    cgi-bin (issue 12): the same shell script (bench/apps/cgi-bin/hello.sh: printf of a head and "Hello") at
 *    /cgi-bin/hello.sh behind the same nginx, served by the C fcgiwrap (the anchor), by `tsgi serve --cgi-bin`
 *    and by the floor (a bare Node spawn per request) with as many processes, `wrk -t1 -c8` with the duration,
 *    warm-up and rounds above, the rows of the same N one after the other (order rotating every round), median
 *    by req/s; printed with the ratios to fcgiwrap and to the floor per N, CPU per request of the backend
 *    including the scripts (cutime/cstime of the processes that reaped them) and of nginx; the SUMMARY says
 *    whether tsgi >= 1.0x fcgiwrap, and how far the floor and tsgi's share of it are. Rows (ids for --only):
 *      cgi-fcgiwrap-2   `fcgiwrap -c 2 -s tcp:127.0.0.1:P`; nginx as in Debian's fcgiwrap recipe (stock params,
 *                       SCRIPT_FILENAME), a connection per request
 *      cgi-fcgiwrap-4   the same with -c 4
 *      cgi-tsgi-2       `tsgi serve --cgi-bin DIR --workers 2 --fastcgi 127.0.0.1:P --mount /cgi-bin`; nginx as
 *                       in conf/nginx-cgi-bin.conf (split at /cgi-bin, buffering off, fastcgi_keep_conn on)
 *      cgi-tsgi-4       the same with --workers 4
 *      cgi-node-floor-2 the least any Node host could do: 2 processes of bench/apps/minimal-cgi-spawn.mjs (a
 *                       minimal FastCGI responder, one `child_process.spawn` of the script per request, its
 *                       stdout copied; its header says what it does not do), one port each; nginx as for tsgi,
 *                       upstream over the 2 ports
 *      cgi-node-floor-4 the same with 4 processes
 * 3. Streaming (id `stream`): --stream-mib MiB uploaded (chunked) and downloaded through the same nginx
 *    (buffering off) to `tsgi serve bench/apps/stream.ts --fastcgi`, checked byte-identical by sha256, with
 *    the backend tree's peak RSS (goal < 120 MiB).
 * 4. CGI start-up (id `cgi`): cgi-bin/hello.ts built with tsgi against `node -e 0`, a Python CGI and a shell
 *    CGI: wall time and peak RSS (GNU time), interleaved runs, medians.
 * 5. git over HTTP (id `git-cgi`, issue 12): a repository of --git-mib MiB of random (incompressible) 1 MiB
 *    blobs, generated once into the temp dir, served by git http-backend under `tsgi serve --cgi-bin DIR --http`
 *    (DIR holding a wrapper script, GIT_PROJECT_ROOT and GIT_HTTP_EXPORT_ALL by --cgi-env) and under Apache
 *    mod_cgi (`ScriptAlias /git/ /usr/lib/git-core/git-http-backend/`, mpm_prefork; bench/lib/apache-git.mjs),
 *    both reached directly by git's client: `git clone --bare`, then `git -c http.postBuffer=65536 push` into an
 *    empty repository (checked to go chunked, with GIT_TRACE_CURL, and to arrive whole), --rounds times each,
 *    the server order flipped every round; median times, the ratio tsgi/Apache (SUMMARY: <= 1.05x) and the
 *    servers' CPU time (git http-backend included).
 *
 * With the defaults a run takes about 23 minutes on 2 cores (setup included); --quick about 5.
 * Before measuring, the run warns when the machine is not quiet: a 1-minute load average above 1, or a
 * wrk that is not the bench's already running; such figures are not comparable.
 *
 * The report goes to stdout and, unless --only or --no-results, to bench/RESULTS.md (--results FILE: there).
 * Exit status 0 when every selected row ran cleanly; 1 when one could not run (a clear message says why),
 * had non-2xx responses, or a transfer was not byte-identical; 2 for bad options. Every child process is
 * stopped on exit, also on Ctrl-C, on errors and at --max-minutes.
 *
 * Options:
 *   --quick            smoke run: 1s per wrk run, 1s warm-up, 1 round, 64 MiB streamed, 5 CGI runs
 *                      (the other options still override these)
 *   --duration S       seconds per measured wrk run (default 5s)
 *   --warmup S         seconds of wrk warm-up before a row's first measured run (default 3s)
 *   --rounds N         measured runs per row and payload, median reported (default 3)
 *   --only IDS         comma-separated row ids (above), `stream`, `cgi`, `git-cgi`; the rest is not run
 *   --rows IDS         the same as --only
 *   --connections N    wrk connections (default 32); --threads N: wrk threads behind nginx (default 2)
 *   --direct-threads N wrk threads of the direct HTTP rows (default 1)
 *   --php-children N   PHP-FPM pm.max_children (default: the connection count)
 *   --stream-mib N     MiB each way for the streaming figures (default 1024)
 *   --cgi-runs N       runs per CGI variant (default 20)
 *   --git-mib N        size of the git-cgi repository in MiB (default 50; 16 with --quick)
 *   --profile ROW      afterwards, a CPU profile of a Node row's backend under one wrk run (top functions)
 *   --no-gc            skip the GC pass (the --cpu-prof run of every Node row)
 *   --instructions     afterwards, every Node row under valgrind's callgrind: user-space instructions per
 *                      hello request of its serving process (bench/lib/instructions.mjs), a figure the
 *                      machine's load does not move; printed in the hello tables and beside each goal
 *   --results FILE     where to write the markdown report (default bench/RESULTS.md; none with --only)
 *   --no-results       write no markdown report
 *   --no-build         don't run `npm run build` (measure the dist/ already there)
 *   --no-install       never run apt-get: fail naming the missing packages instead
 *   --max-minutes M    stop everything and fail after M minutes (default 40)
 *   --keep             keep the temp dir (configs, logs, profiles) and print its path
 *   -h, --help         this text
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { phpFpmConfig, ROW_IDS, ROWS } from './lib/backends.mjs';
import { CGI_BIN_IDS, CGI_BIN_ROWS, cgiBinSummary, measureCgiBin, prepareCgiBin, waitUntilCgiServing, withInstanceServers } from './lib/cgi-bin.mjs';
import { CGI_GOAL_RATIO, measureCgiStartup } from './lib/cgi-startup.mjs';
import { gitCgiSummary, measureGitCgi } from './lib/git-cgi.mjs';
import { FASTCGI_PARAMS, nginxConfig, streamFastcgiLocation } from './lib/nginx.mjs';
import {
  abortRun,
  findFreePort,
  httpGet,
  installExitHandlers,
  keepDir,
  removeOnExit,
  runningGroups,
  runQuick,
  sleep,
  startProcess,
  stopAll,
  stopProcess,
} from './lib/processes.mjs';
import { cpuBetween, machineLoad, processMemory, sampleCpu, treeMemory } from './lib/procstats.mjs';
import { countInstructions, missingInstructionTools } from './lib/instructions.mjs';
import { profileBackend } from './lib/profile.mjs';
import { markdownReport, textReport } from './lib/report.mjs';
import { ALL_PACKAGES, buildGo, buildTsgi, checkNodeModules, describeMachine, ensureTools, findPhpFpm, findUwsgi, nodeModuleVersion } from './lib/setup.mjs';
import { measureStreaming, streamFloorText, waitUntilStreamServing } from './lib/streaming.mjs';
import { runWrk } from './lib/wrk.mjs';
import { BIG_BODY, BIG_PATH, HELLO_BODY } from './apps/payload.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const APPS = join(ROOT, 'bench', 'apps');
const NGINX = '/usr/sbin/nginx';
const DEFAULT_RESULTS = join(ROOT, 'bench', 'RESULTS.md');
const READY_TIMEOUT_MS = 60_000;
const STREAM_RSS_GOAL_MIB = 120;
/** More CPU than this (percent of one core) used by processes not of this bench makes a figure suspect. */
const FOREIGN_CPU_WARN_PCT = 10;
const EXTRA_IDS = ['stream', 'cgi', 'git-cgi'];
const PAYLOADS = [
  { id: 'hello', label: 'Hello world (13 bytes)', path: '/', body: HELLO_BODY },
  { id: 'big', label: '64 KiB response', path: BIG_PATH, body: BIG_BODY },
];
const GOALS = [
  { row: 'tsgi-fastcgi', against: 'node-http', min: 1.2 },
  { row: 'tsgi-fastcgi', against: 'node-fastcgi', min: 6 },
  { row: 'tsgi-fastcgi', against: 'php-fpm', min: 1.5 },
  { row: 'tsgi-scgi', against: 'tsgi-fastcgi', min: 1 },
  { row: 'tsgi-uwsgi', against: 'tsgi-fastcgi', min: 1 },
  { row: 'express-fastcgi', against: 'express-http', min: 0.9 },
];
/**
 * Issue 11's goals, each a ratio of two rows of the same run (`kind` rps: req/s for both payloads, judged
 * on each; `worker-rss`: the serving process's peak RSS after the hello runs; `master-rss`: the `tsgi serve`
 * master's RSS over an idle node's).
 */
const ISSUE11_GOALS = [
  { kind: 'rps', row: 'direct-tsgi', against: 'direct-node', min: 0.9, floor: 'direct-floor', label: 'direct: tsgi serve --http / raw node:http' },
  { kind: 'rps', row: 'direct-tsgi', against: 'direct-hono', min: 1.0, label: 'direct: tsgi serve --http / Hono on @hono/node-server' },
  { kind: 'rps', row: 'direct-express-tsgi', against: 'direct-express', min: 0.9, floor: 'direct-express-floor', label: 'direct: Express via tsgi serve --http / Express on node:http' },
  { kind: 'rps', row: 'tsgi-fastcgi', against: 'fcgi-minimal', min: 0.95, label: 'nginx: tsgi FastCGI / minimal Node FastCGI responder' },
  { kind: 'rps', row: 'tsgi-fastcgi', against: 'node-http', min: 1.0, label: 'nginx: tsgi FastCGI / Node http via proxy' },
  { kind: 'rps', row: 'express-fastcgi', against: 'express-http', min: 0.9, floor: 'express-fastcgi-floor', label: 'nginx: Express via tsgi FastCGI / Express on node:http via proxy' },
  { kind: 'rps', row: 'tsgi-scgi', against: 'node-http-close', min: 0.95, floor: 'scgi-minimal', label: 'nginx: tsgi SCGI / Node http via proxy, no keepalive' },
  { kind: 'rps', row: 'tsgi-uwsgi', against: 'node-http-close', min: 0.95, floor: 'uwsgi-minimal', label: 'nginx: tsgi uwsgi / Node http via proxy, no keepalive' },
  { kind: 'worker-rss', row: 'direct-tsgi', against: 'direct-node', max: 1.15, label: 'memory: tsgi serve --http worker peak RSS / raw node:http peak RSS (hello)' },
  { kind: 'master-rss', row: 'direct-tsgi', max: 1.1, label: "memory: tsgi serve master RSS / idle node -e 'setInterval(()=>{},1e3)' RSS" },
];
/**
 * Issue 11's goal 5: under the hello load, the `(garbage collector)` share of a tsgi row's serving process
 * profile (the GC pass) at most GC_GOAL_MAX; a MISS is printed with its floor's share in the same run.
 */
const GC_GOAL_MAX = 0.03;
const GC_GOALS = [
  { row: 'tsgi-fastcgi', floor: 'fcgi-minimal' },
  { row: 'tsgi-scgi', floor: 'scgi-minimal' },
  { row: 'tsgi-uwsgi', floor: 'uwsgi-minimal' },
  { row: 'tsgi-http', floor: 'direct-floor' },
  { row: 'direct-tsgi', floor: 'direct-floor' },
  { row: 'direct-inprocess', floor: 'direct-floor' },
];
/** A 1-minute load average above this at the start makes the run warn: the machine is not quiet. */
const QUIET_LOADAVG = 1;
/** --instructions: keep-alive GETs before the counters are zeroed (V8 optimizes the path), then the counted ones. */
const INSTRUCTION_WARMUP = 16_000;
const INSTRUCTION_REQUESTS = 8_000;
const INSTRUCTION_READY_TIMEOUT_MS = 300_000;
const PREFIX = 'bench';

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------------------
// Options.

function parseSeconds(text, flag) {
  const match = /^([0-9]+)(s|m)?$/.exec(text);
  if (!match) throw new UsageError(`${flag} expects whole seconds like 5s, 10 or 1m (got ${text})`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

function parseCount(text, flag, min = 1) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} expects an integer >= ${min} (got ${text})`);
  return value;
}

export function parseOptions(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      rows: { type: 'string' },
      'direct-threads': { type: 'string', default: '1' },
      'no-gc': { type: 'boolean', default: false },
      instructions: { type: 'boolean', default: false },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      'php-children': { type: 'string' },
      'stream-mib': { type: 'string' },
      'cgi-runs': { type: 'string' },
      'git-mib': { type: 'string' },
      profile: { type: 'string' },
      results: { type: 'string' },
      'no-results': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'no-install': { type: 'boolean', default: false },
      'max-minutes': { type: 'string', default: '40' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]} (see --help)`);
  const quick = values.quick;
  const connections = parseCount(values.connections, '--connections');
  const options = {
    help: values.help,
    quick,
    duration: parseCount(String(parseSeconds(values.duration ?? (quick ? '1s' : '5s'), '--duration')), '--duration'),
    warmup: parseSeconds(values.warmup ?? (quick ? '1s' : '3s'), '--warmup'),
    rounds: parseCount(values.rounds ?? (quick ? '1' : '3'), '--rounds'),
    connections,
    threads: Math.min(parseCount(values.threads, '--threads'), connections),
    directThreads: Math.min(parseCount(values['direct-threads'], '--direct-threads'), connections),
    gc: !values['no-gc'],
    instructions: values.instructions,
    phpChildren: values['php-children'] ? parseCount(values['php-children'], '--php-children') : connections,
    streamMib: parseCount(values['stream-mib'] ?? (quick ? '64' : '1024'), '--stream-mib'),
    cgiRuns: parseCount(values['cgi-runs'] ?? (quick ? '5' : '20'), '--cgi-runs'),
    gitMib: parseCount(values['git-mib'] ?? (quick ? '16' : '50'), '--git-mib'),
    cgiWarmup: quick ? 1 : 3,
    profile: values.profile ?? null,
    keep: values.keep,
    build: !values['no-build'],
    install: !values['no-install'],
    maxMinutes: parseCount(values['max-minutes'], '--max-minutes'),
    only: null,
    results: null,
  };
  if (values.only !== undefined && values.rows !== undefined) throw new UsageError('--only and --rows are the same option: give one');
  values.only ??= values.rows;
  if (values.only !== undefined) {
    const ids = values.only.split(',').map((id) => id.trim()).filter(Boolean);
    if (ids.length === 0) throw new UsageError('--only expects comma-separated ids');
    for (const id of ids) {
      if (!ROW_IDS.includes(id) && !CGI_BIN_IDS.includes(id) && !EXTRA_IDS.includes(id)) {
        throw new UsageError(`--only: unknown id ${id} (ids: ${[...ROW_IDS, ...CGI_BIN_IDS, ...EXTRA_IDS].join(', ')})`);
      }
    }
    options.only = new Set(ids);
  }
  if (options.profile) {
    const row = ROWS.find((candidate) => candidate.id === options.profile);
    if (!row?.node) throw new UsageError(`--profile expects a Node row: ${ROWS.filter((r) => r.node).map((r) => r.id).join(', ')}`);
    if (options.only && !options.only.has(row.id)) throw new UsageError(`--profile ${row.id}: that row is not in --only`);
  }
  if (values.results !== undefined && values['no-results']) throw new UsageError('--results and --no-results exclude each other');
  if (values.results !== undefined) options.results = resolve(values.results);
  else if (!values['no-results'] && !options.only) options.results = DEFAULT_RESULTS;
  return options;
}

async function helpText() {
  const source = await readFile(fileURLToPath(import.meta.url), 'utf8');
  const text = /\/\*\*\n([\s\S]*?)\*\//.exec(source)[1].replace(/^ \* ?/gm, '');
  return text.replace('PACKAGES', ALL_PACKAGES.join(' '));
}

// ---------------------------------------------------------------------------------------------------------
// Rows: start, check, measure.

/**
 * Polls the row's two URLs through nginx until both answer 200 with the expected bytes, for up to `timeoutMs`;
 * throws with details.
 */
async function waitUntilServing(row, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (const payload of PAYLOADS) {
    const url = `${row.url}${payload.path.slice(1)}`;
    let last = 'no answer yet';
    let ok = false;
    while (Date.now() < deadline) {
      if (row.proc && row.proc.exitCode !== undefined) break;
      try {
        const answer = await httpGet(url);
        if (answer.status === 200 && answer.body.equals(payload.body)) {
          ok = true;
          break;
        }
        last = `${answer.status}, ${answer.body.length} bytes: ${JSON.stringify(answer.body.toString('latin1').slice(0, 120))}`;
        if (answer.status === 200) break; // Serving, but the wrong body: waiting won't fix it.
      } catch (error) {
        last = error.message;
      }
      await sleep(100);
    }
    if (ok) continue;
    const exited = row.proc && row.proc.exitCode !== undefined ? ` (the backend exited: ${row.proc.exitCode})` : '';
    const output = row.proc?.output.trim() ? `\n--- ${row.proc.name} output ---\n${row.proc.output.trim()}` : '';
    throw new Error(
      `row ${row.id} (${row.name}) cannot run: ${url} did not answer 200 with the expected ${payload.body.length} bytes ` +
        `within ${timeoutMs / 1000} s${exited}; last: ${last}${output}`,
    );
  }
}

/** The nginx error-log lines ([error] and worse) written since the last call. */
async function readNewLogErrors(path, state) {
  const text = await readFile(path, 'latin1').catch(() => '');
  const fresh = text.slice(state.offset);
  state.offset = text.length;
  return fresh.split('\n').filter((line) => /\[(error|crit|alert|emerg)\]/.test(line));
}

function summarizeLogErrors(lines) {
  const kinds = new Map();
  for (const line of lines) {
    const what = /\*\d+ (.*?)(?:, client:|$)/.exec(line)?.[1] ?? line.slice(0, 120);
    const kind = what.replace(/ while .*$/, '');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  return [...kinds.entries()].map(([kind, count]) => `${count}x ${kind}`).join('; ');
}

/** "0", or what went wrong summed over runs: "12 non-2xx, 3 read; 40 in nginx log". */
function describeErrors(runs) {
  const parts = [];
  const nonSuccess = runs.reduce((sum, run) => sum + run.result.nonSuccess, 0);
  if (nonSuccess) parts.push(`${nonSuccess} non-2xx`);
  for (const kind of ['connect', 'read', 'write', 'timeout']) {
    const count = runs.reduce((sum, run) => sum + run.result.socketErrors[kind], 0);
    if (count) parts.push(`${count} ${kind}`);
  }
  const logged = runs.reduce((sum, run) => sum + run.logErrors.length, 0);
  const wrk = parts.length ? parts.join(', ') : '0';
  return logged ? `${wrk}; ${logged} logged` : wrk;
}

/** A row's figures for one payload: the median run by req/s, errors summed, CPU per request, memory. */
function summarize(row, runs, nginxPgid, memory) {
  const sorted = [...runs].sort((a, b) => a.result.rps - b.result.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const usPerReq = (pct) => ((pct / 100) * 1e6) / median.result.rps;
  const backendCpu = row.proc ? median.cpu.groups.get(row.proc.child.pid) ?? 0 : null;
  return {
    rps: median.result.rps,
    minRps: sorted[0].result.rps,
    maxRps: sorted[sorted.length - 1].result.rps,
    p50Ms: median.result.p50Ms,
    p99Ms: median.result.p99Ms,
    errors: describeErrors(runs),
    nonSuccess: runs.reduce((sum, run) => sum + run.result.nonSuccess, 0),
    socketErrors: runs.reduce((sum, run) => sum + Object.values(run.result.socketErrors).reduce((a, b) => a + b, 0), 0),
    logErrors: runs.flatMap((run) => run.logErrors),
    backendUsPerReq: backendCpu === null ? null : usPerReq(backendCpu),
    nginxUsPerReq: row.section === 'direct' || nginxPgid === undefined ? null : usPerReq(median.cpu.groups.get(nginxPgid) ?? 0),
    maxOtherCpu: Math.max(...runs.map((run) => run.cpu.foreign + run.cpu.steal)),
    hwm: memory?.hwm ?? null,
    pss: memory?.pss ?? null,
    servingHwm: memory?.serving?.hwm ?? null,
    vsNode: null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Main.

export async function main(argv, { prefix = PREFIX } = {}) {
  let options;
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (!(error instanceof UsageError) && !(error instanceof TypeError)) throw error;
    process.stderr.write(`${prefix}: ${error.message}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(await helpText());
    return 0;
  }
  installExitHandlers(prefix);
  const watchdog = setTimeout(
    () => abortRun(`${prefix}: FAILED: still running after --max-minutes ${options.maxMinutes}; every child process stopped`, 1),
    options.maxMinutes * 60_000,
  );
  watchdog.unref();
  try {
    return await runBench(options, argv, prefix);
  } catch (error) {
    // Setup failures (missing packages, a failed build): nothing measured yet.
    process.stderr.write(`${prefix}: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    await stopAll();
    return 1;
  } finally {
    clearTimeout(watchdog);
  }
}

async function runBench(options, argv, prefix) {
  const log = (message) => process.stderr.write(`${prefix}: ${message}\n`);
  const selected = (id) => !options.only || options.only.has(id);
  const rows = ROWS.filter((row) => selected(row.id)).map((row) => ({ ...row }));
  const doStream = selected('stream');
  const doCgi = selected('cgi');
  const cgiRows = CGI_BIN_ROWS.filter((row) => selected(row.id)).map((row) => ({ ...row }));
  const doGitCgi = selected('git-cgi');

  const perRow = rows.length * PAYLOADS.length * (options.warmup + options.rounds * options.duration);
  const gcPass = options.gc ? rows.filter((row) => row.node).length * (options.warmup + options.duration + 3) : 0;
  const cgiBinTime = cgiRows.length * (options.warmup + options.rounds * options.duration);
  const gitCgiTime = doGitCgi ? options.rounds * 4 * (2 + options.gitMib / 15) + 10 : 0;
  const estimate =
    perRow + gcPass + cgiBinTime + gitCgiTime + (doStream ? (2 * options.streamMib) / 150 + 10 : 0) + (doCgi ? (options.cgiRuns + options.cgiWarmup) * 9 * 0.1 : 0);
  log(
    `${rows.length} rows x ${PAYLOADS.length} payloads${cgiRows.length ? `, ${cgiRows.length} cgi-bin rows` : ''}${doStream ? ', streaming' : ''}` +
      `${doCgi ? ', CGI start-up' : ''}${doGitCgi ? ', git-cgi' : ''}: ` +
      `about ${Math.ceil(estimate / 60)} min of measuring after setup${options.quick ? ' (--quick)' : ''}`,
  );

  // Not quiet (other engineers' load, another wrk): every req/s of this run is suspect. Checked before our
  // own setup (npm run build, apt-get) raises the load average.
  const quiet = rows.length || cgiRows.length || doGitCgi ? quietCheck() : [];
  for (const warning of quiet) log(`WARNING: ${warning}`);

  // 1. Setup.
  const tools = new Set([...rows, ...cgiRows].flatMap((row) => row.tools));
  if (doGitCgi) ['git', 'apache2'].forEach((tool) => tools.add(tool));
  if (doStream) ['nginx'].forEach((tool) => tools.add(tool));
  if (doCgi) ['time', 'python3'].forEach((tool) => tools.add(tool));
  const installed = await ensureTools([...tools], { install: options.install, log });
  const modules = [...new Set(rows.flatMap((row) => row.modules ?? []))];
  checkNodeModules(ROOT, modules);
  const needsTsgi = doStream || doCgi || doGitCgi || [...rows, ...cgiRows].some((row) => row.tsgi);
  if (needsTsgi) {
    if (options.build) {
      log('npm run build');
      await buildTsgi(ROOT);
    } else if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
      throw new Error('dist/ is missing and --no-build was given: run `npm run build`');
    }
  }

  const dir = await mkdtemp(join(tmpdir(), 'tsgi-bench-'));
  removeOnExit(dir);
  const ctx = {
    root: ROOT,
    apps: APPS,
    dir,
    tsgiBin: join(ROOT, 'bin', 'tsgi.js'),
    phpFpm: findPhpFpm(),
    uwsgi: findUwsgi(),
    goBinary: null,
  };
  const results = {
    command: `node bench/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`,
    quick: options.quick,
    settings: options,
    machine: [],
    payloads: PAYLOADS,
    rows: [],
    goals: [],
    stream: null,
    cgi: null,
    cgiBin: null,
    gitCgi: null,
    summary: [],
    warnings: [],
    errorNotes: [],
  };
  let exitCode = 0;
  results.warnings.push(...quiet);
  try {
    // nginx workers and PHP-FPM children may run as another user: they must be able to read the temp dir.
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'nginx-tmp'), { recursive: true });
    await mkdir(join(dir, 'static'), { recursive: true });
    await writeFile(join(dir, 'static', BIG_PATH.slice(1)), BIG_BODY);
    await writeFile(join(dir, 'fastcgi_params'), FASTCGI_PARAMS);
    if (rows.some((row) => row.id === 'go-fcgi')) {
      log('go build bench/apps/go-fcgi/main.go');
      ctx.goBinary = await buildGo(join(APPS, 'go-fcgi'), dir);
    }
    if (cgiRows.length) await prepareCgiBin(ctx);
    results.machine = describeMachine(ROOT);
    if (installed.length) results.machine.push(['installed by this run', installed.join(' ')]);

    // 2. nginx and the backends.
    for (const row of rows) {
      row.backendPort = row.command ? await findFreePort() : null;
      if (row.section === 'direct') {
        // wrk straight at the backend's own HTTP server: no nginx port, no upstream.
        row.url = `http://127.0.0.1:${row.backendPort}/`;
        continue;
      }
      row.nginxPort = await findFreePort();
      row.upstream = row.command ? row.id.replaceAll('-', '_') : null;
      row.url = `http://127.0.0.1:${row.nginxPort}/`;
      if (!row.locations) row.location = row.location(ctx, row);
      else row.locations = row.locations(ctx, row);
      if (row.id === 'node-fastcgi') row.name = `node-fastcgi ${nodeModuleVersion(ROOT, 'node-fastcgi')}`;
      if (row.id === 'php-fpm') {
        row.name = `PHP-FPM (pm static, ${options.phpChildren})`;
        await writeFile(join(dir, 'hello.php'), await readFile(join(APPS, 'hello.php')));
        await writeFile(join(dir, 'php-fpm.conf'), phpFpmConfig(dir, row.backendPort, options.phpChildren));
      }
    }
    // The upstream names must match the locations each row wrote.
    for (const row of rows) if (row.upstream && !row.location.includes(row.upstream)) throw new Error(`internal: ${row.id}'s location does not use upstream ${row.upstream}`);
    // The cgi-bin rows: a server of their own each in the same nginx, the script at /cgi-bin/hello.sh.
    for (const row of cgiRows) {
      row.backendPort = await findFreePort();
      if (row.instances > 1) {
        row.backendPorts = [row.backendPort];
        while (row.backendPorts.length < row.instances) {
          const port = await findFreePort();
          if (!row.backendPorts.includes(port)) row.backendPorts.push(port);
        }
      }
      row.nginxPort = await findFreePort();
      row.upstream = row.id.replaceAll('-', '_');
      row.url = `http://127.0.0.1:${row.nginxPort}/`;
      row.locations = row.locations(ctx, row);
    }
    const streamRow = doStream
      ? {
          id: 'stream',
          name: '`tsgi serve bench/apps/stream.ts --fastcgi 127.0.0.1:P --mount /`',
          keepalive: true,
          upstream: 'tsgi_stream',
          nginxPort: await findFreePort(),
          backendPort: await findFreePort(),
          location: '      return 404;\n',
          extraLocations: streamFastcgiLocation('tsgi_stream'),
          command: (c, port) => [process.execPath, [c.tsgiBin, 'serve', relative(ROOT, join(APPS, 'stream.ts')), '--fastcgi', `127.0.0.1:${port}`, '--mount', '/']],
        }
      : null;
    if (streamRow) streamRow.url = `http://127.0.0.1:${streamRow.nginxPort}/stream/`;
    // The streaming floor: the least a correct FastCGI responder does for the same transfers (one process).
    const streamFloorRow = doStream
      ? {
          id: 'stream-floor',
          name: '`node bench/apps/minimal-fastcgi-stream.mjs P` (streaming floor)',
          keepalive: true,
          upstream: 'stream_floor',
          nginxPort: await findFreePort(),
          backendPort: await findFreePort(),
          location: '      return 404;\n',
          extraLocations: streamFastcgiLocation('stream_floor'),
          command: (c, port) => [process.execPath, [join(APPS, 'minimal-fastcgi-stream.mjs'), String(port)]],
        }
      : null;
    if (streamFloorRow) streamFloorRow.url = `http://127.0.0.1:${streamFloorRow.nginxPort}/stream/`;
    const streamRows = streamRow ? [streamRow, streamFloorRow] : [];
    const proxiedRows = rows.filter((row) => row.section === 'nginx');
    const nginxRows = [...proxiedRows, ...cgiRows, ...streamRows];
    let nginx = null;
    const nginxLog = join(dir, 'nginx-error.log');
    const logState = { offset: 0 };
    if (nginxRows.length) {
      await writeFile(join(dir, 'nginx.conf'), withInstanceServers(nginxConfig(dir, nginxRows), cgiRows));
      const nginxArgs = ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', nginxLog];
      const test = runQuick(NGINX, ['-t', ...nginxArgs]);
      if (test.code !== 0) throw new Error(`nginx -t failed:\n${test.text}`);
      nginx = startProcess('nginx', NGINX, nginxArgs, { cwd: dir });
    }
    const backendRows = [...rows, ...cgiRows, ...streamRows].filter((row) => row.command);
    for (const row of backendRows) {
      // The ports of every instance, for a row of several (cgi-bin's floor); nodeArgs stays unset.
      const [command, args, env] = row.command(ctx, row.backendPort, undefined, row.backendPorts);
      row.proc = startProcess(row.name, command, args, { cwd: ROOT, env: env ?? process.env });
    }
    // The `tsgi serve` master's memory is compared with an idle Node process's, started at the same time.
    const idleNode = rows.some((row) => row.id === 'direct-tsgi')
      ? startProcess('idle node', process.execPath, ['-e', 'setInterval(()=>{},1e3)'], { cwd: ROOT })
      : null;
    // And with the master's floor: the least a prefork master does (bench/apps/master-floor.mjs), same moment.
    const masterFloor = idleNode
      ? startProcess('master floor', process.execPath, [join(APPS, 'master-floor.mjs'), String(await findFreePort())], { cwd: ROOT })
      : null;
    if (backendRows.length || nginx) {
      log(`starting ${nginx ? 'nginx and ' : ''}${backendRows.length} backends; checking every row's answers`);
      for (const row of rows) await waitUntilServing(row);
      for (const row of cgiRows) await waitUntilCgiServing(row);
      if (nginx && nginx.exitCode !== undefined) throw new Error(`nginx exited (${nginx.exitCode}):\n${nginx.output}`);
      await readNewLogErrors(nginxLog, logState); // Start-up noise (502s while backends came up) is not a row's.
    }

    // 3. Throughput.
    if (rows.length) {
      const groups = runningGroups();
      // A wrk started since the first check (the bench's own ones are all finished here) is another's load.
      const otherWrk = quietCheck().filter((warning) => warning.startsWith('another wrk') && !quiet.some((w) => w.startsWith('another wrk')));
      for (const warning of otherWrk) {
        results.warnings.push(`before the throughput runs: ${warning}`);
        log(`WARNING: ${results.warnings.at(-1)}`);
      }
      const load = await machineLoad(groups, 1_000);
      if (load.foreign + load.steal > FOREIGN_CPU_WARN_PCT) {
        results.warnings.push(
          `the machine was busy before the run: other processes and steal used ${load.foreign.toFixed(0)}% + ${load.steal.toFixed(0)}% of a core; ` +
            'req/s will be low and noisy (compare the us/req columns, or rerun on a quiet machine)',
        );
        log(`WARNING: ${results.warnings.at(-1)}`);
      }
      const wrkOptionsOf = (row) => ({
        seconds: options.duration,
        threads: row.section === 'direct' ? options.directThreads : options.threads,
        connections: options.connections,
      });
      for (const row of rows) {
        row.runs = Object.fromEntries(PAYLOADS.map((payload) => [payload.id, []]));
        row.memory = {};
      }
      for (let round = 0; round < options.rounds; round++) {
        for (let j = 0; j < rows.length; j++) {
          const row = rows[(round + j) % rows.length];
          for (const payload of PAYLOADS) {
            const url = `${row.url}${payload.path.slice(1)}`;
            const wrkOptions = wrkOptionsOf(row);
            if (round === 0 && options.warmup > 0) await runWrk(url, { ...wrkOptions, seconds: options.warmup });
            const before = await sampleCpu(groups);
            const result = await runWrk(url, wrkOptions);
            const cpu = cpuBetween(before, await sampleCpu(groups));
            const logErrors = await readNewLogErrors(nginxLog, logState);
            if (row.proc && row.proc.exitCode !== undefined) {
              throw new Error(`row ${row.id} (${row.name}): the backend exited during its run (${row.proc.exitCode}):\n${row.proc.output}`);
            }
            row.runs[payload.id].push({ result, cpu, logErrors });
            // Peak RSS: hello's from the first round (before any 64 KiB run), 64 KiB's from the last.
            if (row.proc && (payload.id !== 'hello' || round === 0)) row.memory[payload.id] = await treeMemory(row.proc.child.pid);
            // The master and the idle node, read at the same moment (after the first hello run).
            if (row.id === 'direct-tsgi' && payload.id === 'hello' && round === 0 && idleNode) {
              row.idleNode = await processMemory(idleNode.child.pid);
              row.masterFloor = masterFloor ? await processMemory(masterFloor.child.pid) : null;
            }
            log(`${options.rounds > 1 ? `round ${round + 1}/${options.rounds} ` : ''}${row.name}, ${payload.id}: ${Math.round(result.rps)} req/s`);
          }
        }
      }
      for (const row of rows) {
        const byPayload = {};
        for (const payload of PAYLOADS) byPayload[payload.id] = summarize(row, row.runs[payload.id], nginx?.child.pid, row.memory[payload.id]);
        results.rows.push({
          id: row.id,
          name: row.name,
          section: row.section,
          node: Boolean(row.node),
          note: row.note,
          master: row.id === 'direct-tsgi' ? (row.memory.hello?.leader ?? null) : null,
          idleNode: row.idleNode ?? null,
          masterFloor: row.masterFloor ?? null,
          gc: null,
          processes: row.proc ? (row.memory.big?.processes ?? row.memory.hello?.processes ?? null) : null,
          byPayload,
        });
      }
      finishThroughput(results);
    }
    if (idleNode) await stopProcess(idleNode);
    if (masterFloor) await stopProcess(masterFloor);

    // GC share: every Node row once more under --cpu-prof, a warm-up, then one hello run.
    if (options.gc && rows.some((row) => row.node)) {
      for (const row of rows.filter((candidate) => candidate.node)) {
        log(`GC pass: ${row.name} under --cpu-prof`);
        const url = `${row.url}${PAYLOADS[0].path.slice(1)}`;
        const wrkOptions = { seconds: options.duration, threads: row.section === 'direct' ? options.directThreads : options.threads, connections: options.connections };
        const target = results.rows.find((candidate) => candidate.id === row.id);
        try {
          const profile = await profileBackend({
            ctx,
            row,
            dir,
            root: ROOT,
            stop: stopProcess,
            waitUntilServing,
            name: `gc-profile-${row.id}`,
            loadOnly: true,
            warmup: options.warmup > 0 ? () => runWrk(url, { ...wrkOptions, seconds: options.warmup }) : null,
            load: () => runWrk(url, wrkOptions),
          });
          const { totalUs, idleUs, gcUs } = profile.summary;
          target.gc = { share: gcUs / (totalUs - idleUs), busyMs: (totalUs - idleUs) / 1000, rps: profile.result.rps, profiles: profile.profiles };
        } catch (error) {
          target.gc = { error: error instanceof Error ? error.message.split('\n')[0] : String(error) };
          results.errorNotes.push(`GC pass, ${row.name}: ${target.gc.error}`);
        }
      }
    }
    // --instructions: every Node row once more under callgrind (hello): user-space instructions per request.
    if (options.instructions && rows.some((row) => row.node)) {
      const missing = missingInstructionTools();
      if (missing.length) throw new Error(`--instructions needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')}`);
      for (const row of rows.filter((candidate) => candidate.node)) {
        log(`instructions: ${row.name} under callgrind (${INSTRUCTION_WARMUP} + ${INSTRUCTION_REQUESTS} requests)`);
        const target = results.rows.find((candidate) => candidate.id === row.id);
        try {
          target.instructions = await countInstructions({
            ctx,
            row,
            dir,
            root: ROOT,
            stop: stopProcess,
            // Everything runs some 50 times slower under valgrind, start-up included.
            waitUntilServing: (r) => waitUntilServing(r, INSTRUCTION_READY_TIMEOUT_MS),
            url: `${row.url}${PAYLOADS[0].path.slice(1)}`,
            body: PAYLOADS[0].body,
            warmup: INSTRUCTION_WARMUP,
            requests: INSTRUCTION_REQUESTS,
          });
        } catch (error) {
          target.instructions = { error: error instanceof Error ? error.message.split('\n')[0] : String(error) };
          results.errorNotes.push(`instructions, ${row.name}: ${target.instructions.error}`);
        }
      }
    }
    finishSummary(results);

    // --profile: one more wrk run of a Node row under --cpu-prof.
    if (options.profile) {
      const row = rows.find((candidate) => candidate.id === options.profile);
      log(`profiling ${row.name}`);
      const profile = await profileBackend({
        ctx,
        row,
        dir,
        root: ROOT,
        stop: stopProcess,
        waitUntilServing,
        load: () => runWrk(row.url, { seconds: options.duration, threads: row.section === 'direct' ? options.directThreads : options.threads, connections: options.connections }),
      });
      results.profile = { row: row.name, ...profile };
    }

    // 3b. cgi-bin: fcgiwrap against tsgi serve --cgi-bin, the same hello script, wrk -t1 -c8.
    if (cgiRows.length) {
      log(`cgi-bin: ${cgiRows.map((row) => row.name).join(', ')}`);
      results.cgiBin = await measureCgiBin(cgiRows, {
        seconds: options.duration,
        warmup: options.warmup,
        rounds: options.rounds,
        groups: runningGroups(),
        nginxPgid: nginx?.child.pid,
        readLogErrors: () => readNewLogErrors(nginxLog, logState),
        log,
      });
      results.summary.push(...cgiBinSummary(results.cgiBin));
      for (const row of results.cgiBin.rows) {
        if (row.nonSuccess > 0) {
          exitCode = 1;
          results.errorNotes.push(`FAILED: ${row.name}: ${row.nonSuccess} non-2xx responses`);
        }
        if (row.logErrors.length) results.errorNotes.push(`${row.name}: nginx logged ${summarizeLogErrors(row.logErrors)}`);
        if (row.maxOtherCpu > FOREIGN_CPU_WARN_PCT) {
          results.warnings.push(`other processes (or VM steal) used ${row.maxOtherCpu.toFixed(0)}% of a core during ${row.name}: its req/s is not comparable`);
        }
      }
    }

    // 4. Streaming.
    if (streamRow) {
      // The throughput backends are done: stop them so they neither compete nor hold memory.
      await Promise.all(rows.filter((row) => row.proc).map((row) => stopProcess(row.proc)));
      log(`streaming ${options.streamMib} MiB up and down through nginx`);
      await waitUntilStreamServing(streamRow);
      const s = await measureStreaming(streamRow, options.streamMib);
      // The same transfers through the floor, and a fresh master floor (the throughput section's is stopped).
      const streamMasterFloor = startProcess('master floor', process.execPath, [join(APPS, 'master-floor.mjs'), String(await findFreePort())], { cwd: ROOT });
      await waitUntilStreamServing(streamFloorRow);
      const floor = await measureStreaming(streamFloorRow, options.streamMib);
      const masterFloorMemory = await processMemory(streamMasterFloor.child.pid);
      await stopProcess(streamMasterFloor);
      const logErrors = await readNewLogErrors(nginxLog, logState);
      results.stream = { name: streamRow.name, ...s, floor };
      const peak = s.after?.hwm ?? Number.NaN;
      results.goals.push({
        label: `streaming ${s.mib} MiB each way: byte-identical, backend peak RSS < ${STREAM_RSS_GOAL_MIB} MiB`,
        text:
          `${s.upOk && s.downOk ? 'byte-identical' : 'NOT byte-identical'}, ${peak.toFixed(1)} MiB over ${s.after?.processes ?? 'n/a'} processes (largest ${s.after?.largestHwm?.toFixed(1) ?? 'n/a'} MiB): ${peak < STREAM_RSS_GOAL_MIB ? 'meets' : 'MISSES'}` +
          `; ${streamFloorText(floor.after?.hwm ?? Number.NaN, masterFloorMemory?.hwm ?? Number.NaN)}`,
      });
      if (logErrors.length) results.errorNotes.push(`streaming: nginx logged ${summarizeLogErrors(logErrors)}`);
      if (!floor.upOk || !floor.downOk) {
        exitCode = 1;
        results.errorNotes.push('FAILED: a transfer through the streaming floor did not arrive byte-identical');
      }
      if (!s.upOk || !s.downOk) {
        exitCode = 1;
        results.errorNotes.push('FAILED: a streamed transfer did not arrive byte-identical (see the streaming lines)');
      }
    }
    await stopAll();

    // 5. CGI start-up.
    if (doCgi) {
      results.cgi = await measureCgiStartup({ root: ROOT, apps: APPS, dir, runs: options.cgiRuns, warmup: options.cgiWarmup, log });
      const base = results.cgi.variants.find((v) => v.name === 'node -e 0');
      for (const v of results.cgi.variants.filter((variant) => variant.tsgi)) {
        const wall = v.wallMedian / base.wallMedian;
        const rss = v.rssMedianMib / base.rssMedianMib;
        const verdict = (value) => (value <= CGI_GOAL_RATIO ? 'meets' : 'MISSES');
        results.goals.push({
          label: `CGI ${v.name} / node -e 0 <= ${CGI_GOAL_RATIO.toFixed(2)}`,
          text: `wall ${wall.toFixed(2)}x (${verdict(wall)}), peak RSS ${rss.toFixed(2)}x (${verdict(rss)})`,
        });
      }
    }

    // 6. git-cgi: clone and chunked push through tsgi serve --cgi-bin and Apache mod_cgi.
    if (doGitCgi) {
      results.gitCgi = await measureGitCgi({ ctx, mib: options.gitMib, rounds: options.rounds, log });
      results.summary.push(...gitCgiSummary(results.gitCgi));
    }

    if (results.rows.some((row) => Object.values(row.byPayload).some((f) => f.nonSuccess > 0))) exitCode = 1;
    process.stdout.write(textReport(results));
    if (results.profile) printProfile(results.profile, options);
    if (options.results) {
      await writeFile(options.results, `${markdownReport(results)}\n`);
      log(`wrote ${relative(process.cwd(), options.results) || options.results}`);
    } else {
      log('no markdown report written (--only or --no-results)');
    }
    if (exitCode !== 0) log('FAILED: see the errors above');
  } catch (error) {
    exitCode = 1;
    log(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await stopAll();
    if (options.keep) {
      keepDir(dir);
      log(`kept ${dir}`);
    } else {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return exitCode;
}

/** What makes this machine not quiet now: a 1-minute load average above QUIET_LOADAVG, a wrk already running. */
function quietCheck() {
  const warnings = [];
  const load = loadavg()[0];
  if (load > QUIET_LOADAVG) {
    warnings.push(`the machine is not quiet: 1-minute load average ${load.toFixed(2)} (> ${QUIET_LOADAVG}) at the start; req/s of this run are not comparable`);
  }
  const wrk = spawnSync('pgrep', ['-x', 'wrk'], { encoding: 'utf8' });
  const pids = (wrk.stdout ?? '').trim().split(/\s+/).filter(Boolean);
  if (pids.length) warnings.push(`another wrk is running (pid ${pids.join(', ')}) at the start; req/s of this run are not comparable`);
  return warnings;
}

/** The anchor of each section's ratio column: Node http via proxy behind nginx, raw node:http direct. */
const SECTION_BASE = { nginx: 'node-http', direct: 'direct-node' };

/** Ratios against each section's anchor, the goals, errors and busy-machine warnings of the throughput rows. */
function finishThroughput(results) {
  const find = (id) => results.rows.find((row) => row.id === id);
  for (const row of results.rows) {
    const base = find(SECTION_BASE[row.section]);
    for (const payload of PAYLOADS) {
      const f = row.byPayload[payload.id];
      if (base) f.vsNode = f.rps / base.byPayload[payload.id].rps;
    }
  }
  for (const goal of GOALS) {
    const row = find(goal.row);
    const other = find(goal.against);
    const label = `${row?.name ?? goal.row} / ${other?.name ?? goal.against} >= ${goal.min}`;
    if (!row || !other) {
      if (row || other) results.goals.push({ label, text: `n/a (${row ? goal.against : goal.row} not run)` });
      continue;
    }
    const hello = row.byPayload.hello.rps / other.byPayload.hello.rps;
    const big = row.byPayload.big.rps / other.byPayload.big.rps;
    results.goals.push({ label, text: `${hello.toFixed(2)}x (${hello >= goal.min ? 'meets' : 'MISSES'}); 64 KiB: ${big.toFixed(2)}x` });
  }
  for (const row of results.rows) {
    for (const payload of PAYLOADS) {
      const f = row.byPayload[payload.id];
      if (f.nonSuccess > 0) results.errorNotes.push(`FAILED: ${row.name}, ${payload.id}: ${f.nonSuccess} non-2xx responses`);
      else if (f.socketErrors > 0) results.errorNotes.push(`${row.name}, ${payload.id}: wrk saw socket errors (${f.errors})`);
      if (f.logErrors.length) results.errorNotes.push(`${row.name}, ${payload.id}: nginx logged ${summarizeLogErrors(f.logErrors)}`);
    }
  }
  const noisy = results.rows.flatMap((row) =>
    PAYLOADS.filter((payload) => row.byPayload[payload.id].maxOtherCpu > FOREIGN_CPU_WARN_PCT).map(
      (payload) => `${row.name} ${payload.id} (${row.byPayload[payload.id].maxOtherCpu.toFixed(0)}%)`,
    ),
  );
  if (noisy.length) {
    results.warnings.push(
      `other processes (or VM steal) used more than ${FOREIGN_CPU_WARN_PCT}% of a core during: ${noisy.join(', ')}: ` +
        'those req/s figures are not comparable; rerun on a quiet machine',
    );
  }
}

/** Issue 11's summary: each goal, its ratio in this run, PASS or MISS (n/a when a row was not run). */
function finishSummary(results) {
  const find = (id) => results.rows.find((row) => row.id === id);
  const verdict = (value, goal) => (Number.isNaN(value) ? 'n/a' : (goal.min !== undefined ? value >= goal.min : value <= goal.max) ? 'PASS' : 'MISS');
  const bound = (goal) => (goal.min !== undefined ? `>= ${goal.min.toFixed(2)}` : `<= ${goal.max.toFixed(2)}`);
  for (const goal of ISSUE11_GOALS) {
    const row = find(goal.row);
    const other = goal.against ? find(goal.against) : null;
    if (!row && !other) continue; // None of its rows selected (--only): not part of this run.
    const entry = { label: goal.label, bound: bound(goal), ratio: Number.NaN, verdict: 'n/a', detail: '' };
    if (!row || (goal.against && !other)) {
      entry.detail = `not run (${[!row && goal.row, goal.against && !other && goal.against].filter(Boolean).join(', ')})`;
    } else if (goal.kind === 'rps') {
      const hello = row.byPayload.hello.rps / other.byPayload.hello.rps;
      const big = row.byPayload.big.rps / other.byPayload.big.rps;
      entry.ratio = hello;
      entry.verdict = verdict(hello, goal);
      entry.detail = `hello ${hello.toFixed(2)}x ${verdict(hello, goal)}; 64 KiB ${big.toFixed(2)}x ${verdict(big, goal)}`;
      const floor = goal.floor ? find(goal.floor) : null;
      if (floor) {
        // What the least an implementation does reaches against the same anchor, and how much of it tsgi keeps.
        const floorHello = floor.byPayload.hello.rps / other.byPayload.hello.rps;
        const share = row.byPayload.hello.rps / floor.byPayload.hello.rps;
        const bigShare = row.byPayload.big.rps / floor.byPayload.big.rps;
        const cpu = (row.byPayload.hello.backendUsPerReq ?? Number.NaN) / (floor.byPayload.hello.backendUsPerReq ?? Number.NaN);
        entry.detail +=
          `; floor (${floor.name}) / ${other.name}: hello ${floorHello.toFixed(2)}x, 64 KiB ` +
          `${(floor.byPayload.big.rps / other.byPayload.big.rps).toFixed(2)}x; tsgi reaches ${share.toFixed(2)}x of the floor ` +
          `(64 KiB ${bigShare.toFixed(2)}x; CPU per request ${Number.isFinite(cpu) ? `${cpu.toFixed(2)}x the floor's` : 'n/a'})`;
      }
      // --instructions: the same comparison in user-space instructions per request (load does not move them).
      const counted = [row, other, floor].filter((r) => r?.instructions?.perRequest);
      if (row.instructions?.perRequest && other.instructions?.perRequest) {
        entry.detail += `; instructions/request ${counted.map((r) => `${r.name} ${(r.instructions.perRequest / 1000).toFixed(1)}k`).join(', ')}`;
      }
    } else if (goal.kind === 'worker-rss') {
      const mine = row.byPayload.hello.servingHwm;
      const theirs = other.byPayload.hello.servingHwm;
      entry.ratio = mine / theirs;
      entry.verdict = verdict(entry.ratio, goal);
      entry.detail = `${entry.ratio.toFixed(2)}x ${entry.verdict} (${mine.toFixed(1)} / ${theirs.toFixed(1)} MiB VmHWM)`;
      const inprocess = find('direct-inprocess')?.byPayload.hello.servingHwm;
      if (inprocess) entry.detail += `; createHttpServer in-process ${(inprocess / theirs).toFixed(2)}x (${inprocess.toFixed(1)} MiB)`;
    } else if (goal.kind === 'master-rss') {
      if (!row.master || !row.idleNode) {
        entry.detail = 'n/a (master or idle node not measured)';
      } else {
        entry.ratio = row.master.rss / row.idleNode.rss;
        entry.verdict = verdict(entry.ratio, goal);
        entry.detail =
          `${entry.ratio.toFixed(2)}x ${entry.verdict} (VmRSS ${row.master.rss.toFixed(1)} / ${row.idleNode.rss.toFixed(1)} MiB; ` +
          `peak ${row.master.hwm.toFixed(1)} / ${row.idleNode.hwm.toFixed(1)} MiB)`;
        if (row.masterFloor) {
          // The least a prefork master does, against the same idle node, and tsgi's master against it.
          entry.detail +=
            `; floor (bench/apps/master-floor.mjs) / idle node: ${(row.masterFloor.rss / row.idleNode.rss).toFixed(2)}x ` +
            `(${row.masterFloor.rss.toFixed(1)} MiB); tsgi's master ${(row.master.rss / row.masterFloor.rss).toFixed(2)}x the floor`;
        }
      }
    }
    results.summary.push(entry);
  }
  results.summary.push(...gcSummary(results));
  // The GC shares of the other Node rows (anchors, floors, other servers), for reference.
  const goalRows = new Set(GC_GOALS.map((goal) => goal.row));
  const gcRows = results.rows.filter((row) => row.gc && !row.gc.error && !goalRows.has(row.id));
  if (gcRows.length) {
    results.gcLine = gcRows.map((row) => `${row.name} ${(100 * row.gc.share).toFixed(1)}%`).join(', ');
  }
}

/**
 * Goal 5 of issue 11, one entry per tsgi row the GC pass measured: its GC share, PASS or MISS against
 * GC_GOAL_MAX, and for a MISS the share of its floor in the same run (the least an implementation does).
 */
function gcSummary(results) {
  const find = (id) => results.rows.find((row) => row.id === id);
  const percent = (share) => `${(100 * share).toFixed(1)}%`;
  const entries = [];
  for (const goal of GC_GOALS) {
    const row = find(goal.row);
    if (!row?.gc) continue; // Not run, or no GC pass (--no-gc).
    const entry = { label: `GC share under the hello load: ${row.name}`, bound: `<= ${percent(GC_GOAL_MAX)}`, ratio: Number.NaN, verdict: 'n/a', detail: '' };
    if (row.gc.error) {
      entry.detail = `not measured (${row.gc.error})`;
    } else {
      entry.ratio = row.gc.share;
      entry.verdict = row.gc.share <= GC_GOAL_MAX ? 'PASS' : 'MISS';
      entry.detail = `${percent(row.gc.share)} ${entry.verdict}`;
      if (entry.verdict === 'MISS') {
        const floor = find(goal.floor);
        entry.detail += floor?.gc && !floor.gc.error ? `; floor (${floor.name}) ${percent(floor.gc.share)}` : `; floor (${goal.floor}) not measured`;
      }
    }
    entries.push(entry);
  }
  return entries;
}

function printProfile(profile, options) {
  const { totalUs, idleUs, top } = profile.summary;
  const busy = totalUs - idleUs;
  console.log('');
  console.log(
    `CPU profile of ${profile.row} (busiest of ${profile.profiles} processes) under wrk -c${options.connections} -d${options.duration}s: ` +
      `${Math.round(profile.result.rps)} req/s with --cpu-prof; ${(totalUs / 1e6).toFixed(1)} s sampled, ${((100 * idleUs) / totalUs).toFixed(1)}% idle` +
      `${options.keep ? `; ${profile.path}` : ''}`,
  );
  console.log('  self ms   % of busy   function (top by self time; start-up included)');
  for (const [name, us] of top) console.log(`  ${(us / 1000).toFixed(0).padStart(7)}  ${((100 * us) / busy).toFixed(1).padStart(9)}%   ${name}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
