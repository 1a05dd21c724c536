/**
 * Shared by scripts/soak.mjs and scripts/faults.mjs: rebuild dist/ (the backends run bin/tsgi.js, which loads
 * it), run one vitest file with the given environment and a fresh report file, and hand back the figures the
 * tests wrote (one JSON object a line) with vitest's exit status.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Runs `command args` in the repository root with inherited stdio; resolves with its exit status. */
function run(command, args, env = {}) {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('error', (error) => {
      process.stderr.write(`${command}: ${error.message}\n`);
      resolveRun(1);
    });
    child.once('exit', (code, signal) => resolveRun(code ?? (signal ? 1 : 0)));
  });
}

/**
 * Builds, then runs `vitest run testFile` with `env` (plus TSGI_E2E=required, so a missing web server is a
 * failure, and TSGI_RELIABILITY_REPORT). Returns { status, records, seconds, built }.
 */
export async function runReliability(testFile, env) {
  process.stdout.write('> npm run build\n');
  const built = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  if (built !== 0) {
    process.stderr.write('npm run build failed: dist/ is what the backends run, so nothing was tested\n');
    return { status: built, records: [], seconds: 0, built: false };
  }
  const dir = mkdtempSync(join(tmpdir(), 'tsgi-reliability-report-'));
  const reportFile = join(dir, 'report.jsonl');
  const started = Date.now();
  try {
    process.stdout.write(`> vitest run ${testFile} (${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')})\n`);
    const status = await run(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', testFile], {
      TSGI_E2E: 'required',
      ...env,
      TSGI_RELIABILITY_REPORT: reportFile,
    });
    let text = '';
    try {
      text = readFileSync(reportFile, 'utf8');
    } catch {
      // no test got far enough to report
    }
    const records = text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line));
    return { status, records, seconds: (Date.now() - started) / 1000, built: true };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads `--name value` / `--name=value` as a positive integer, or `fallback`; exits with a message when bad. */
export function intFlag(name, fallback) {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let text;
    if (arg === `--${name}`) text = argv[i + 1];
    else if (arg.startsWith(`--${name}=`)) text = arg.slice(name.length + 3);
    else continue;
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) {
      process.stderr.write(`--${name} needs a positive integer (got ${JSON.stringify(text)})\n`);
      process.exit(2);
    }
    return value;
  }
  return fallback;
}

/** Prints rows (arrays of cells) as an aligned plain-text table. */
export function printTable(header, rows) {
  const widths = header.map((cell, i) => Math.max(String(cell).length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((cell, i) => String(cell).padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(`${line(header)}\n${line(widths.map((w) => '-'.repeat(w)))}\n${rows.map(line).join('\n')}\n`);
}
