#!/usr/bin/env node
/**
 * npm run faults [-- --scale N]
 *
 * The long fault runs: test/reliability/faults.test.ts with TSGI_FAULTS_SCALE=5 (default): five times the
 * repetitions (aborted uploads and downloads, reloads, kill/restart cycles) and longer slow-client loads than
 * the short form in `npm test`, then one line of outcome per fault. Exits non-zero when an assertion failed.
 * Needs nginx and apache2 installed.
 */
import { intFlag, printTable, runReliability } from '../test/reliability/run-script.mjs';

const scale = intFlag('scale', 5);

const { status, records, seconds, built } = await runReliability('test/reliability/faults.test.ts', { TSGI_FAULTS_SCALE: String(scale) });

/** One line per fault: what was done, and what came of it. */
function outcome(r) {
  switch (r.fault) {
    case 'upload-abort':
      return [`${r.repetitions} uploads of 16 MiB cut after 4 MiB`, `app saw: ${r.appSaw[0]?.replace(/^upload-error \S+ /, '') ?? '?'}; backend fds ${r.fdsBefore}->${r.fdsAfter}, CLOSE_WAIT ${r.closeWait}`];
    case 'download-abort':
      return [`${r.repetitions} downloads of 1 GiB left after 2 MiB`, `each: tsgi.signal fired, close() ran once (${r.appSaw[0]?.replace(/stream-\d+-\d+/g, 'ID') ?? '?'}); backend fds ${r.fdsBefore}->${r.fdsAfter}`];
    case 'slow-clients':
      return [
        `${r.headerTricklers} header trickles + ${r.slowUploads} uploads of ${r.slowBodyBytes} B at 1 byte/s`,
        `meanwhile ${r.others.requests} others: ${r.others.ok} ok, p50 ${r.others.p50Ms} ms, p99 ${r.others.p99Ms} ms, max ${r.others.maxMs} ms; trickles still held: ${r.stillHeld}`,
      ];
    case 'nginx-reload':
    case 'apache-graceful': {
      const count = r.reloads ?? r.restarts;
      const ms = r.reloadMs ?? r.restartMs;
      const failed = r.load.non2xx + r.load.transportErrors + r.load.mismatches;
      return [
        `${count} × ${r.fault === 'nginx-reload' ? 'nginx -s reload (SIGHUP)' : 'Apache graceful (SIGUSR1)'} under load (workers replaced in ${ms.join('/')} ms)`,
        `${r.load.requests} requests, ${failed} failed; ${r.load.retried} resets before any answer byte sent again ` +
          `(${Object.values(r.retriedInLog ?? {}).filter((count) => count === 1).length} of ${Object.keys(r.retriedInLog ?? {}).length} checkable in the access log: served once); max ${r.load.maxMs} ms`,
      ];
    }
    case 'backend-kill':
      return [
        `${r.cycles} × SIGKILL of the backend's process group, restart on the same port`,
        `while down: ${r.whileDown.requests} answers, all ${r.whileDown.statuses.join('/')}, slowest ${r.whileDown.slowestMs} ms; first 200 ${r.resumeMs.join('/')} ms after respawn; ${r.load.timeouts} hung`,
      ];
    default:
      return [r.fault, JSON.stringify(r)];
  }
}

const faults = records.filter((record) => record.test === 'faults');
process.stdout.write(`\nfaults (scale ${scale}, ${Math.round(seconds)} s in all)\n\n`);
if (faults.length > 0) printTable(['fault', 'server', 'done', 'outcome'], faults.map((r) => [r.fault, r.server, ...outcome(r)]));
else process.stdout.write(built ? 'no figures were reported (the deployment did not start; see the output above)\n' : 'not run: the build failed\n');
process.stdout.write(`\nfaults: ${status === 0 ? 'PASSED' : 'FAILED'}\n`);
process.exit(status);
