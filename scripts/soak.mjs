#!/usr/bin/env node
/**
 * npm run soak [-- --requests N --concurrency C]
 *
 * The full soak: test/reliability/soak.test.ts with TSGI_SOAK_REQUESTS=100000 (default) per web server,
 * through nginx FastCGI and Apache mod_proxy_fcgi in front of `tsgi serve --fastcgi`, then a table of the
 * figures. Exits non-zero when an assertion failed (any non-2xx, transport error or body mismatch, RSS at the
 * end more than 10% off the RSS after warm-up, descriptor growth). Needs nginx and apache2 installed.
 */
import { intFlag, printTable, runReliability } from '../test/reliability/run-script.mjs';

const requests = intFlag('requests', 100_000);
const concurrency = intFlag('concurrency', 16);

const { status, records, seconds, built } = await runReliability('test/reliability/soak.test.ts', {
  TSGI_SOAK_REQUESTS: String(requests),
  TSGI_SOAK_CONCURRENCY: String(concurrency),
});

const soaks = records.filter((record) => record.test === 'soak');
process.stdout.write(`\nsoak: ${requests} requests per web server at concurrency ${concurrency} (${Math.round(seconds)} s in all)\n\n`);
if (soaks.length > 0) {
  printTable(
    ['server', 'requests', 'duration s', 'req/s', 'p50 ms', 'p99 ms', 'MiB in/out', 'RSS warm MiB', 'RSS end MiB', 'RSS peak MiB', 'growth', 'fds warm->end', 'errors'],
    soaks.map((r) => [
      r.server,
      r.requests,
      (r.durationMs / 1000).toFixed(1),
      Math.round(r.requests / (r.durationMs / 1000)),
      r.main.p50Ms,
      r.main.p99Ms,
      `${r.mibIn}/${r.mibOut}`,
      r.rssAfterWarmupMiB,
      r.rssAtEndMiB,
      r.rssPeakMiB,
      `${r.rssGrowthPercent > 0 ? '+' : ''}${r.rssGrowthPercent}%`,
      `${r.fdsAfterWarmup.total}->${r.fdsAtEnd.total}`,
      `${r.main.non2xx} non-2xx, ${r.main.transportErrors} transport, ${r.main.mismatches} mismatch`,
    ]),
  );
  for (const r of soaks) {
    process.stdout.write(
      `\n${r.server}: warm-up ${r.warmupRequests} requests; measured ${r.main.requests} (${JSON.stringify(r.main.byKind)}); ` +
        `backend processes ${r.backendProcesses.join(' ')}; descriptors after warm-up ${JSON.stringify(r.fdsAfterWarmup)}, at the end ${JSON.stringify(r.fdsAtEnd)}` +
        `${r.main.samples.length > 0 ? `\n  failures: ${r.main.samples.join('\n  ')}` : ''}\n`,
    );
  }
} else {
  process.stdout.write(built ? 'no figures were reported (the deployment did not start; see the output above)\n' : 'not run: the build failed\n');
}
process.stdout.write(`\nsoak: ${status === 0 ? 'PASSED' : 'FAILED'}\n`);
process.exit(status);
