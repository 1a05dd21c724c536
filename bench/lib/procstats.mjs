/**
 * What /proc says about the bench's processes: CPU time per process group (and what the rest of the machine
 * used meanwhile: a busy or stolen machine makes req/s meaningless), and the memory of a backend's process
 * tree (peak RSS from VmHWM, proportional set size from smaps_rollup).
 */
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';

const CLOCK_TICKS_PER_S = 100;

/** pid -> { ppid, pgid, ticks (utime + stime), childTicks (cutime + cstime) } for every process. */
async function scanProcesses() {
  const table = new Map();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (!text) continue;
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    table.set(Number(name), {
      ppid: Number(rest[1]),
      pgid: Number(rest[2]),
      ticks: Number(rest[11]) + Number(rest[12]),
      childTicks: Number(rest[13]) + Number(rest[14]),
    });
  }
  return table;
}

/**
 * CPU ticks: machine-wide busy and steal, per process group of ours (by pgid; `byGroupWithChildren` adds the
 * time of the children the group's processes reaped, such as CGI scripts, through cutime/cstime), and this
 * process's own.
 */
export async function sampleCpu(pgids) {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  const byGroup = new Map([...pgids].map((pgid) => [pgid, 0]));
  const byGroupWithChildren = new Map(byGroup);
  let self = 0;
  for (const [pid, info] of await scanProcesses()) {
    // The bench itself, plus the children it reaped (wrk, the CGI runs) through cutime/cstime.
    if (pid === process.pid) self = info.ticks + info.childTicks;
    else if (byGroup.has(info.pgid)) {
      byGroup.set(info.pgid, byGroup.get(info.pgid) + info.ticks);
      byGroupWithChildren.set(info.pgid, byGroupWithChildren.get(info.pgid) + info.ticks + info.childTicks);
    }
  }
  return { at: process.hrtime.bigint(), busy: user + nice + system + irq + softirq, steal, byGroup, byGroupWithChildren, self };
}

/**
 * Percent of one core each of our groups used between two samples (`groupsWithChildren`: with the children
 * they reaped); `foreign`: what the rest of the machine used (processes not of this bench, nor children of
 * ours), `steal`: what the hypervisor took.
 */
export function cpuBetween(before, after) {
  const seconds = Number(after.at - before.at) / 1e9;
  const pct = (ticks) => (100 * ticks) / CLOCK_TICKS_PER_S / seconds;
  const groups = new Map();
  const groupsWithChildren = new Map();
  let ours = after.self - before.self;
  for (const [pgid, ticks] of after.byGroup) {
    groups.set(pgid, pct(ticks - (before.byGroup.get(pgid) ?? 0)));
    const used = after.byGroupWithChildren.get(pgid) - (before.byGroupWithChildren.get(pgid) ?? 0);
    groupsWithChildren.set(pgid, pct(used));
    ours += used;
  }
  // /proc/stat and the per-process scan are not read at the same instant: keep the figure within the machine.
  const foreign = Math.min(100 * cpus().length, Math.max(0, pct(after.busy - before.busy - ours)));
  return { groups, groupsWithChildren, foreign, steal: pct(after.steal - before.steal), seconds };
}

/** Samples the machine for `ms`: percent of one core used by processes not of this bench, and steal. */
export async function machineLoad(pgids, ms) {
  const before = await sampleCpu(pgids);
  await new Promise((resolveWait) => setTimeout(resolveWait, ms));
  const cpu = cpuBetween(before, await sampleCpu(pgids));
  return { foreign: cpu.foreign, steal: cpu.steal };
}

/** The pids of a backend's process tree: its process group plus any descendant of the leader that left it. */
export async function processTree(leaderPid) {
  const table = await scanProcesses();
  const tree = new Set();
  for (const [pid, info] of table) if (info.pgid === leaderPid) tree.add(pid);
  if (table.has(leaderPid)) tree.add(leaderPid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, info] of table) {
      if (!tree.has(pid) && tree.has(info.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

/** VmHWM (peak RSS) and VmRSS (RSS now) of one process in MiB, or null when it is gone (or a zombie). */
export async function processMemory(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  if (!status) return null;
  const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  if (Number.isNaN(hwm)) return null;
  return { hwm: hwm / 1024, rss: rss / 1024 };
}

/**
 * Memory of a process tree in MiB: `hwm` the sum of each process's peak RSS (VmHWM; shared pages count once
 * per process), `largestHwm` the largest single peak, `pss` the proportional set size now (shared pages split
 * between the processes sharing them), `processes` how many; `serving` { pid, hwm, rss } of the process that
 * used the most CPU since it started (the one serving: a `tsgi serve` worker, not its master), `leader`
 * { pid, hwm, rss } of the tree's first process (a `tsgi serve` master). null when the tree is gone.
 */
export async function treeMemory(leaderPid) {
  const pids = await processTree(leaderPid);
  let hwm = 0;
  let largestHwm = 0;
  let pss = 0;
  let processes = 0;
  let serving = null;
  let leader = null;
  for (const pid of pids) {
    const memory = await processMemory(pid);
    if (!memory) continue; // A zombie or kernel thread.
    processes++;
    hwm += memory.hwm;
    largestHwm = Math.max(largestHwm, memory.hwm);
    const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
    pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    if (!serving || ticks > serving.ticks) serving = { pid, ticks, ...memory };
    if (pid === leaderPid) leader = { pid, ...memory };
  }
  if (processes === 0) return null;
  return { hwm, largestHwm, pss: pss / 1024, processes, serving, leader };
}
