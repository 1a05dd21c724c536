#!/usr/bin/env node
/**
 * CGI start-up cost: how much a tsgi CGI script adds to a bare Node process.
 *
 *   node bench/cgi-startup.mjs [--runs N] [--warmup N]      (npm run bench:cgi-startup)
 *
 * Builds cgi-bin/hello.ts with buildCgi (from dist/ when `npm run build` ran, else through tsx) into a temp
 * dir, then runs, interleaved and in rotating order, N times each (default 30, after a few warm-up runs):
 *   - `node -e 0`                          the floor: a Node process that does nothing
 *   - `node -e "process.stdout.write('x')"`  the floor of any Node CGI: touching stdout (a pipe) loads net and
 *                                          stream, a cost `node -e 0` never pays
 *   - `node hello.cgi`                     the bundle, interpreter named explicitly
 *   - `./hello.cgi`                        what a web server does: exec through `#!/usr/bin/env node`
 * each with a CGI environment for a GET request. Wall time is taken around spawn -> exit (hrtime). Peak RSS
 * comes from GNU time (`/usr/bin/time -f %M`, Debian package `time`): a parent can't read a child's peak RSS
 * otherwise (process.resourceUsage() covers only this process, polling /proc/PID/status VmHWM races the exit).
 * Without GNU time the RSS columns say n/a. Every hello run's output is checked to be a valid CGI response.
 *
 * Goal printed alongside: hello / node <= 1.10 for median wall time and for median peak RSS.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const GNU_TIME = '/usr/bin/time';
const GOAL_RATIO = 1.1;
const EXPECTED_BODY = 'Hello from tsgi! You asked for /cgi-bin/hello.cgi\n';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.BENCH_RUNS ?? '30' },
    warmup: { type: 'string', default: '3' },
  },
});
const RUNS = Number(values.runs);
const WARMUP = Number(values.warmup);

/** Builds cgi-bin/hello.ts to `outFile` with the project's own buildCgi. */
async function buildHello(outFile) {
  const entry = join(ROOT, 'cgi-bin', 'hello.ts');
  const built = join(ROOT, 'dist', 'cli', 'build-command.js');
  if (existsSync(built)) {
    const { buildCgi } = await import(pathToFileURL(built).href);
    await buildCgi(entry, outFile);
    return 'dist/cli/build-command.js';
  }
  const code = `import(${JSON.stringify(pathToFileURL(join(ROOT, 'src', 'cli', 'build-command.ts')).href)})` +
    `.then((m) => m.buildCgi(${JSON.stringify(entry)}, ${JSON.stringify(outFile)}))` +
    '.catch((e) => { console.error(e); process.exit(1); });';
  await run('npx', ['tsx', '-e', code], { cwd: ROOT, env: process.env, check: true });
  return 'src/cli/build-command.ts via tsx';
}

/** Spawns a command; resolves with its exit code, output, and wall time in ms. */
function run(command, args, { env, cwd, check = false }) {
  return new Promise((resolveRun, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (data) => out.push(data));
    child.stderr.on('data', (data) => err.push(data));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const result = { code, ms, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() };
      if (check && code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${result.stderr}`));
      else resolveRun(result);
    });
  });
}

/** Checks a CGI response: Status line, Content-Type, blank line, the expected body. Throws when wrong. */
function checkCgiResponse(bytes) {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`hello.cgi: no header block in ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, end).split('\r\n');
  if (lines[0] !== 'Status: 200 OK') throw new Error(`hello.cgi: first line is ${JSON.stringify(lines[0])}`);
  if (!lines.some((line) => /^content-type: text\/plain/i.test(line))) throw new Error('hello.cgi: no Content-Type');
  const body = text.slice(end + 4);
  if (body !== EXPECTED_BODY) throw new Error(`hello.cgi: body is ${JSON.stringify(body)}`);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

function summarize(samples) {
  const wall = samples.map((s) => s.ms).sort((a, b) => a - b);
  const rss = samples.map((s) => s.rssKib).filter((v) => v !== null).sort((a, b) => a - b);
  return {
    wallMedian: quantile(wall, 0.5),
    wallP90: quantile(wall, 0.9),
    rssMedianMib: rss.length ? quantile(rss, 0.5) / 1024 : null,
  };
}

const work = await mkdtemp(join(tmpdir(), 'tsgi-bench-'));
try {
  const helloPath = join(work, 'hello.cgi');
  const via = await buildHello(helloPath);
  const haveTime = existsSync(GNU_TIME);
  const cgiEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'tsgi-bench',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: '/cgi-bin/hello.cgi',
    QUERY_STRING: '',
    REMOTE_ADDR: '127.0.0.1',
    HTTP_HOST: 'localhost',
  };
  const variants = [
    { name: 'node -e 0', command: process.execPath, args: ['-e', '0'], cgi: false },
    { name: 'node stdout.write', command: process.execPath, args: ['-e', "process.stdout.write('x')"], cgi: false },
    { name: 'node hello.cgi', command: process.execPath, args: [helloPath], cgi: true },
    { name: './hello.cgi (#!)', command: helloPath, args: [], cgi: true },
  ];
  const samples = new Map(variants.map((v) => [v.name, []]));
  const rssFile = join(work, 'rss');

  async function measure(variant) {
    const [command, args] = haveTime
      ? [GNU_TIME, ['-f', '%M', '-o', rssFile, variant.command, ...variant.args]]
      : [variant.command, variant.args];
    const result = await run(command, args, { env: cgiEnv, cwd: work, check: true });
    if (variant.cgi) checkCgiResponse(result.stdout);
    const rssKib = haveTime ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop()) : null;
    return { ms: result.ms, rssKib };
  }

  for (let i = 0; i < WARMUP; i++) for (const variant of variants) await measure(variant);
  for (let i = 0; i < RUNS; i++) {
    // Rotate the order so no variant always runs first (caches, CPU frequency).
    for (let j = 0; j < variants.length; j++) {
      const variant = variants[(i + j) % variants.length];
      samples.get(variant.name).push(await measure(variant));
    }
  }

  const stats = new Map(variants.map((v) => [v.name, summarize(samples.get(v.name))]));
  const base = stats.get('node -e 0');
  const fmt = (value, digits = 1) => (value === null || Number.isNaN(value) ? 'n/a' : value.toFixed(digits));
  console.log(`tsgi CGI start-up, ${RUNS} interleaved runs each (+${WARMUP} warm-up); Node ${process.version}; built with ${via}`);
  console.log(haveTime ? `peak RSS from ${GNU_TIME} -f %M` : `peak RSS: n/a (install GNU time: apt-get install time)`);
  console.log('');
  console.log('variant              wall median  wall p90   peak RSS median   ratio wall  ratio RSS');
  for (const variant of variants) {
    const s = stats.get(variant.name);
    const ratioWall = s.wallMedian / base.wallMedian;
    const ratioRss = s.rssMedianMib !== null && base.rssMedianMib !== null ? s.rssMedianMib / base.rssMedianMib : null;
    console.log(
      `${variant.name.padEnd(20)} ${fmt(s.wallMedian).padStart(8)} ms ${fmt(s.wallP90).padStart(7)} ms ` +
        `${fmt(s.rssMedianMib).padStart(10)} MiB      ${fmt(ratioWall, 3).padStart(7)}   ${fmt(ratioRss, 3).padStart(7)}`,
    );
  }
  console.log('');
  for (const name of ['node hello.cgi', './hello.cgi (#!)']) {
    const s = stats.get(name);
    const ratioWall = s.wallMedian / base.wallMedian;
    const ratioRss = s.rssMedianMib !== null && base.rssMedianMib !== null ? s.rssMedianMib / base.rssMedianMib : null;
    const verdict = (ratio) => (ratio === null ? 'n/a' : ratio <= GOAL_RATIO ? 'meets' : 'MISSES');
    console.log(
      `goal ${name} / node -e 0 <= ${GOAL_RATIO.toFixed(2)}: wall ${fmt(ratioWall, 3)} (${verdict(ratioWall)}), ` +
        `peak RSS ${fmt(ratioRss, 3)} (${verdict(ratioRss)})`,
    );
  }
  console.log('every hello.cgi run answered a valid CGI response (Status: 200 OK, Content-Type, body)');
} finally {
  await rm(work, { recursive: true, force: true });
}
