/**
 * The git-cgi figure of bench/run.mjs (issue 12): `git clone` and a chunked `git push` of a generated repository
 * (MiB random, incompressible blobs, generated once into the run's temp dir) through git http-backend, served by
 * `tsgi serve --cgi-bin` over its own HTTP and by Apache mod_cgi (apache-git.mjs), both straight from git's HTTP
 * client, no nginx. Rounds alternate which server goes first; medians of the wall times; ratio tsgi/Apache.
 *
 * - clone: `git clone --bare -q URL/seed.git` (bare: no checkout, so the figure is the transfer and git's
 *   indexing, not writing the work tree), checked to have the source's HEAD.
 * - push: `git -c http.postBuffer=65536 push URL/push.git main` of the whole repository into a fresh, empty bare
 *   repository, checked to have arrived (the server's main is the source's HEAD) and to have been sent chunked
 *   (GIT_TRACE_CURL, headers only: `Transfer-Encoding: chunked` on the receive-pack POST).
 * Also the CPU time of each server's process tree, git http-backend included (reaped children's time).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { apacheAccount, apacheGitConfig, APACHE_BIN, GIT_HTTP_BACKEND } from './apache-git.mjs';
import { cpuBetween, sampleCpu } from './procstats.mjs';
import { findFreePort, httpGet, runQuick, signalGroup, sleep, startProcess, stopProcess } from './processes.mjs';

/** Issue 12's goal: each operation through tsgi within 5% of Apache mod_cgi's time. */
export const GIT_CGI_GOAL_MAX = 1.05;
/** Bytes per generated file: the repository is `mib` files of 1 MiB. */
const FILE_BYTES = 1024 * 1024;
/** git sends a push body chunked when it is larger than http.postBuffer: always here. */
const POST_BUFFER = 65_536;
const GIT_TIMEOUT_MS = 10 * 60_000;
const READY_TIMEOUT_MS = 30_000;

/** Runs git with a clean configuration; resolves with { code, ms, output }; killed after GIT_TIMEOUT_MS. */
function runGit(args, { cwd, home, env = {} }) {
  return new Promise((resolveRun) => {
    const started = process.hrtime.bigint();
    // safe.directory: the client also inspects the repositories Apache owns (www-data), which git refuses by default.
    const child = spawn('git', ['-c', 'init.defaultBranch=main', '-c', 'safe.directory=*', ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: '/usr/bin:/bin',
        HOME: home,
        LANG: 'C',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_TERMINAL_PROMPT: '0',
        GIT_AUTHOR_NAME: 'tsgi bench',
        GIT_AUTHOR_EMAIL: 'bench@tsgi.invalid',
        GIT_COMMITTER_NAME: 'tsgi bench',
        GIT_COMMITTER_EMAIL: 'bench@tsgi.invalid',
        ...env,
      },
    });
    let output = '';
    const keep = (data) => (output = (output + data.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), GIT_TIMEOUT_MS);
    child.on('error', (error) => keep(`spawn failed: ${error.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? signal, ms: Number(process.hrtime.bigint() - started) / 1e6, output: output.trim() });
    });
  });
}

/** runGit that throws with git's output unless it exits 0; resolves with its output. */
async function gitOk(args, options) {
  const result = await runGit(args, options);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')} (in ${options.cwd}) exited ${result.code}: ${result.output}`);
  return result;
}

/** Generates the source repository: `mib` random 1 MiB files in one commit. Resolves with its HEAD. */
async function generateRepository(source, mib, home) {
  await gitOk(['init', '-q', source], { cwd: home, home });
  for (let i = 0; i < mib; i++) await writeFile(join(source, `blob-${String(i).padStart(3, '0')}.bin`), randomBytes(FILE_BYTES));
  await gitOk(['add', '.'], { cwd: source, home });
  await gitOk(['commit', '-q', '-m', `${mib} MiB of random bytes`], { cwd: source, home });
  return (await gitOk(['rev-parse', 'HEAD'], { cwd: source, home })).output;
}

/** Gives `path` (recursively) to the account Apache runs git as, when that is not us. */
function giveToApache(path) {
  if (process.getuid?.() !== 0) return;
  const { user, group } = apacheAccount();
  const result = runQuick('chown', ['-R', `${user}:${group}`, path]);
  if (result.code !== 0) throw new Error(`chown -R ${user}:${group} ${path} failed: ${result.text}`);
}

/** Polls URL/seed.git/info/refs until git answers with a ref advertisement; throws with the server's output. */
async function waitUntilGitServing(server) {
  const url = `${server.url}/seed.git/info/refs?service=git-upload-pack`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline && server.proc.exitCode === undefined) {
    try {
      const answer = await httpGet(url);
      if (answer.status === 200 && /git-upload-pack-advertisement/.test(String(answer.headers['content-type']))) return;
      last = `${answer.status} ${answer.headers['content-type']}: ${JSON.stringify(answer.body.toString('latin1').slice(0, 200))}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(100);
  }
  throw new Error(`git-cgi: ${server.name} did not serve ${url} within ${READY_TIMEOUT_MS / 1000} s; last: ${last}\n--- output ---\n${server.proc.output}`);
}

/** True when a GIT_TRACE_CURL file shows a receive-pack POST sent with Transfer-Encoding: chunked. */
function sentChunked(trace) {
  const lines = trace.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/=> Send header: POST \S*\/git-receive-pack /.test(lines[i])) continue;
    for (let j = i + 1; j < lines.length && lines[j].includes('=> Send header: '); j++) {
      if (/=> Send header: Transfer-Encoding: chunked/i.test(lines[j])) return true;
    }
  }
  return false;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
};

/**
 * Measures clone and push through both servers, `rounds` times each. `ctx`: { dir, root, tsgiBin }. Resolves with
 * { mib, rounds, servers: [{ id, name, clone: { runs, median, cpuMedian }, push: {...} }], ratios: { clone, push } }.
 */
export async function measureGitCgi({ ctx, mib, rounds, log }) {
  const base = join(ctx.dir, 'git-cgi');
  const home = join(base, 'home');
  for (const dir of [base, home, join(base, 'cgi-bin'), join(ctx.dir, 'htdocs-apache')]) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o755);
  }
  const source = join(base, 'source');
  log(`git-cgi: generating a ${mib} MiB repository of random blobs`);
  const head = await generateRepository(source, mib, home);

  // The wrapper tsgi runs (a symlink out of the cgi-bin folder would be refused).
  const wrapper = join(base, 'cgi-bin', 'git');
  await writeFile(wrapper, `#!/bin/sh\nexec ${GIT_HTTP_BACKEND}\n`);
  await chmod(wrapper, 0o755);

  const servers = [
    { id: 'tsgi', name: 'tsgi serve --cgi-bin (HTTP)', projectRoot: join(base, 'repos-tsgi') },
    { id: 'apache', name: 'Apache mod_cgi', projectRoot: join(base, 'repos-apache') },
  ];
  for (const server of servers) {
    await mkdir(server.projectRoot, { recursive: true });
    await chmod(server.projectRoot, 0o755);
    await gitOk(['clone', '-q', '--bare', source, join(server.projectRoot, 'seed.git')], { cwd: base, home });
    server.port = await findFreePort();
    server.url = `http://127.0.0.1:${server.port}/git`;
  }
  giveToApache(servers[1].projectRoot);

  const [tsgi, apache] = servers;
  tsgi.proc = startProcess(tsgi.name, process.execPath, [
    ctx.tsgiBin, 'serve', '--cgi-bin', join(base, 'cgi-bin'), '--http', `127.0.0.1:${tsgi.port}`,
    '--cgi-env', `GIT_PROJECT_ROOT=${tsgi.projectRoot}`, '--cgi-env', 'GIT_HTTP_EXPORT_ALL=1',
  ], { cwd: ctx.root });
  const apacheConf = join(ctx.dir, 'apache-git.conf');
  await writeFile(apacheConf, apacheGitConfig({ dir: ctx.dir, port: apache.port, projectRoot: apache.projectRoot }));
  apache.proc = startProcess(apache.name, APACHE_BIN, ['-f', apacheConf, '-DFOREGROUND'], { cwd: ctx.dir, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
  try {
    for (const server of servers) await waitUntilGitServing(server);
    const groups = new Set(servers.map((server) => server.proc.child.pid));
    for (const server of servers) server.runs = { clone: [], push: [] };

    /** Times one operation on one server, with the CPU its process tree used meanwhile. */
    const timed = async (server, operation, run) => {
      const before = await sampleCpu(groups);
      const result = await run();
      const cpu = cpuBetween(before, await sampleCpu(groups));
      const cpuSeconds = ((cpu.groupsWithChildren.get(server.proc.child.pid) ?? 0) / 100) * cpu.seconds;
      if (server.proc.exitCode !== undefined) throw new Error(`git-cgi: ${server.name} exited during a ${operation} (${server.proc.exitCode}):\n${server.proc.output}`);
      server.runs[operation].push({ ms: result.ms, cpuSeconds, otherCpu: cpu.foreign + cpu.steal });
      log(`git-cgi: ${server.name}, ${operation}: ${(result.ms / 1000).toFixed(2)} s`);
    };

    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) {
        const dest = join(base, `clone-${server.id}.git`);
        await rm(dest, { recursive: true, force: true });
        await timed(server, 'clone', () => gitOk(['clone', '--bare', '-q', `${server.url}/seed.git`, dest], { cwd: base, home }));
        const cloned = (await gitOk(['rev-parse', 'HEAD'], { cwd: dest, home })).output;
        if (cloned !== head) throw new Error(`git-cgi: the clone through ${server.name} has HEAD ${cloned}, expected ${head}`);
        await rm(dest, { recursive: true, force: true });
      }
      for (const server of order) {
        const target = join(server.projectRoot, 'push.git');
        await rm(target, { recursive: true, force: true });
        await gitOk(['init', '-q', '--bare', target], { cwd: base, home });
        await gitOk(['config', 'http.receivepack', 'true'], { cwd: target, home });
        if (server.id === 'apache') giveToApache(target);
        const trace = join(base, `push-trace-${server.id}.txt`);
        await rm(trace, { force: true });
        await timed(server, 'push', () =>
          gitOk(['-c', `http.postBuffer=${POST_BUFFER}`, 'push', '-q', `${server.url}/push.git`, 'main'], {
            cwd: source,
            home,
            env: { GIT_TRACE_CURL: trace, GIT_TRACE_CURL_NO_DATA: '1' },
          }),
        );
        if (!sentChunked(await readFile(trace, 'utf8'))) throw new Error(`git-cgi: the push to ${server.name} was not sent chunked (see ${trace})`);
        const pushed = (await gitOk(['rev-parse', 'main'], { cwd: target, home })).output;
        if (pushed !== head) throw new Error(`git-cgi: after the push through ${server.name} its main is ${pushed}, expected ${head}`);
      }
    }
  } finally {
    for (const server of servers) if (server.proc) await stopProcess(server.proc);
    for (const server of servers) if (server.proc) signalGroup(server.proc, 'SIGKILL');
  }

  const figures = servers.map((server) => ({
    id: server.id,
    name: server.name,
    ...Object.fromEntries(
      ['clone', 'push'].map((operation) => {
        const runs = server.runs[operation];
        return [operation, {
          runs: runs.map((run) => run.ms),
          median: median(runs.map((run) => run.ms)),
          cpuMedian: median(runs.map((run) => run.cpuSeconds)),
          maxOtherCpu: Math.max(...runs.map((run) => run.otherCpu)),
        }];
      }),
    ),
  }));
  const [t, a] = figures;
  return { mib, rounds, servers: figures, ratios: { clone: t.clone.median / a.clone.median, push: t.push.median / a.push.median } };
}

/** The SUMMARY entries: clone and push, tsgi's median time over Apache's, PASS at GIT_CGI_GOAL_MAX or less. */
export function gitCgiSummary(gitCgi) {
  const [t, a] = gitCgi.servers;
  return ['clone', 'push'].map((operation) => {
    const ratio = gitCgi.ratios[operation];
    const verdict = ratio <= GIT_CGI_GOAL_MAX ? 'PASS' : 'MISS';
    const what = operation === 'clone' ? 'git clone' : 'chunked git push';
    return {
      label: `git-cgi: ${what} of ${gitCgi.mib} MiB through tsgi serve --cgi-bin / Apache mod_cgi (median time of ${gitCgi.rounds})`,
      bound: `<= ${GIT_CGI_GOAL_MAX.toFixed(2)}`,
      ratio,
      verdict,
      detail:
        `${ratio.toFixed(2)}x ${verdict} (${(t[operation].median / 1000).toFixed(2)} / ${(a[operation].median / 1000).toFixed(2)} s); ` +
        `server CPU ${t[operation].cpuMedian.toFixed(2)} / ${a[operation].cpuMedian.toFixed(2)} s`,
    };
  });
}
