#!/usr/bin/env node
/**
 * The long fuzz run: the properties of test/fuzz/ (the ones the normal test suite runs briefly) with
 * 100,000 generated and mutated inputs per target, a random seed unless one is given.
 *
 *   npm run fuzz                                # 100,000 inputs per target, random seed
 *   npm run fuzz -- --seed 12345 --runs 5000    # replay a seed, or a shorter run
 *   npm run fuzz -- --target scgi,environ       # some targets only
 *
 * Options: --runs N (inputs per target), --seed N, --target NAME[,NAME] (fastcgi, scgi, uwsgi, cgi-head,
 * environ, servers), --timeout-minutes M (watchdog per suite; default scales with --runs). The servers
 * target (real FastCGI/SCGI/uwsgi servers on loopback) makes 42% of --runs socket exchanges.
 *
 * Each suite runs in its own vitest process, one after the other, with TSGI_FUZZ_RUNS, TSGI_FUZZ_SEED and
 * TSGI_FUZZ_REPORT set; the suites write one line per property to the report. The script prints per property
 * and per target the runs, seed, time and outcome, shows vitest's output (with fast-check's counterexample,
 * seed and path) for a failing suite, and exits 1 on any failure, any property that did not report, or a
 * suite that outlived its watchdog (a hang: its process group is killed).
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Suites and the targets whose properties they hold (a target = one decoder or translator). */
const SUITES = [
  { name: 'fastcgi', file: 'test/fuzz/fastcgi.test.ts', targets: ['fastcgi-records', 'fastcgi-name-value'] },
  { name: 'scgi', file: 'test/fuzz/scgi.test.ts', targets: ['scgi-netstring'] },
  { name: 'uwsgi', file: 'test/fuzz/uwsgi.test.ts', targets: ['uwsgi-packet'] },
  { name: 'cgi-head', file: 'test/fuzz/cgi-head.test.ts', targets: ['cgi-head'] },
  { name: 'environ', file: 'test/fuzz/environ.test.ts', targets: ['environ'] },
  // Real sockets: slower per input, so this target takes 42% of --runs (see its shares).
  { name: 'servers', file: 'test/fuzz/servers.test.ts', targets: ['servers'] },
];

function fail(message) {
  process.stderr.write(`fuzz: ${message}\n`);
  process.exit(2);
}

let options;
try {
  options = parseArgs({
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      target: { type: 'string' },
      'timeout-minutes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(`${error.message} (try --help)`);
}
if (options.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\*\n/, '').replace(/^ \* ?/gm, ''));
  process.exit(0);
}

function positiveInt(name, raw, fallback) {
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) fail(`--${name} must be a positive integer (${raw})`);
  return Number(raw);
}

const runs = positiveInt('runs', options.runs, 100_000);
// fast-check seeds are 32-bit integers.
const seed = options.seed === undefined ? randomInt(1, 2 ** 31 - 1) : positiveInt('seed', options.seed, 0);
if (seed > 2 ** 31 - 1) fail(`--seed must be below 2^31 (${seed})`);
const wanted = options.target === undefined ? null : new Set(options.target.split(',').map((t) => t.trim()));
if (wanted) for (const name of wanted) if (!SUITES.some((s) => s.name === name)) fail(`unknown target ${name} (${SUITES.map((s) => s.name).join(', ')})`);
const suites = SUITES.filter((s) => wanted === null || wanted.has(s.name));
// About 20 ms per input at worst on a busy machine (ten times the usual), plus start-up: a suite past this is
// hung.
const timeoutMinutes = options['timeout-minutes'] === undefined ? 10 + (runs * 0.02) / 60 : positiveInt('timeout-minutes', options['timeout-minutes'], 0);

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
if (!existsSync(vitest)) fail('vitest is not installed (npm install)');

const work = mkdtempSync(join(tmpdir(), 'tsgi-fuzz-'));
const reportFile = join(work, 'report.jsonl');
writeFileSync(reportFile, '');

const replay = `npm run fuzz -- --seed ${seed} --runs ${runs}`;
process.stdout.write(`tsgi fuzz: ${runs.toLocaleString('en-US')} inputs per target, seed ${seed}\n`);
process.stdout.write(`replay: ${replay}${wanted ? ` --target ${[...wanted].join(',')}` : ''}\n\n`);

/** Runs one suite in its own vitest process under a watchdog. */
function runSuite(suite) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [vitest, 'run', suite.file, '--reporter=default', '--color=false'], {
      cwd: root,
      env: { ...process.env, TSGI_FUZZ_RUNS: String(runs), TSGI_FUZZ_SEED: String(seed), TSGI_FUZZ_REPORT: reportFile, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so the watchdog can stop vitest and its workers together.
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    let hung = false;
    const watchdog = setTimeout(() => {
      hung = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, timeoutMinutes * 60_000);
    child.on('close', (code) => {
      clearTimeout(watchdog);
      resolve({ code, hung, output, ms: Date.now() - started });
    });
  });
}

function readReport() {
  return readFileSync(reportFile, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

const pad = (text, width) => String(text).padEnd(width);
const padLeft = (text, width) => String(text).padStart(width);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

let failed = false;
const totals = [];
process.stdout.write(`${pad('target', 20)}${pad('property', 20)}${padLeft('runs', 9)}${padLeft('time', 11)}  outcome\n`);
for (const suite of suites) {
  const before = readReport().length;
  const result = await runSuite(suite);
  const lines = readReport().slice(before);
  for (const line of lines) {
    process.stdout.write(`${pad(line.target, 20)}${pad(line.property, 20)}${padLeft(line.runs.toLocaleString('en-US'), 9)}${padLeft(seconds(line.ms), 11)}  ${line.outcome}\n`);
  }
  for (const target of suite.targets) {
    const mine = lines.filter((line) => line.target === target);
    const inputs = mine.reduce((sum, line) => sum + line.runs, 0);
    const ms = mine.reduce((sum, line) => sum + line.ms, 0);
    const outcome = result.hung ? 'HUNG' : mine.length > 0 && mine.every((line) => line.outcome === 'pass') && result.code === 0 ? 'pass' : 'FAIL';
    totals.push({ target, inputs, ms, outcome });
  }
  if (result.hung || result.code !== 0) {
    failed = true;
    const why = result.hung ? `did not finish within ${timeoutMinutes.toFixed(0)} min (killed): a hang` : `failed (vitest exit ${result.code})`;
    process.stdout.write(`\n${suite.name}: ${why}; vitest said:\n${result.output.trim().split('\n').slice(-80).join('\n')}\n\n`);
  }
}

process.stdout.write(`\n${pad('target', 20)}${padLeft('inputs', 11)}${padLeft('time', 11)}  outcome\n`);
for (const total of totals) {
  process.stdout.write(`${pad(total.target, 20)}${padLeft(total.inputs.toLocaleString('en-US'), 11)}${padLeft(seconds(total.ms), 11)}  ${total.outcome}\n`);
}
const all = totals.reduce((sum, t) => sum + t.inputs, 0);
process.stdout.write(`\n${failed ? 'FAIL' : 'pass'}: ${all.toLocaleString('en-US')} inputs, seed ${seed}${failed ? ` — replay with: ${replay}` : ''}\n`);
rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
