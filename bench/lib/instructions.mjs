/**
 * --instructions: the user-space instructions each Node row's serving process runs per request, counted by
 * valgrind's callgrind. A count does not move with the machine's load the way req/s and even CPU time per
 * request do (20-40% from run to run on a shared 2-core machine), so two rows' counts compare the work each
 * does per request on any machine. What a count leaves out: the kernel's share (the same syscalls cost the
 * same for every row that makes them, but a row that makes more pays more there), cache misses, and the time
 * a request waits. So it explains a req/s ratio; it does not replace it.
 *
 * Per row: the backend is started again under `valgrind --tool=callgrind --trace-children=yes` (a `tsgi serve`
 * master and its worker are both counted; the TypeScript compile helper and esbuild are not traced), waits until it serves,
 * gets `warmup` keep-alive GETs (V8 optimizes the request path), then the counters of every process of the
 * tree are zeroed, `requests` GETs are made (ab -k, 8 at a time, each answer's status and length checked),
 * every process dumps its counters, and the busiest process's total over `requests` is the figure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { forget, sleep, startProcess } from './processes.mjs';
import { processTree } from './procstats.mjs';

const VALGRIND = '/usr/bin/valgrind';
const CALLGRIND_CONTROL = '/usr/bin/callgrind_control';
const CONCURRENCY = 8;
const REQUEST_TIMEOUT_MS = 30_000;
const LOAD_TIMEOUT_MS = 10 * 60_000;
const AB = '/usr/bin/ab';
const DUMP_WAIT_MS = 30_000;
const CONTROL_TIMEOUT_MS = 30_000;

/**
 * `count` keep-alive GETs of `url`, CONCURRENCY at a time, by ApacheBench (a C client: a client slower than the
 * server would add an event-loop turn per request to the count); throws unless every answer was a 200 of
 * `length` bytes.
 */
function load(url, count, length) {
  const run = spawnSync(AB, ['-q', '-k', '-n', String(count), '-c', String(CONCURRENCY), '-s', String(REQUEST_TIMEOUT_MS / 1000), url], {
    encoding: 'utf8',
    timeout: LOAD_TIMEOUT_MS,
  });
  const out = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  const complete = Number(/^Complete requests:\s+(\d+)/m.exec(out)?.[1] ?? -1);
  const failed = Number(/^Failed requests:\s+(\d+)/m.exec(out)?.[1] ?? -1);
  const length2xx = Number(/^Document Length:\s+(\d+)/m.exec(out)?.[1] ?? -1);
  if (run.status !== 0 || complete !== count || failed !== 0 || /^Non-2xx responses/m.test(out) || length2xx !== length) {
    throw new Error(`${url}: ab did not get ${count} answers of ${length} bytes (status ${run.status ?? run.signal}): ${out.trim().slice(-500)}`);
  }
}

/** Runs callgrind_control with `flag` on each pid; quiet for a pid that is not a callgrind process (nginx's). */
function control(flag, pids) {
  for (const pid of pids) spawnSync(CALLGRIND_CONTROL, [flag, String(pid)], { stdio: 'ignore', timeout: CONTROL_TIMEOUT_MS });
}

/** The `summary:`/`totals:` figure of a callgrind output file (instructions), or 0. */
function totalOf(text) {
  const match = /^(?:summary|totals):\s+(\d+)/m.exec(text);
  return match ? Number(match[1]) : 0;
}

/**
 * Counts `row`'s serving process's instructions per request on `url` (answering `body`): returns
 * { perRequest, requests, processes }. `stop(proc)` stops a process group, `waitUntilServing(row)` polls the
 * row's URLs; the row's usual process is stopped first and the counted one is stopped at the end.
 */
export async function countInstructions({ ctx, row, dir, root, stop, waitUntilServing, url, body, warmup, requests }) {
  const outDir = join(dir, `callgrind-${row.id}`);
  await mkdir(outDir, { recursive: true });
  if (row.proc) await stop(row.proc);
  const [command, args, env] = row.command(ctx, row.backendPort);
  const valgrindArgs = [
    '--tool=callgrind',
    '--trace-children=yes',
    // Not counted, and run at full speed: esbuild's service binary and tsgi's TypeScript compile helper.
    '--trace-children-skip=*esbuild*',
    '--trace-children-skip-by-arg=*compile-typescript-main*',
    `--callgrind-out-file=${join(outDir, 'cg.%p')}`,
    '--dump-instr=no',
    '--dump-line=no',
    command,
    ...args,
  ];
  row.proc = startProcess(`${row.name} (callgrind)`, VALGRIND, valgrindArgs, { cwd: root, env: env ?? process.env });
  try {
    await waitUntilServing(row);
    load(url, warmup, body.length);
    const pids = await processTree(row.proc.child.pid);
    control('-z', pids);
    load(url, requests, body.length);
    control('-d', pids);
    // A dump is written when the process next runs valgrind's scheduler: wait for one file per pid.
    const deadline = Date.now() + DUMP_WAIT_MS;
    let totals = [];
    while (Date.now() < deadline) {
      const names = (await readdir(outDir)).filter((name) => /^cg\.\d+\.\d+$/.test(name));
      totals = await Promise.all(names.map(async (name) => totalOf(await readFile(join(outDir, name), 'utf8'))));
      if (names.length >= pids.length) break;
      await sleep(200);
    }
    if (totals.length === 0) throw new Error(`${row.name}: callgrind wrote no dump\n${row.proc.output}`);
    return { perRequest: Math.max(...totals) / requests, requests, processes: pids.length };
  } finally {
    await stop(row.proc);
    forget(row.proc);
    row.proc = null;
  }
}

/** What --instructions needs and is missing: valgrind (callgrind_control) and ab (apache2-utils). */
export function missingInstructionTools() {
  return [
    ...(existsSync(VALGRIND) && existsSync(CALLGRIND_CONTROL) ? [] : ['valgrind']),
    ...(existsSync(AB) ? [] : ['apache2-utils']),
  ];
}
