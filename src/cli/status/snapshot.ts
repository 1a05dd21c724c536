/**
 * The figures of the status page of `tsgi serve --status-path` (PHP-FPM's pm.status_path, uWSGI's stats
 * server): what a worker knows about itself, what the master adds about the process tree, and the three
 * renderings (text, JSON, OpenMetrics).
 */
import type { RunningRequest } from '../cluster/supervise.js';

/** Who may read the status page by default: the machine itself (a web server on it relays as 127.0.0.1). */
export const DEFAULT_STATUS_ALLOW = '127.0.0.1,::1';

/** What one worker process reports about itself (counters since it started). */
export interface WorkerFigures {
  pid: number;
  /** Requests the app was called for. */
  requests: number;
  /** Connections the server accepted. */
  accepted: number;
  /** Requests that ran longer than --slow-log. */
  slow: number;
  /** Refusals at each limit (option name -> count). */
  refused: Record<string, number>;
  /** Resident set size, bytes. */
  rss: number;
  /** The requests in flight, oldest first. */
  running: RunningRequest[];
}

/** One worker slot of the tree as the master sees it; counters include the slot's replaced workers. */
export interface WorkerStatus extends WorkerFigures {
  /** The slot (1..N): stays when a worker is replaced. */
  id: number;
  /** When this worker process started (ms since the epoch). */
  started: number;
  state: 'booting' | 'ready' | 'stopping';
  /** Replacements in this slot so far, and why the last one happened. */
  restarts: number;
  lastRestart: string | null;
}

/** The whole tree at one moment. */
export interface StatusSnapshot {
  /** The master's pid (the serving process's own when there is no master). */
  masterPid: number;
  /** When `tsgi serve` started (ms since the epoch). */
  started: number;
  /** When the snapshot was taken. */
  now: number;
  /** "HTTP", "FastCGI"... and the address. */
  transport: string;
  address: string;
  workers: WorkerStatus[];
  /** Replacements by reason ("max-requests", "crash", "reload"...), over the tree's life. */
  restarts: Record<string, number>;
}

/** Sums of the worker counters. */
function totals(snapshot: StatusSnapshot): { requests: number; accepted: number; slow: number; refused: Record<string, number>; busy: number } {
  const refused: Record<string, number> = {};
  let requests = 0;
  let accepted = 0;
  let slow = 0;
  let busy = 0;
  for (const worker of snapshot.workers) {
    requests += worker.requests;
    accepted += worker.accepted;
    slow += worker.slow;
    if (worker.running.length > 0) busy++;
    for (const [limit, count] of Object.entries(worker.refused)) refused[limit] = (refused[limit] ?? 0) + count;
  }
  return { requests, accepted, slow, refused, busy };
}

const MIB = 1024 * 1024;

/** The plain-text page: one line per figure, then one block per worker (PHP-FPM's layout, tsgi's names). */
export function renderStatusText(snapshot: StatusSnapshot): string {
  const sum = totals(snapshot);
  const lines = [
    `master pid:        ${snapshot.masterPid}`,
    `start time:        ${new Date(snapshot.started).toISOString()}`,
    `uptime:            ${Math.round((snapshot.now - snapshot.started) / 1000)} s`,
    `transport:         ${snapshot.transport} at ${snapshot.address}`,
    `workers:           ${snapshot.workers.length} (${sum.busy} busy, ${snapshot.workers.length - sum.busy} idle)`,
    `accepted conn:     ${sum.accepted}`,
    `requests:          ${sum.requests}`,
    `slow requests:     ${sum.slow}`,
    `refused at limits: ${formatCounts(sum.refused)}`,
    `restarts:          ${formatCounts(snapshot.restarts)}`,
    '',
  ];
  for (const worker of snapshot.workers) {
    lines.push(
      `worker ${worker.id}: pid ${worker.pid}, ${worker.state === 'ready' ? (worker.running.length > 0 ? 'busy' : 'idle') : worker.state}, ` +
        `started ${new Date(worker.started).toISOString()}, requests ${worker.requests}, accepted ${worker.accepted}, ` +
        `slow ${worker.slow}, rss ${(worker.rss / MIB).toFixed(1)} MiB, restarts ${worker.restarts}` +
        (worker.lastRestart ? ` (last: ${worker.lastRestart})` : ''),
    );
    for (const request of worker.running) {
      lines.push(`  ${request.method} ${request.uri} running ${((snapshot.now - request.started) / 1000).toFixed(3)} s`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).filter(([, count]) => count > 0);
  return entries.length === 0 ? '0' : entries.map(([name, count]) => `${name} ${count}`).join(', ');
}

/** The JSON page: the snapshot itself with the totals, times as ISO strings and durations in seconds. */
export function renderStatusJson(snapshot: StatusSnapshot): string {
  const sum = totals(snapshot);
  return `${JSON.stringify(
    {
      master: { pid: snapshot.masterPid, started: new Date(snapshot.started).toISOString(), uptimeSeconds: Math.round((snapshot.now - snapshot.started) / 1000) },
      transport: snapshot.transport,
      address: snapshot.address,
      totals: { workers: snapshot.workers.length, busy: sum.busy, accepted: sum.accepted, requests: sum.requests, slow: sum.slow, refused: sum.refused, restarts: snapshot.restarts },
      workers: snapshot.workers.map((worker) => ({
        id: worker.id,
        pid: worker.pid,
        state: worker.state === 'ready' ? (worker.running.length > 0 ? 'busy' : 'idle') : worker.state,
        started: new Date(worker.started).toISOString(),
        requests: worker.requests,
        accepted: worker.accepted,
        slow: worker.slow,
        refused: worker.refused,
        rssBytes: worker.rss,
        restarts: worker.restarts,
        lastRestart: worker.lastRestart,
        running: worker.running.map((request) => ({
          method: request.method,
          uri: request.uri,
          seconds: Number(((snapshot.now - request.started) / 1000).toFixed(3)),
        })),
      })),
    },
    null,
    2,
  )}\n`;
}

/** Content-Type of renderOpenMetrics's output. */
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/**
 * The OpenMetrics text exposition (what Prometheus scrapes): `tsgi_` names, a `worker` label per slot (its
 * counters go on across the slot's replacements, so rate() never sees a reset), `# EOF` at the end.
 */
export function renderOpenMetrics(snapshot: StatusSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge' | 'info', help: string, samples: Array<[labels: Record<string, string>, value: number]>): void => {
    out.push(`# TYPE ${name} ${type}`, `# HELP ${name} ${help}`);
    const suffix = type === 'counter' ? '_total' : type === 'info' ? '_info' : '';
    for (const [labels, value] of samples) out.push(`${name}${suffix}${formatLabels(labels)} ${formatNumber(value)}`);
  };
  const workers = snapshot.workers;
  const slot = (worker: WorkerStatus): Record<string, string> => ({ worker: String(worker.id) });
  family('tsgi_start_time_seconds', 'gauge', 'When tsgi serve started, in seconds since the epoch.', [[{}, snapshot.started / 1000]]);
  family('tsgi_workers', 'gauge', 'Worker processes.', [[{}, workers.length]]);
  family('tsgi_worker', 'info', 'The process serving in each worker slot.', workers.map((w) => [{ ...slot(w), pid: String(w.pid), state: w.state }, 1]));
  family('tsgi_requests', 'counter', 'Requests the app was called for.', workers.map((w) => [slot(w), w.requests]));
  family('tsgi_accepted_connections', 'counter', 'Connections accepted.', workers.map((w) => [slot(w), w.accepted]));
  family('tsgi_slow_requests', 'counter', 'Requests that ran longer than --slow-log.', workers.map((w) => [slot(w), w.slow]));
  const refused: Array<[Record<string, string>, number]> = [];
  for (const worker of workers) {
    for (const [limit, count] of Object.entries(worker.refused)) refused.push([{ ...slot(worker), limit }, count]);
  }
  family('tsgi_refused', 'counter', 'Requests or connections refused at a limit.', refused);
  family('tsgi_busy_requests', 'gauge', 'Requests in flight.', workers.map((w) => [slot(w), w.running.length]));
  family('tsgi_worker_resident_memory_bytes', 'gauge', 'Resident set size of the worker.', workers.map((w) => [slot(w), w.rss]));
  family('tsgi_worker_restarts', 'counter', 'Worker replacements, by reason.', Object.entries(snapshot.restarts).map(([reason, count]) => [{ reason }, count]));
  out.push('# EOF');
  return `${out.join('\n')}\n`;
}

function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}
