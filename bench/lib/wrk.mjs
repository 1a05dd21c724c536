/** wrk: one run against a URL, killed if it overruns, its output parsed into figures. */
import { forget, signalGroup, startProcess } from './processes.mjs';

const WRK_GRACE_MS = 30_000;

/** Runs `wrk -t threads -c connections -d seconds --latency url`; resolves with parseWrk's figures. */
export async function runWrk(url, { seconds, threads, connections }) {
  const args = ['-t', String(Math.min(threads, connections)), '-c', String(connections), '-d', `${seconds}s`, '--latency', url];
  const proc = startProcess('wrk', 'wrk', args);
  const timer = setTimeout(() => signalGroup(proc, 'SIGKILL'), seconds * 1000 + WRK_GRACE_MS);
  await proc.exited;
  clearTimeout(timer);
  forget(proc);
  if (proc.exitCode !== 0) throw new Error(`wrk ${args.join(' ')} exited ${proc.exitCode}:\n${proc.output}`);
  const result = parseWrk(proc.output);
  if (Number.isNaN(result.rps)) throw new Error(`wrk ${args.join(' ')}: no Requests/sec in its output:\n${proc.output}`);
  return result;
}

/** Turns wrk's "1.23ms" / "456.00us" / "1.20s" / "2.00m" into milliseconds. */
export function toMs(text) {
  const match = /^([0-9.]+)(us|ms|s|m)$/.exec(text);
  if (!match) return Number.NaN;
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2]];
}

/** Parses wrk --latency output: req/s, p50/p99 (ms), total requests, non-2xx/3xx responses and socket errors. */
export function parseWrk(text) {
  const number = (re) => {
    const match = re.exec(text);
    return match ? Number(match[1]) : Number.NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const nonSuccess = number(/Non-2xx or 3xx responses: (\d+)/);
  return {
    rps: number(/Requests\/sec:\s+([0-9.]+)/),
    requests: number(/(\d+) requests in /),
    p50Ms: toMs(/^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? ''),
    p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? ''),
    nonSuccess: Number.isNaN(nonSuccess) ? 0 : nonSuccess,
    socketErrors: socket
      ? { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
  };
}
