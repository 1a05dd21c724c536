/**
 * The cgi-bin rows of bench/run.mjs (issue 12): the same shell hello script (bench/apps/cgi-bin/hello.sh)
 * served behind the bench's one nginx by the C fcgiwrap (the anchor), by `tsgi serve --cgi-bin`, and by the
 * floor (bench/apps/minimal-cgi-spawn.mjs: the least a Node FastCGI responder spawning the script per request
 * does, so what Node's process spawn costs by itself), each with N = 2 and 4 processes, measured with
 * `wrk -t1 -c8` in the same rounds, in rotating order.
 *
 * Rows: { id, name, kind ('fcgiwrap' | 'tsgi' | 'floor'), processes (N), instances (backend ports, 1 unless
 * said), keepalive, tsgi, tools, note, command(ctx, port, nodeArgs, ports), locations(ctx, row) }, like the
 * throughput rows of backends.mjs, plus `section: 'cgi-bin'`. A row of several instances gets `row.backendPorts`
 * (the first is `row.backendPort`; its command gets them as `ports`) and an nginx upstream over all of them
 * (withInstanceServers).
 * All sit in `location /cgi-bin/` with the script at /cgi-bin/hello.sh in the run's temp dir:
 * - fcgiwrap as Debian's recipe has it (/usr/share/doc/fcgiwrap/examples/nginx.conf): the stock params (the
 *   run's fastcgi_params file) and SCRIPT_FILENAME; no kept connections (each fcgiwrap process serves one connection at a time, so kept
 *   connections would stall the rest);
 * - tsgi as conf/nginx-cgi-bin.conf has it: SCRIPT_NAME/PATH_INFO split at /cgi-bin, `--mount /cgi-bin`,
 *   upstream keepalive and fastcgi_keep_conn on;
 * - the floor in the same location as tsgi, N processes `node minimal-cgi-spawn.mjs PORT_i SCRIPT` started by
 *   one `sh` (idle, as tsgi's master) and balanced by nginx's upstream over the N ports.
 *
 * CPU per request counts the scripts too: a script's CPU time is added to its parent's (fcgiwrap's process, the
 * tsgi worker, the floor's Node process) when the parent reaps it, so the backend figure is
 * utime+stime+cutime+cstime of the group.
 */
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { cpuBetween, sampleCpu } from './procstats.mjs';
import { httpGet, sleep } from './processes.mjs';
import { runWrk } from './wrk.mjs';

/** wrk for the cgi-bin rows: one thread, 8 connections (as in issue 12's figures). */
export const CGI_BIN_WRK = { threads: 1, connections: 8 };
/** The script every cgi-bin row runs, and what it answers. */
export const CGI_BIN_PATH = '/cgi-bin/hello.sh';
export const CGI_BIN_BODY = 'Hello';
/** Issue 12's goal: tsgi serve --cgi-bin at least as fast as fcgiwrap with as many processes. */
export const CGI_BIN_GOAL_MIN = 1.0;
const FCGIWRAP = '/usr/sbin/fcgiwrap';
const READY_TIMEOUT_MS = 60_000;

/** The CGI/1.1 variables of conf/nginx-cgi-bin.conf's location (tsgi rows). */
const TSGI_LOCATION = `    location /cgi-bin/ {
      fastcgi_keep_conn on;
      fastcgi_request_buffering off;
      fastcgi_buffering off;
      fastcgi_split_path_info "(?s)^(/cgi-bin)(/.*)$";
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param SERVER_NAME $server_name;
      fastcgi_param SERVER_ADDR $server_addr;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param REQUEST_SCHEME $scheme;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_URI $request_uri;
      fastcgi_param DOCUMENT_URI $document_uri;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_param CONTENT_TYPE $content_type;
      fastcgi_param CONTENT_LENGTH $content_length;
      fastcgi_param REMOTE_ADDR $remote_addr;
      fastcgi_param REMOTE_PORT $remote_port;
      fastcgi_param HTTP_PROXY "" if_not_empty;
      fastcgi_pass UPSTREAM;
    }
`;

function fcgiwrapRow(processes) {
  return {
    id: `cgi-fcgiwrap-${processes}`,
    name: `fcgiwrap -c ${processes}`,
    kind: 'fcgiwrap',
    processes,
    keepalive: false,
    tsgi: false,
    tools: ['nginx', 'wrk', 'fcgiwrap'],
    command: (ctx, port) => [FCGIWRAP, ['-c', String(processes), '-s', `tcp:127.0.0.1:${port}`]],
    locations: (ctx, row) =>
      `    location /cgi-bin/ {\n      include fastcgi_params;\n      fastcgi_param SCRIPT_FILENAME ${ctx.dir}$fastcgi_script_name;\n      fastcgi_pass ${row.upstream};\n    }\n`,
    note: `Debian's fcgiwrap 1.1 (C, libfcgi): \`fcgiwrap -c ${processes} -s tcp:127.0.0.1:P\`, ${processes} preforked processes, each forking the script per request; nginx as in Debian's fcgiwrap recipe (stock fastcgi_params, SCRIPT_FILENAME), a connection per request. The anchor of the ratio column.`,
  };
}

/**
 * `sh -c` starting one minimal-cgi-spawn.mjs per port, all in the row's process group (so stopped and measured
 * together); positional parameters: node, the app, the script, then the ports.
 */
const FLOOR_LAUNCHER = 'node="$1" app="$2" script="$3"; shift 3; for port do "$node" "$app" "$port" "$script" & done; wait';

function floorRow(processes) {
  return {
    id: `cgi-node-floor-${processes}`,
    name: `floor: bare Node spawn x ${processes}`,
    kind: 'floor',
    processes,
    instances: processes,
    keepalive: true,
    tsgi: false,
    tools: ['nginx', 'wrk'],
    command: (ctx, port, nodeArgs, ports) => [
      '/bin/sh',
      ['-c', FLOOR_LAUNCHER, 'sh', process.execPath, join(ctx.apps, 'minimal-cgi-spawn.mjs'), join(ctx.dir, 'cgi-bin', 'hello.sh'), ...ports.map(String)],
    ],
    locations: (ctx, row) => TSGI_LOCATION.replace('UPSTREAM', row.upstream),
    note:
      `The least any Node implementation could do: ${processes} processes \`node bench/apps/minimal-cgi-spawn.mjs P_i DIR/cgi-bin/hello.sh\` ` +
      '(one port each, started by one idle `sh`), each a minimal FastCGI responder that per request calls ' +
      "`child_process.spawn(script, [], { env: <7 fixed variables>, stdio: ['ignore', 'pipe', 'ignore'] })` and copies its stdout into " +
      'STDOUT records (no params decoded, no head parsed, no timeouts, no process groups: its header lists what it does not do); ' +
      `nginx in the same location as tsgi, upstream over the ${processes} ports, keepalive, fastcgi_keep_conn on. ` +
      "tsgi's ceiling in Node: the ratio tsgi/floor is what tsgi's own overhead leaves of it.",
  };
}

function tsgiRow(processes) {
  return {
    id: `cgi-tsgi-${processes}`,
    name: `tsgi serve --cgi-bin --workers ${processes}`,
    kind: 'tsgi',
    processes,
    keepalive: true,
    tsgi: true,
    tools: ['nginx', 'wrk'],
    command: (ctx, port) => [
      process.execPath,
      [ctx.tsgiBin, 'serve', '--cgi-bin', join(ctx.dir, 'cgi-bin'), '--workers', String(processes), '--fastcgi', `127.0.0.1:${port}`, '--mount', '/cgi-bin'],
    ],
    locations: (ctx, row) => TSGI_LOCATION.replace('UPSTREAM', row.upstream),
    note: `\`tsgi serve --cgi-bin DIR --workers ${processes} --fastcgi 127.0.0.1:P --mount /cgi-bin\` (a master and ${processes} workers); nginx as in conf/nginx-cgi-bin.conf (SCRIPT_NAME/PATH_INFO split, buffering off, fastcgi_keep_conn on, upstream keepalive).`,
  };
}

export const CGI_BIN_ROWS = [fcgiwrapRow(2), tsgiRow(2), floorRow(2), fcgiwrapRow(4), tsgiRow(4), floorRow(4)].map((row) => ({
  instances: 1,
  ...row,
  section: 'cgi-bin',
}));
export const CGI_BIN_IDS = CGI_BIN_ROWS.map((row) => row.id);

/** Copies bench/apps/cgi-bin/hello.sh into DIR/cgi-bin/ (mode 0755): the folder both hosts serve. */
export async function prepareCgiBin(ctx) {
  const folder = join(ctx.dir, 'cgi-bin');
  await mkdir(folder, { recursive: true });
  await chmod(folder, 0o755);
  const script = join(folder, 'hello.sh');
  await copyFile(join(ctx.apps, 'cgi-bin', 'hello.sh'), script);
  await chmod(script, 0o755);
  return folder;
}

/**
 * nginx.mjs writes one `server` line per upstream (the row's backendPort): gives the upstream of each row of
 * several instances one line per port. Throws when `conf` has no such upstream.
 */
export function withInstanceServers(conf, rows) {
  let out = conf;
  for (const row of rows.filter((candidate) => candidate.backendPorts?.length > 1)) {
    const written = `  upstream ${row.upstream} {\n    server 127.0.0.1:${row.backendPort};\n`;
    if (!out.includes(written)) throw new Error(`internal: nginx.conf has no upstream ${row.upstream} with server 127.0.0.1:${row.backendPort}`);
    out = out.replace(written, `  upstream ${row.upstream} {\n${row.backendPorts.map((port) => `    server 127.0.0.1:${port};\n`).join('')}`);
  }
  return out;
}

/** Whether something accepts a TCP connection on 127.0.0.1:port now. */
function portAccepts(port) {
  return new Promise((resolveAccepts) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolveAccepts(true);
    });
    socket.once('error', () => resolveAccepts(false));
  });
}

/**
 * Polls the row's script through nginx until it answers 200 "Hello"; throws with the backend's output. A row of
 * several instances first waits for every instance's port (nginx would take a port not yet listening out of
 * its upstream for a while, and the row would run on fewer processes).
 */
export async function waitUntilCgiServing(row) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (const port of row.backendPorts ?? []) {
    while (Date.now() < deadline && !(row.proc && row.proc.exitCode !== undefined) && !(await portAccepts(port))) {
      last = `127.0.0.1:${port} (an instance) not listening yet`;
      await sleep(50);
    }
  }
  while (Date.now() < deadline) {
    if (row.proc && row.proc.exitCode !== undefined) break;
    try {
      const answer = await httpGet(`${row.url}${CGI_BIN_PATH.slice(1)}`);
      if (answer.status === 200 && answer.body.toString() === CGI_BIN_BODY) return;
      last = `${answer.status}: ${JSON.stringify(answer.body.toString('latin1').slice(0, 200))}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(100);
  }
  const exited = row.proc && row.proc.exitCode !== undefined ? ` (the backend exited: ${row.proc.exitCode})` : '';
  throw new Error(
    `row ${row.id} (${row.name}) cannot run: ${row.url}${CGI_BIN_PATH.slice(1)} did not answer 200 "${CGI_BIN_BODY}" within ${READY_TIMEOUT_MS / 1000} s${exited}; ` +
      `last: ${last}\n--- ${row.proc?.name} output ---\n${row.proc?.output.trim() ?? ''}`,
  );
}

/**
 * Measures the cgi-bin rows: per round, for each N, its rows (fcgiwrap, tsgi, floor) one after the other, the
 * order rotating every round, a wrk warm-up before a row's first run. Returns the rows' figures (median run by
 * req/s) with the ratios to fcgiwrap and to the floor of the same N (req/s and CPU per request).
 * `readLogErrors()` returns the nginx error-log lines written since its last call.
 */
export async function measureCgiBin(rows, { seconds, warmup, rounds, groups, nginxPgid, readLogErrors, log }) {
  const runs = new Map(rows.map((row) => [row.id, []]));
  const counts = [...new Set(rows.map((row) => row.processes))];
  const url = (row) => `${row.url}${CGI_BIN_PATH.slice(1)}`;
  for (let round = 0; round < rounds; round++) {
    for (const processes of counts) {
      const group = rows.filter((row) => row.processes === processes);
      const shift = round % group.length;
      for (const row of [...group.slice(shift), ...group.slice(0, shift)]) {
        if (round === 0 && warmup > 0) await runWrk(url(row), { ...CGI_BIN_WRK, seconds: warmup });
        const before = await sampleCpu(groups);
        const result = await runWrk(url(row), { ...CGI_BIN_WRK, seconds });
        const cpu = cpuBetween(before, await sampleCpu(groups));
        const logErrors = await readLogErrors();
        if (row.proc.exitCode !== undefined) throw new Error(`row ${row.id} (${row.name}): the backend exited during its run (${row.proc.exitCode}):\n${row.proc.output}`);
        runs.get(row.id).push({ result, cpu, logErrors });
        log(`${rounds > 1 ? `round ${round + 1}/${rounds} ` : ''}${row.name}, ${CGI_BIN_PATH}: ${Math.round(result.rps)} req/s`);
      }
    }
  }
  const figures = rows.map((row) => summarizeCgiRow(row, runs.get(row.id), nginxPgid));
  for (const figure of figures) {
    const anchor = sameN(figures, 'fcgiwrap', figure.processes);
    figure.vsFcgiwrap = anchor ? figure.rps / anchor.rps : Number.NaN;
    figure.cpuVsFcgiwrap = anchor ? figure.backendUsPerReq / anchor.backendUsPerReq : Number.NaN;
    const floor = sameN(figures, 'floor', figure.processes);
    figure.vsFloor = floor ? figure.rps / floor.rps : Number.NaN;
    figure.cpuVsFloor = floor ? figure.backendUsPerReq / floor.backendUsPerReq : Number.NaN;
  }
  return { settings: { ...CGI_BIN_WRK, seconds, rounds, warmup }, rows: figures };
}

/** The figures of the `kind` row with `processes` processes, or undefined when it was not run. */
const sameN = (figures, kind, processes) => figures.find((other) => other.kind === kind && other.processes === processes);

/** One row's figures: the median run by req/s, errors summed, CPU per request of the backend (scripts included) and nginx. */
function summarizeCgiRow(row, runs, nginxPgid) {
  const sorted = [...runs].sort((a, b) => a.result.rps - b.result.rps);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const usPerReq = (pct) => ((pct / 100) * 1e6) / median.result.rps;
  const nonSuccess = runs.reduce((sum, run) => sum + run.result.nonSuccess, 0);
  const socketErrors = runs.reduce((sum, run) => sum + Object.values(run.result.socketErrors).reduce((a, b) => a + b, 0), 0);
  const logged = runs.reduce((sum, run) => sum + run.logErrors.length, 0);
  const errors = [nonSuccess && `${nonSuccess} non-2xx`, socketErrors && `${socketErrors} socket`, logged && `${logged} logged`].filter(Boolean).join(', ') || '0';
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    processes: row.processes,
    note: row.note,
    rps: median.result.rps,
    minRps: sorted[0].result.rps,
    maxRps: sorted[sorted.length - 1].result.rps,
    p50Ms: median.result.p50Ms,
    p99Ms: median.result.p99Ms,
    backendUsPerReq: usPerReq(median.cpu.groupsWithChildren.get(row.proc.child.pid) ?? 0),
    nginxUsPerReq: nginxPgid === undefined ? null : usPerReq(median.cpu.groups.get(nginxPgid) ?? 0),
    maxOtherCpu: Math.max(...runs.map((run) => run.cpu.foreign + run.cpu.steal)),
    nonSuccess,
    errors,
    logErrors: runs.flatMap((run) => run.logErrors),
  };
}

/**
 * The SUMMARY entries: for each N, tsgi's req/s over fcgiwrap's, PASS at CGI_BIN_GOAL_MIN or more; then, when
 * the floor of that N ran, the floor over fcgiwrap (what any Node host could reach) and tsgi over the floor
 * (how much of it tsgi reaches), req/s and CPU per request.
 */
export function cgiBinSummary(cgiBin) {
  const entries = [];
  for (const row of cgiBin.rows.filter((candidate) => candidate.kind === 'tsgi')) {
    const anchor = sameN(cgiBin.rows, 'fcgiwrap', row.processes);
    const floor = sameN(cgiBin.rows, 'floor', row.processes);
    const label = `cgi-bin: tsgi serve --cgi-bin --workers ${row.processes} / fcgiwrap -c ${row.processes} (req/s, wrk -t${cgiBin.settings.threads} -c${cgiBin.settings.connections})`;
    const bound = `>= ${CGI_BIN_GOAL_MIN.toFixed(2)}`;
    const us = (figure) => figure.backendUsPerReq.toFixed(0);
    const floorText = !floor
      ? `floor not run (cgi-node-floor-${row.processes})`
      : `floor (bare Node spawn x ${row.processes}) / fcgiwrap: ${anchor ? `${floor.vsFcgiwrap.toFixed(2)}x` : 'n/a'} (${Math.round(floor.rps)} req/s, ${us(floor)} us/req): ` +
        `tsgi reaches ${row.vsFloor.toFixed(2)}x of the floor (CPU per request ${row.cpuVsFloor.toFixed(2)}x the floor's)`;
    if (!anchor) {
      entries.push({ label, bound, ratio: Number.NaN, verdict: 'n/a', detail: `not run (cgi-fcgiwrap-${row.processes}); ${floorText}` });
      continue;
    }
    const verdict = row.vsFcgiwrap >= CGI_BIN_GOAL_MIN ? 'PASS' : 'MISS';
    entries.push({
      label,
      bound,
      ratio: row.vsFcgiwrap,
      verdict,
      detail:
        `${row.vsFcgiwrap.toFixed(2)}x ${verdict} (${Math.round(row.rps)} / ${Math.round(anchor.rps)} req/s); ` +
        `CPU per request ${us(row)} / ${us(anchor)} us (${row.cpuVsFcgiwrap.toFixed(2)}x); ${floorText}`,
    });
  }
  return entries;
}
