/**
 * --profile ROW: runs a Node row's backend once more under `node --cpu-prof` for one wrk run and summarizes
 * the functions with the most self time. With a master and workers (node:cluster forks with the master's
 * execArgv), every process writes a profile: the busiest one (the serving worker) is summarized.
 * The GC pass of bench/run.mjs does the same for every Node row under the hello load and keeps the share of
 * the `(garbage collector)` node's self time in the busy (non-idle) samples taken while wrk ran.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { forget, startProcess } from './processes.mjs';

const PROFILE_EXIT_TIMEOUT_MS = 15_000;

/**
 * Sums self time per function (name + file:line); returns the total, the idle part, the garbage collector's
 * part (`gcUs`) and the top `limit`. With `window` { fromUs, toUs } (the monotonic clock in microseconds, as
 * process.hrtime and the profile's timestamps use), only the samples taken within it count.
 */
export function summarizeProfile(profile, root, limit = 20, window = null) {
  const selfUs = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  let totalUs = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    // timeDeltas[i] is the time before sample i; the sample's own duration is the next delta.
    const us = profile.timeDeltas[i + 1] ?? 0;
    at += profile.timeDeltas[i];
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url ? url.replace(`${pathToFileURL(root).href}/`, '').replace(/^file:\/\//, '') : '';
    const key = `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
    totalUs += us;
  }
  const idleUs = selfUs.get('(idle)') ?? 0;
  selfUs.delete('(idle)');
  const gcUs = selfUs.get('(garbage collector)') ?? 0;
  const top = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit);
  return { totalUs, idleUs, gcUs, top };
}

/**
 * Restarts `row`'s backend under --cpu-prof (profiles in DIR/`name`), waits until it serves
 * (`waitUntilServing(row)`), runs `warmup()` if given, then `load()` (one wrk run), stops it with SIGINT (Node
 * writes the profile on a normal exit) and summarizes the busiest profile, over the whole run or (`loadOnly`)
 * over the samples taken during `load()`. Returns { result (of load), path, summary, profiles }.
 */
export async function profileBackend({ ctx, row, dir, root, stop, waitUntilServing, load, warmup = null, name = 'cpu-profile', loadOnly = false }) {
  const profileDir = join(dir, name);
  await mkdir(profileDir, { recursive: true });
  await stop(row.proc);
  const [command, args, env] = row.command(ctx, row.backendPort, ['--cpu-prof', '--cpu-prof-dir', profileDir]);
  row.proc = startProcess(`${row.name} (--cpu-prof)`, command, args, { cwd: root, env: env ?? process.env });
  await waitUntilServing(row);
  if (warmup) await warmup();
  const fromUs = Number(process.hrtime.bigint() / 1000n);
  const result = await load();
  const window = loadOnly ? { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) } : null;
  // SIGINT to the whole group: every process shuts down and exits normally, which is when Node writes profiles.
  try {
    process.kill(-row.proc.child.pid, 'SIGINT');
  } catch {
    // Gone already: reported below (no profile).
  }
  const timer = new Promise((resolveTimer) => setTimeout(resolveTimer, PROFILE_EXIT_TIMEOUT_MS).unref());
  if ((await Promise.race([row.proc.exited.then(() => 'exited'), timer])) !== 'exited') {
    throw new Error(`${row.name}: did not exit within ${PROFILE_EXIT_TIMEOUT_MS} ms of SIGINT, no profile written`);
  }
  forget(row.proc);
  // Workers may still be writing theirs: give them a moment.
  await new Promise((resolveWait) => setTimeout(resolveWait, 1_000));
  const files = (await readdir(profileDir)).filter((name) => name.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`${row.name}: exited without writing a .cpuprofile\n${row.proc.output}`);
  let best = null;
  for (const name of files) {
    const path = join(profileDir, name);
    const summary = summarizeProfile(JSON.parse(await readFile(path, 'utf8')), root, 20, window);
    const busy = summary.totalUs - summary.idleUs;
    if (!best || busy > best.busy) best = { path, summary, busy };
  }
  return { result, path: best.path, summary: best.summary, profiles: files.length };
}
