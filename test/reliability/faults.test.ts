/**
 * Faults, each with its expected outcome asserted, through real web servers in front of `tsgi serve
 * --fastcgi` (test/reliability/fixtures/app.ts; its events file is the side channel that shows what the app
 * saw):
 * - a client leaves mid-upload: the app's read fails, the backend keeps serving, no descriptor is left behind;
 * - a client leaves mid-download: the body's close() runs once and tsgi.signal fires, nothing is left behind;
 * - slow clients (1 byte/s: header trickles and slow uploads) hold connections while others are served fast;
 * - nginx reloaded (SIGHUP) under load: no request fails;
 * - the backend killed (SIGKILL of its whole process group) and restarted under load: nginx answers 502 at
 *   once while it is down, 200s resume once it is back, no request hangs;
 * - Apache gracefully restarted (SIGUSR1, what `apache2ctl -k graceful` sends) under load: no request fails.
 *
 * Short forms here; `npm run faults` runs them with TSGI_FAULTS_SCALE=5 (more repetitions, longer loads).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { downloadThenLeave } from '../e2e/http-client.js';
import {
  allAvailable,
  APACHE_BIN,
  checkBinary,
  checkFastCgiBuild,
  checkFiles,
  describeWithServer,
  NGINX_BIN,
  PROXY_FCGI_MODULE,
  sleep,
  waitFor,
  type ServerHandle,
} from '../e2e/servers.js';
import { patternBytes, smallPage } from './fixtures/content.js';
import {
  envInt,
  makeEventsFile,
  MIB,
  MOUNT,
  readEvents,
  report,
  runLoad,
  send,
  serverWorkers,
  sha256,
  startTsgi,
  startWebServer,
  summary,
  waitForEvents,
  type BackendSnapshot,
  type Exchange,
  type LoadStats,
  type Outcome,
  type TsgiBackend,
} from './harness.js';
import { abortUploadMidway, trickle } from './raw.js';

const SCALE = envInt('TSGI_FAULTS_SCALE', 1);
/** A request that takes longer than this hung (the app answers in milliseconds). */
const HANG_MS = 15_000;
/** Descriptors the backend may hold above its baseline once the dust settled (see soak.test.ts). */
const FD_SLACK = 4;
/** Each fault test's own bound. */
const TEST_TIMEOUT_MS = 30_000 * SCALE + 30_000;

const availability = {
  nginx: allAvailable(checkBinary(NGINX_BIN), checkFastCgiBuild()),
  apache: allAvailable(
    checkBinary(APACHE_BIN),
    checkFiles([{ path: PROXY_FCGI_MODULE, package: 'apache2', executable: false }]),
    checkFastCgiBuild(),
  ),
};

let idCounter = 0;
function newId(name: string): string {
  return `${name}-${process.pid}-${++idCounter}`;
}

function smallGet(n: string): Exchange {
  return { kind: 'get', method: 'GET', path: `${MOUNT}/small?n=${n}`, expectSha256: sha256(smallPage(n)) };
}

/** A 200 with the right body for a small GET, or throws with what came back. */
async function healthy(port: number): Promise<Outcome> {
  const outcome = await send(port, smallGet(newId('health')), false, HANG_MS);
  if (outcome.status !== 200 || outcome.error !== null || outcome.mismatch !== null) {
    throw new Error(`health check: status ${outcome.status}, ${outcome.error ?? outcome.mismatch ?? 'wrong body'}`);
  }
  return outcome;
}

/**
 * Waits until the backend is back to its baseline: no connection in CLOSE_WAIT and at most FD_SLACK
 * descriptors more than `baseline` (connections to the web server included: after a fault the web server
 * closes the connection it used, and its pool reopens at most what it had). Returns the last snapshot.
 */
async function settlesTo(backend: TsgiBackend, baseline: BackendSnapshot): Promise<BackendSnapshot> {
  let last = baseline;
  try {
    await waitFor(
      'backend descriptors back to their baseline',
      async () => {
        last = await backend.snapshot();
        return last.closeWait === 0 && last.fds <= baseline.fds + FD_SLACK;
      },
      15_000,
    );
  } catch {
    // asserted by the caller with the figures
  }
  return last;
}

/** The request mix under a reload: small GETs, echoed POSTs and 256 KiB downloads, every body checked. */
function reloadMix(i: number): Exchange {
  const slot = i % 10;
  if (slot === 0) return { kind: 'download', method: 'GET', path: `${MOUNT}/download?bytes=${256 * 1024}&seed=${i % 8}`, expectSha256: DOWNLOAD_256K[i % 8] as string };
  if (slot <= 2) {
    const body = ECHO_BODY.subarray(0, (i * 977) % ECHO_BODY.length);
    return { kind: 'post', method: 'POST', path: `${MOUNT}/echo`, body, expectSha256: sha256(body), idempotent: true };
  }
  return smallGet(String(i));
}
const ECHO_BODY = Buffer.alloc(64 * 1024, 'tsgi');
/** Requests in flight during a reload. */
const LOAD_CONCURRENCY = 6;
const DOWNLOAD_256K = Array.from({ length: 8 }, (_, seed) => sha256(patternBytes(seed, 256 * 1024)));

/**
 * Runs the reload mix through `server` while `act` runs, and after it until 50 more requests completed (so
 * requests that started on the new workers are in the figures too). Rethrows act's error once the load ended.
 */
async function loadDuring(server: ServerHandle, act: () => Promise<void>, concurrency = LOAD_CONCURRENCY): Promise<LoadStats> {
  let acting = true;
  let completedAfter = 0;
  const load = runLoad({
    port: server.port,
    concurrency,
    next: reloadMix,
    maxRequests: 1_000_000,
    maxDurationMs: 120_000 * SCALE,
    stop: () => !acting && completedAfter >= 50,
    timeoutMs: HANG_MS,
    retryResets: true,
    onOutcome: () => {
      if (!acting) completedAfter++;
    },
  });
  let failure: unknown = null;
  try {
    await act();
  } catch (error) {
    failure = error ?? new Error('act failed');
  }
  acting = false;
  const stats = await load;
  if (failure !== null) throw failure;
  return stats;
}

/**
 * How often each retried small GET (unique by its n) appears in the web server's access log: once means the
 * attempt that was reset never reached request processing, and only the retry was served.
 */
async function accessLogCounts(server: ServerHandle, retriedPaths: string[]): Promise<Record<string, number>> {
  const unique = [...new Set(retriedPaths.filter((path) => path.startsWith(`GET ${MOUNT}/small?n=`)))];
  const counts: Record<string, number> = {};
  const read = (): Promise<string> => readFile(join(server.root, 'logs', 'access.log'), 'utf8').catch(() => '');
  // The log is written as requests end: give the last ones a moment, but a path that never made it (a request
  // that failed every attempt) must not stall the count.
  const log = await waitFor('the retried requests in the access log', async () => {
    const text = await read();
    return unique.every((path) => text.includes(`"${path} HTTP/1.1"`)) && text;
  }, 5_000).catch(read);
  for (const path of unique) counts[path] = log.split(`"${path} HTTP/1.1"`).length - 1;
  return counts;
}

/** Sends `signal` to a web server's master and waits until its workers were replaced by new ones. */
async function reloadAndWait(server: ServerHandle, signal: NodeJS.Signals): Promise<{ before: number[]; after: number[]; ms: number }> {
  const before = await serverWorkers(server);
  expect(before.length, 'web server workers before the reload').toBeGreaterThan(0);
  const started = performance.now();
  process.kill(server.pid, signal);
  // New workers started and the old ones have finished (graceful: after their in-flight requests).
  const after = await waitFor(
    `${signal}: the workers replaced`,
    async () => {
      const current = await serverWorkers(server);
      const fresh = current.filter((pid) => !before.includes(pid));
      const stale = current.filter((pid) => before.includes(pid));
      return fresh.length > 0 && stale.length === 0 ? current : undefined;
    },
    30_000,
  );
  return { before, after, ms: Math.round(performance.now() - started) };
}

describeWithServer('faults through nginx FastCGI', availability.nginx, () => {
  let events: Awaited<ReturnType<typeof makeEventsFile>> | undefined;
  let backend: TsgiBackend | undefined;
  let server: ServerHandle | undefined;

  beforeAll(async () => {
    events = await makeEventsFile();
    backend = await startTsgi({ eventsFile: events.file });
    server = await startWebServer('nginx', backend);
    for (let i = 0; i < 5; i++) await healthy(server.port);
  });

  afterAll(async () => {
    await server?.stop();
    await backend?.stop();
    await events?.remove();
  });

  function deployment(): { backend: TsgiBackend; server: ServerHandle; eventsFile: string } {
    if (!backend || !server || !events) throw new Error('faults: deployment did not start');
    return { backend, server, eventsFile: events.file };
  }

  it('a client leaving mid-upload: the app\'s read fails and tsgi.signal fires, the backend keeps serving, no descriptor leaks', async () => {
    const { backend, server, eventsFile } = deployment();
    const repetitions = 3 * SCALE;
    const baseline = await backend.snapshot();
    const errors: string[] = [];
    for (let k = 0; k < repetitions; k++) {
      const id = newId('upload');
      const upload = await abortUploadMidway(server.port, `${MOUNT}/upload?id=${id}`, {
        contentLength: 16 * MIB,
        sendBytes: 4 * MIB,
        // Leave only once the app is reading (1 MiB reached it): the abort hits a body being read.
        before: () => waitForEvents(eventsFile, `upload-reading ${id}`, (lines) => lines.includes(`upload-reading ${id}`)),
      });
      expect(upload.received, 'no answer to an unfinished upload').toBe(0);
      // The app's read failed with the abort (an AbortError, or an InputError for a body cut short), and
      // tsgi.signal fired.
      const lines = await waitForEvents(
        eventsFile,
        `upload-error and upload-signal for ${id}`,
        (all) => all.some((l) => l.startsWith(`upload-error ${id} `)) && all.includes(`upload-signal ${id}`) && all,
      );
      const line = lines.find((l) => l.startsWith(`upload-error ${id} `)) as string;
      errors.push(line);
      expect(line).toMatch(/ (AbortError|InputError): /);
      expect(lines.filter((l) => l.startsWith(`upload-done ${id} `)), 'the upload never completed').toEqual([]);
      // It failed partway: more than the 1 MiB that announced it, less than the 16 MiB declared.
      const bytes = Number(/bytes=(\d+)/.exec(line)?.[1]);
      expect(bytes).toBeGreaterThanOrEqual(MIB);
      expect(bytes).toBeLessThan(16 * MIB);
      await healthy(server.port);
    }
    const after = await settlesTo(backend, baseline);
    report({ test: 'faults', fault: 'upload-abort', server: 'nginx', repetitions, appSaw: errors.slice(0, 2), fdsBefore: baseline.fds, fdsAfter: after.fds, closeWait: after.closeWait });
    expect(after.closeWait).toBe(0);
    expect(after.fds, `backend descriptors: ${baseline.fds} before`).toBeLessThanOrEqual(baseline.fds + FD_SLACK);
  }, TEST_TIMEOUT_MS);

  it('a client leaving mid-download: the body\'s close() runs once and tsgi.signal fires, no descriptor leaks', async () => {
    const { backend, server, eventsFile } = deployment();
    const repetitions = 3 * SCALE;
    const baseline = await backend.snapshot();
    const seen: string[] = [];
    for (let k = 0; k < repetitions; k++) {
      const id = newId('stream');
      const received = await downloadThenLeave(server.port, `${MOUNT}/stream?bytes=${1024 * MIB}&id=${id}`, 2 * MIB, HANG_MS);
      expect(received).toBeGreaterThanOrEqual(2 * MIB);
      const mine = await waitForEvents(eventsFile, `stream-close and stream-signal for ${id}`, (lines) => {
        const own = lines.filter((l) => l.split(' ')[1] === id);
        return own.some((l) => l.startsWith('stream-close ')) && own.some((l) => l.startsWith('stream-signal ')) && own;
      });
      // Give a second close() a moment to show up before counting: there must be exactly one.
      await sleep(200);
      const own = (await readEvents(eventsFile)).filter((l) => l.split(' ')[1] === id);
      expect(own.filter((l) => l.startsWith('stream-close ')), 'close() ran exactly once').toHaveLength(1);
      expect(own.some((l) => l.startsWith('stream-done ')), 'the 1 GiB stream did not run to its end').toBe(false);
      const sent = Number(/sent=(\d+)/.exec(own.find((l) => l.startsWith('stream-close ')) ?? '')?.[1]);
      expect(sent).toBeLessThan(1024 * MIB);
      seen.push(mine.join(' | '));
      await healthy(server.port);
    }
    const after = await settlesTo(backend, baseline);
    report({ test: 'faults', fault: 'download-abort', server: 'nginx', repetitions, appSaw: seen.slice(0, 2), fdsBefore: baseline.fds, fdsAfter: after.fds, closeWait: after.closeWait });
    expect(after.closeWait).toBe(0);
    expect(after.fds, `backend descriptors: ${baseline.fds} before`).toBeLessThanOrEqual(baseline.fds + FD_SLACK);
  }, TEST_TIMEOUT_MS);

  it('slow clients at 1 byte/s hold connections (header trickles, slow uploads) while others are served fast', async () => {
    const { server } = deployment();
    const headerTricklers = 6;
    const slowBody = Buffer.from(`slow-${'b'.repeat(3 + 6 * (SCALE - 1))}`);
    const tricklers = await Promise.all(
      Array.from({ length: headerTricklers }, (_, k) =>
        trickle(server.port, Buffer.from(`GET ${MOUNT}/small?n=slowloris-${k} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'s'.repeat(400)}\r\n\r\n`), 1_000),
      ),
    );
    const uploads = await Promise.all(
      Array.from({ length: 2 }, async () => {
        const head = `POST ${MOUNT}/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${slowBody.length}\r\nConnection: close\r\n\r\n`;
        return trickle(server.port, Buffer.concat([Buffer.from(head), slowBody]), 1_000, head.length);
      }),
    );
    try {
      // Everyone else, while the slow ones hold their connections: until the slow uploads are done.
      let slowDone = false;
      const finished = Promise.all(uploads.map((upload) => upload.finished(Number.POSITIVE_INFINITY, slowBody.length * 1_000 + HANG_MS)));
      void finished.then(
        () => (slowDone = true),
        () => (slowDone = true),
      );
      const others = await runLoad({
        port: server.port,
        concurrency: 4,
        next: (i) => (i % 4 === 3 ? reloadMix(1) : smallGet(`fast-${i}`)),
        maxRequests: 1_000_000,
        pauseMs: 5,
        maxDurationMs: slowBody.length * 1_000 + HANG_MS,
        stop: () => slowDone,
        timeoutMs: HANG_MS,
      });
      const answers = await finished;
      const stillHeld = tricklers.filter((t) => !t.closedByServer()).length;
      const sentBytes = tricklers.map((t) => t.sent());
      report({ test: 'faults', fault: 'slow-clients', server: 'nginx', headerTricklers, slowUploads: uploads.length, slowBodyBytes: slowBody.length, others: summary(others), stillHeld, trickledBytes: sentBytes });

      expect({ non2xx: others.non2xx, transportErrors: others.transportErrors, mismatches: others.mismatches, samples: others.samples }).toEqual({ non2xx: 0, transportErrors: 0, mismatches: 0, samples: [] });
      expect(others.requests, 'requests served meanwhile').toBeGreaterThanOrEqual(20);
      // Latency goals stay far above the milliseconds these take, so a busy machine does not fail the test;
      // a server blocked by the slow clients would make them wait seconds.
      expect(others.p99Ms, 'p99 latency of the others (ms)').toBeLessThan(1_500);
      expect(others.maxMs, 'slowest of the others (ms)').toBeLessThan(5_000);
      // The slow uploads went through whole, a byte a second.
      for (const answer of answers) {
        const text = answer.toString('latin1');
        expect(text.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 200 /);
        expect(text.endsWith(slowBody.toString('latin1')), text.slice(-200)).toBe(true);
      }
      // The header trickles were still connected, and still unanswered, at the end.
      expect(stillHeld).toBe(headerTricklers);
      for (const t of tricklers) expect(t.received().length).toBe(0);
      expect(Math.min(...sentBytes)).toBeGreaterThanOrEqual(3);
    } finally {
      for (const t of [...tricklers, ...uploads]) t.stop();
    }
    await healthy(server.port);
  }, TEST_TIMEOUT_MS);

  it('nginx reloaded (SIGHUP) under load: no request fails', async () => {
    const { server } = deployment();
    const reloads = 3 * SCALE;
    const timings: number[] = [];
    const stats = await loadDuring(server, async () => {
      for (let k = 0; k < reloads; k++) {
        await sleep(500);
        timings.push((await reloadAndWait(server, 'SIGHUP')).ms);
      }
      await sleep(500);
    });
    const retriedInLog = await accessLogCounts(server, stats.retriedPaths);
    report({ test: 'faults', fault: 'nginx-reload', server: 'nginx', reloads, reloadMs: timings, load: summary(stats), retriedInLog });
    expect(stats.requests).toBeGreaterThanOrEqual(100);
    expect({ non2xx: stats.non2xx, transportErrors: stats.transportErrors, mismatches: stats.mismatches, samples: stats.samples }).toEqual({
      non2xx: 0,
      transportErrors: 0,
      mismatches: 0,
      samples: [],
    });
    // Resets before any answer byte were sent again (see LoadOptions.retryResets): at most the connections an
    // old worker held, twice over, per reload; and the reset attempts were never processed.
    expect(stats.retried, stats.retriedSamples.join('\n')).toBeLessThanOrEqual(2 * LOAD_CONCURRENCY * reloads);
    expect(Object.entries(retriedInLog).filter(([, count]) => count !== 1)).toEqual([]);
  }, TEST_TIMEOUT_MS);
});

describeWithServer('the backend killed and restarted under load (nginx FastCGI)', availability.nginx, () => {
  let backend: TsgiBackend | undefined;
  let server: ServerHandle | undefined;

  beforeAll(async () => {
    backend = await startTsgi();
    server = await startWebServer('nginx', backend);
    await healthy(server.port);
  });

  afterAll(async () => {
    await server?.stop();
    await backend?.stop();
  });

  it('SIGKILL of the whole backend: nginx answers 502 at once while it is down, 200s resume after the restart, nothing hangs', async () => {
    if (!backend || !server) throw new Error('faults: deployment did not start');
    const web = server;
    const port = backend.port;
    const cycles = SCALE;
    /** Times relative to the load's start, like Outcome.startedAt. */
    const marks: Array<{ killedAt: number; goneAt: number; respawnAt: number; readyAt: number; firstOkAt: number }> = [];
    const loadStart = performance.now();
    const now = (): number => performance.now() - loadStart;
    let phase: 'run' | 'done' = 'run';
    const finishedAt = new Map<Outcome, number>();
    const load = runLoad({
      port: web.port,
      concurrency: 6,
      next: (i) => smallGet(`kill-${i}`),
      maxRequests: 10_000_000,
      maxDurationMs: 60_000 * SCALE,
      stop: () => phase === 'done',
      timeoutMs: HANG_MS,
      keepOutcomes: true,
      onOutcome: (outcome) => finishedAt.set(outcome, now()),
    });
    const okSince = (t: number): number => [...finishedAt].filter(([o, at]) => at >= t && o.status === 200 && o.error === null).length;
    const failedSince = (t: number): number => [...finishedAt].filter(([o]) => o.startedAt >= t && (o.status === 502 || o.status === 503)).length;
    try {
      await waitFor('load running', () => okSince(0) >= 50, 20_000);
      for (let c = 0; c < cycles; c++) {
        const killedAt = now();
        backend.signalGroup('SIGKILL');
        await backend.waitGone();
        const goneAt = now();
        // Down for a while under load: at least a second and 20 answers.
        await waitFor('502s while the backend is down', () => now() - goneAt >= 1_000 && failedSince(goneAt) >= 20, 20_000);
        const respawnAt = now();
        backend = await startTsgi({ port });
        const readyAt = now();
        await waitFor('200s after the restart', () => okSince(readyAt) >= 50, 30_000);
        const firstOkAt = Math.min(...[...finishedAt].filter(([o, at]) => at >= respawnAt && o.status === 200).map(([, at]) => at));
        marks.push({ killedAt, goneAt, respawnAt, readyAt, firstOkAt });
      }
    } finally {
      phase = 'done';
    }
    const stats = await load;
    const outcomes = stats.outcomes;
    const down = (o: Outcome): boolean => marks.some((m) => o.startedAt >= m.goneAt && o.startedAt < m.respawnAt);
    // Up: neither in flight at a kill (those may fail with 502: they count in the status and hang checks) nor
    // started between a kill and the first 200 after the restart.
    const inFlightAtKill = (o: Outcome): boolean => marks.some((m) => o.startedAt < m.killedAt && (finishedAt.get(o) ?? Infinity) >= m.killedAt);
    const inOutage = (o: Outcome): boolean => marks.some((m) => o.startedAt >= m.killedAt && o.startedAt < m.firstOkAt);
    const up = (o: Outcome): boolean => !inFlightAtKill(o) && !inOutage(o);
    const whileDown = outcomes.filter(down);
    const whileUp = outcomes.filter(up);
    const statusesDown = [...new Set(whileDown.map((o) => o.status))];
    const slowestDownMs = Math.max(...whileDown.map((o) => o.ms));
    report({
      test: 'faults',
      fault: 'backend-kill',
      server: 'nginx',
      cycles,
      load: summary(stats),
      whileDown: { requests: whileDown.length, statuses: statusesDown, slowestMs: Math.round(slowestDownMs) },
      resumeMs: marks.map((m) => Math.round(m.firstOkAt - m.respawnAt)),
      restartToListenMs: marks.map((m) => Math.round(m.readyAt - m.respawnAt)),
    });

    // Nothing hung and nginx never dropped a client: every request got an answer within HANG_MS.
    expect(stats.transportErrors, stats.samples.join('\n')).toBe(0);
    expect(Object.keys(stats.statuses).filter((s) => !['200', '502', '503'].includes(s)), 'statuses other than 200/502/503').toEqual([]);
    // While down: 502/503 only, and fast (connection refused is immediate; 5 s is slack for a busy machine).
    expect(whileDown.length).toBeGreaterThanOrEqual(20 * cycles);
    expect(statusesDown.every((s) => s === 502 || s === 503), `statuses while down: ${statusesDown.join(',')}`).toBe(true);
    expect(slowestDownMs, 'slowest answer while the backend was down (ms)').toBeLessThan(5_000);
    // Back up: the first 200 within 20 s of the respawn (the new process loads and compiles the app), and
    // from then on every request succeeds.
    for (const m of marks) expect(m.firstOkAt - m.respawnAt, 'ms from respawn to the first 200').toBeLessThan(20_000);
    const failedWhileUp = whileUp.filter((o) => o.status !== 200 || o.mismatch !== null);
    expect(failedWhileUp.map((o) => `${o.status} at ${Math.round(o.startedAt)} ms`)).toEqual([]);
    await healthy(web.port);
  }, TEST_TIMEOUT_MS + 30_000);
});

describeWithServer('Apache mod_proxy_fcgi gracefully restarted under load', availability.apache, () => {
  let backend: TsgiBackend | undefined;
  let server: ServerHandle | undefined;

  beforeAll(async () => {
    backend = await startTsgi();
    server = await startWebServer('apache', backend);
    await healthy(server.port);
  });

  afterAll(async () => {
    await server?.stop();
    await backend?.stop();
  });

  it('SIGUSR1 (apache2ctl -k graceful) under load: no request fails', async () => {
    if (!server) throw new Error('faults: deployment did not start');
    const web = server;
    const restarts = 2 * SCALE;
    const timings: number[] = [];
    const stats = await loadDuring(web, async () => {
      for (let k = 0; k < restarts; k++) {
        await sleep(500);
        timings.push((await reloadAndWait(web, 'SIGUSR1')).ms);
      }
      await sleep(500);
    });
    const retriedInLog = await accessLogCounts(web, stats.retriedPaths);
    report({ test: 'faults', fault: 'apache-graceful', server: 'apache', restarts, restartMs: timings, load: summary(stats), retriedInLog });
    expect(stats.requests).toBeGreaterThanOrEqual(100);
    expect({ non2xx: stats.non2xx, transportErrors: stats.transportErrors, mismatches: stats.mismatches, samples: stats.samples }).toEqual({
      non2xx: 0,
      transportErrors: 0,
      mismatches: 0,
      samples: [],
    });
    expect(stats.retried, stats.retriedSamples.join('\n')).toBeLessThanOrEqual(2 * LOAD_CONCURRENCY * restarts);
    expect(Object.entries(retriedInLog).filter(([, count]) => count !== 1)).toEqual([]);
  }, TEST_TIMEOUT_MS);
});
