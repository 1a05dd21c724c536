/**
 * What the bench needs before it measures: the Debian packages of the selected rows (installed with apt-get
 * when missing and we are root, with a policy-rc.d so that no packaged service starts), a fresh dist/
 * (`npm run build`), the npm devDependencies, and the Go backend built into the temp dir. Also the machine
 * and version description of the report.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { removeOnExit, runQuick, runVisible } from './processes.mjs';

const APT_UPDATE_TIMEOUT_MS = 5 * 60_000;
const APT_INSTALL_TIMEOUT_MS = 15 * 60_000;
const BUILD_TIMEOUT_MS = 10 * 60_000;
const GO_BUILD_TIMEOUT_MS = 5 * 60_000;
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/** The newest /usr/sbin/php-fpmX.Y (Debian names the binary after the PHP version), or null. */
export function findPhpFpm() {
  const found = existsSync('/usr/sbin') ? readdirSync('/usr/sbin').filter((name) => /^php-fpm\d+(\.\d+)?$/.test(name)) : [];
  found.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return found.length ? join('/usr/sbin', found[found.length - 1]) : null;
}

/** The uWSGI binary: Debian's uwsgi-core ships /usr/bin/uwsgi-core (and /usr/bin/uwsgi through alternatives). */
export function findUwsgi() {
  return ['/usr/bin/uwsgi-core', '/usr/bin/uwsgi'].find((path) => existsSync(path)) ?? null;
}

/** Everything the bench can need, by tool: how to tell it is there, and the Debian package providing it. */
export const TOOLS = {
  nginx: { package: 'nginx', present: () => existsSync('/usr/sbin/nginx') },
  wrk: { package: 'wrk', present: () => existsSync('/usr/bin/wrk') },
  'php-fpm': { package: 'php-fpm', present: () => findPhpFpm() !== null },
  uwsgi: { package: 'uwsgi-core', present: () => findUwsgi() !== null },
  'uwsgi-python3': { package: 'uwsgi-plugin-python3', present: () => existsSync('/usr/lib/uwsgi/plugins/python3_plugin.so') },
  go: { package: 'golang-go', present: () => existsSync('/usr/bin/go') },
  time: { package: 'time', present: () => existsSync('/usr/bin/time') },
  python3: { package: 'python3', present: () => existsSync('/usr/bin/python3') },
  fcgiwrap: { package: 'fcgiwrap', present: () => existsSync('/usr/sbin/fcgiwrap') },
  git: { package: 'git', present: () => existsSync('/usr/bin/git') && existsSync('/usr/lib/git-core/git-http-backend') },
  apache2: { package: 'apache2', present: () => existsSync('/usr/sbin/apache2') && existsSync('/usr/lib/apache2/modules/mod_cgi.so') },
};

/** Every Debian package the full bench installs (for --help and the report). */
export const ALL_PACKAGES = [...new Set(Object.values(TOOLS).map((tool) => tool.package))];

/**
 * Installs the packages of the missing `tools` with apt-get (no recommends, no service started), or throws
 * with the command to run when we can't (not root, no apt-get, --no-install).
 */
export async function ensureTools(tools, { install, log }) {
  const missing = [...new Set(tools)].filter((tool) => !TOOLS[tool].present());
  if (missing.length === 0) return [];
  const packages = [...new Set(missing.map((tool) => TOOLS[tool].package))];
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (!install) throw new Error(`missing ${missing.join(', ')}; install them with: ${command} (or leave out --no-install)`);
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')} and not root; run as root: ${command}`);
  if (!existsSync('/usr/bin/apt-get')) throw new Error(`missing ${missing.join(', ')} and no apt-get here (Debian packages: ${packages.join(' ')})`);
  log(`installing ${packages.join(' ')} (missing: ${missing.join(', ')})`);
  // Debian's way to keep maintainer scripts from starting services (nginx on port 80, php-fpm): a policy-rc.d
  // that says no. Only ours is removed afterwards.
  let ownPolicy = false;
  if (!existsSync(POLICY_RC_D)) {
    writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n');
    chmodSync(POLICY_RC_D, 0o755);
    removeOnExit(POLICY_RC_D);
    ownPolicy = true;
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const updated = await runVisible('apt-get', ['update'], { env, timeoutMs: APT_UPDATE_TIMEOUT_MS });
    if (updated !== 0) throw new Error(`apt-get update failed (${updated})`);
    const installed = await runVisible('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, timeoutMs: APT_INSTALL_TIMEOUT_MS });
    if (installed !== 0) throw new Error(`${command} failed (${installed})`);
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
  const still = missing.filter((tool) => !TOOLS[tool].present());
  if (still.length) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
  return packages;
}

/** `npm run build` (bin/tsgi.js runs dist/): throws when it fails. */
export async function buildTsgi(root) {
  const code = await runVisible('npm', ['run', 'build', '--silent'], { cwd: root, timeoutMs: BUILD_TIMEOUT_MS });
  if (code !== 0) throw new Error(`npm run build failed (${code}); fix the build, or pass --no-build to measure the dist/ already there`);
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('npm run build left no dist/cli/main.js');
}

/** The npm packages rows need (devDependencies): throws naming the missing ones. */
export function checkNodeModules(root, names) {
  const missing = names.filter((name) => !existsSync(join(root, 'node_modules', name, 'package.json')));
  if (missing.length) throw new Error(`node_modules lacks ${missing.join(', ')} (devDependencies): run \`npm ci\``);
}

export function nodeModuleVersion(root, name) {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'n/a';
  }
}

/**
 * Builds bench/apps/go-fcgi/main.go into `dir` with the standard library only: GOCACHE and GOPATH in `dir`,
 * GOPATH mode (no module, nothing to download), the network off for the go command. Returns the binary's path.
 */
export async function buildGo(appDir, dir) {
  const out = join(dir, 'go-fcgi');
  await mkdir(join(dir, 'go-cache'), { recursive: true });
  await mkdir(join(dir, 'go-path'), { recursive: true });
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    GOCACHE: join(dir, 'go-cache'),
    GOPATH: join(dir, 'go-path'),
    GO111MODULE: 'off',
    GOPROXY: 'off',
    GOFLAGS: '',
    GOTOOLCHAIN: 'local',
    CGO_ENABLED: '0',
  };
  const code = await runVisible('go', ['build', '-o', out, 'main.go'], { cwd: appDir, env, timeoutMs: GO_BUILD_TIMEOUT_MS });
  if (code !== 0 || !existsSync(out)) throw new Error(`go build of ${join(appDir, 'main.go')} failed (${code})`);
  return out;
}

function cpuModel() {
  const fromProc = (() => {
    try {
      return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  })();
  return (fromProc ?? cpus()[0]?.model ?? 'unknown CPU').trim();
}

/** The installed version of a Debian package (fcgiwrap has no --version), or 'not installed'. */
function debianVersion(name) {
  const result = runQuick('dpkg-query', ['-W', '-f', '${Version}', name]);
  return result.code === 0 && result.text ? result.text : 'not installed';
}

/** The machine and the versions of everything measured, as [label, value] pairs. */
export function describeMachine(root) {
  const version = (command, args, re) => {
    if (!command) return 'not installed';
    const result = runQuick(command, args);
    return re.exec(result.text)?.[1] ?? 'n/a';
  };
  const phpFpm = findPhpFpm();
  const uwsgi = findUwsgi();
  return [
    ['date', new Date().toISOString().replace(/\.\d+Z$/, 'Z')],
    ['CPU', `${cpuModel()}, ${cpus().length} cores`],
    ['memory', `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`],
    ['kernel', `Linux ${release()}`],
    ['Node', process.version],
    ['nginx', version(existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null, ['-v'], /nginx\/(\S+)/)],
    ['PHP', version(phpFpm, ['-v'], /^PHP (\S+)/m)],
    ['uWSGI', version(uwsgi, ['--version'], /^(\S+)/)],
    ['Python', version(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : null, ['--version'], /Python (\S+)/)],
    ['Go', version(existsSync('/usr/bin/go') ? '/usr/bin/go' : null, ['version'], /go version go(\S+)/)],
    ['wrk', version(existsSync('/usr/bin/wrk') ? '/usr/bin/wrk' : null, ['-v'], /wrk (\S+)/)],
    ['fcgiwrap', debianVersion('fcgiwrap')],
    ['Apache', version(existsSync('/usr/sbin/apache2') ? '/usr/sbin/apache2' : null, ['-v'], /Apache\/(\S+)/)],
    ['git', version(existsSync('/usr/bin/git') ? '/usr/bin/git' : null, ['--version'], /git version (\S+)/)],
    ['node-fastcgi', nodeModuleVersion(root, 'node-fastcgi')],
    ['Express', nodeModuleVersion(root, 'express')],
  ];
}
