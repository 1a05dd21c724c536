/**
 * CGI start-up cost: a tsgi CGI script against a bare Node process, the least a Node CGI does, a Python CGI and
 * a shell CGI.
 *
 * Builds cgi-bin/hello.ts with the project's buildCgi (dist/cli/build-command.js) into the temp dir twice (the
 * default `#!/usr/bin/env node`, and `--shebang` with this node's absolute path), then runs, interleaved and in
 * rotating order, `runs` times each (after `warmup` rounds):
 *   node -e 0                 the floor: a Node process that does nothing
 *   node -e stdout.write      touching process.stdout (a pipe) loads net and stream: what a CGI must avoid
 *   node floor.cgi            bench/apps/floor.cgi, interpreter named: the least a Node CGI does (the two
 *                             variables it needs, one writeSync); over node -e 0, the cost of running a file
 *   ./floor.cgi (#!)          the same through `#!/usr/bin/env node`: adds env's exec and PATH search
 *   node hello.cgi            the tsgi bundle, interpreter named explicitly
 *   ./hello.cgi (#!)          what a web server does: exec through `#!/usr/bin/env node`
 *   ./hello-abs.cgi (#!NODE)  the bundle built with --shebang NODE (this node's path): no env hop
 *   ./hello-cgi.py (#!)       bench/apps/hello-cgi.py through #!/usr/bin/python3
 *   ./hello-cgi.sh (#!)       bench/apps/hello-cgi.sh through #!/bin/sh
 * each with a CGI environment for a GET request. Wall time is taken around spawn -> exit (hrtime), through GNU
 * time (`/usr/bin/time -f %M`), which gives the child's peak RSS (a parent can't read it otherwise: polling
 * /proc races the exit). Every CGI's output is checked to be a valid CGI response with the expected body.
 */
import { spawn } from 'node:child_process';
import { chmod, copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const GNU_TIME = '/usr/bin/time';
export const CGI_GOAL_RATIO = 1.1;
const RUN_TIMEOUT_MS = 20_000;

/** Spawns a command; resolves with its exit code, output and wall time in ms; killed after RUN_TIMEOUT_MS. */
function run(command, args, { env, cwd }) {
  return new Promise((resolveRun, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stdout.on('data', (data) => out.push(data));
    child.stderr.on('data', (data) => err.push(data));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const stderr = Buffer.concat(err).toString();
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code ?? signal}: ${stderr.slice(-2000)}`));
      else resolveRun({ ms, stdout: Buffer.concat(out) });
    });
  });
}

/** Checks a CGI response: "Status: 200 OK", a Content-Type, a blank line, then `body`. Throws when wrong. */
function checkCgiResponse(name, bytes, body) {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`${name}: no header block in ${JSON.stringify(text.slice(0, 200))}`);
  const lines = text.slice(0, end).split('\r\n');
  if (lines[0] !== 'Status: 200 OK') throw new Error(`${name}: first line is ${JSON.stringify(lines[0])}`);
  if (!lines.some((line) => /^content-type: text\/plain/i.test(line))) throw new Error(`${name}: no Content-Type text/plain`);
  if (text.slice(end + 4) !== body) throw new Error(`${name}: body is ${JSON.stringify(text.slice(end + 4))}, expected ${JSON.stringify(body)}`);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Runs the CGI start-up measurement; returns { runs, warmup, variants: [{ name, wallMedian, wallP90, rssMedianMib }] }. */
export async function measureCgiStartup({ root, apps, dir, runs, warmup, log }) {
  const helloPath = join(dir, 'hello.cgi');
  const { buildCgi } = await import(pathToFileURL(join(root, 'dist', 'cli', 'build-command.js')).href);
  await buildCgi(join(root, 'cgi-bin', 'hello.ts'), helloPath);
  const helloAbsPath = join(dir, 'hello-abs.cgi');
  await buildCgi(join(root, 'cgi-bin', 'hello.ts'), helloAbsPath, { shebang: process.execPath });
  const floor = join(dir, 'floor.cgi');
  await copyFile(join(apps, 'floor.cgi'), floor);
  await chmod(floor, 0o755);
  const python = join(dir, 'hello-cgi.py');
  const shell = join(dir, 'hello-cgi.sh');
  await copyFile(join(apps, 'hello-cgi.py'), python);
  await copyFile(join(apps, 'hello-cgi.sh'), shell);
  await chmod(python, 0o755);
  await chmod(shell, 0o755);
  const scriptName = '/cgi-bin/hello.cgi';
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'tsgi-bench',
    SERVER_NAME: 'localhost',
    SERVER_PORT: '80',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: 'GET',
    SCRIPT_NAME: scriptName,
    QUERY_STRING: '',
    REMOTE_ADDR: '127.0.0.1',
    HTTP_HOST: 'localhost',
  };
  const tsgiBody = `Hello from tsgi! You asked for ${scriptName}\n`;
  const floorBody = `Hello from Node! You asked for ${scriptName}\n`;
  const variants = [
    { name: 'node -e 0', command: process.execPath, args: ['-e', '0'] },
    { name: 'node -e stdout.write', command: process.execPath, args: ['-e', "process.stdout.write('x')"] },
    { name: 'node floor.cgi', command: process.execPath, args: [floor], body: floorBody },
    { name: './floor.cgi (#!)', command: floor, args: [], body: floorBody },
    { name: 'node hello.cgi (tsgi)', command: process.execPath, args: [helloPath], body: tsgiBody },
    { name: './hello.cgi (tsgi, #!)', command: helloPath, args: [], body: tsgiBody },
    { name: `./hello-abs.cgi (tsgi, #!${process.execPath})`, command: helloAbsPath, args: [], body: tsgiBody },
    { name: 'Python CGI (#!)', command: python, args: [], body: `Hello from Python! You asked for ${scriptName}\n` },
    { name: 'shell CGI (#!/bin/sh)', command: shell, args: [], body: `Hello from sh! You asked for ${scriptName}\n` },
  ];
  const samples = new Map(variants.map((variant) => [variant.name, []]));
  const rssFile = join(dir, 'cgi-rss');

  async function measure(variant) {
    const result = await run(GNU_TIME, ['-f', '%M', '-o', rssFile, variant.command, ...variant.args], { env, cwd: dir });
    if (variant.body !== undefined) checkCgiResponse(variant.name, result.stdout, variant.body);
    const rssKib = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop());
    return { ms: result.ms, rssKib };
  }

  log(`CGI start-up: ${runs} interleaved runs of ${variants.length} variants (+${warmup} warm-up rounds)`);
  for (let i = 0; i < warmup; i++) for (const variant of variants) await measure(variant);
  for (let i = 0; i < runs; i++) {
    // Rotate the order so no variant always runs first (caches, CPU frequency).
    for (let j = 0; j < variants.length; j++) {
      const variant = variants[(i + j) % variants.length];
      samples.get(variant.name).push(await measure(variant));
    }
  }
  return {
    runs,
    warmup,
    variants: variants.map((variant) => {
      const list = samples.get(variant.name);
      const wall = list.map((s) => s.ms).sort((a, b) => a - b);
      const rss = list.map((s) => s.rssKib).filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
      return {
        name: variant.name,
        tsgi: variant.name.includes('tsgi'),
        wallMedian: quantile(wall, 0.5),
        wallP90: quantile(wall, 0.9),
        rssMedianMib: rss.length ? quantile(rss, 0.5) / 1024 : Number.NaN,
      };
    }),
  };
}
