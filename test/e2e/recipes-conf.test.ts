/**
 * Keeps conf/ honest: every file there is loaded by some end-to-end test (its name appears as a string
 * literal, the way the tests pass it to startApache/startNginx/readUnit or read it), and the README points to
 * it. A recipe added without a test, or a test that stopped loading its recipe, fails here.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from './servers.js';

const CONF_DIR = join(PROJECT_ROOT, 'conf');
const E2E_DIR = join(PROJECT_ROOT, 'test', 'e2e');

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else if (entry.isFile()) found.push(path);
  }
  return found.sort();
}

const confFiles = (await filesUnder(CONF_DIR)).map((path) => relative(CONF_DIR, path));
const testSources = await Promise.all(
  (await readdir(E2E_DIR))
    .filter((name) => name.endsWith('.ts') && name !== 'recipes-conf.test.ts')
    .map(async (name) => ({ name, text: await readFile(join(E2E_DIR, name), 'utf8') })),
);

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * True when `source` has `name` as a string literal ('name', "name", `name`), or a template literal that
 * produces it (`nginx-${protocol}.conf` produces nginx-scgi.conf): how the tests and suites pass conf files.
 */
function namesIt(source: string, name: string): boolean {
  if (new RegExp(`['"\`]${escape(name)}['"\`]`).test(source)) return true;
  // Only templates with a fixed start and the name's extension at the end (never a bare `${file}`).
  if (extname(name) === '') return false;
  for (const match of source.matchAll(/`([^`$]*(?:\$\{[^}]*\}[^`$]*)+)`/g)) {
    const parts = (match[1] as string).split(/\$\{[^}]*\}/);
    if (parts[0] === '' || !(parts[parts.length - 1] as string).endsWith(extname(name))) continue;
    if (new RegExp(`^${parts.map(escape).join('[A-Za-z0-9_-]+')}$`).test(name)) return true;
  }
  return false;
}

describe('conf/ recipes', () => {
  it('has the recipes this suite knows of', () => {
    expect(confFiles).toEqual(
      expect.arrayContaining([
        'nginx-cgi-bin.conf',
        'docker/Dockerfile',
        'kubernetes/deployment.yaml',
        'nginx-fastcgi.conf',
        'nginx-upstream.conf',
        'spawn-fcgi.sh',
        'systemd/tsgi-fastcgi.service',
        'systemd/tsgi-fastcgi.socket',
        'systemd/tsgi-http.service',
        'systemd/tsgi-http.socket',
      ]),
    );
  });

  it.each(confFiles)('conf/%s is loaded by an end-to-end test', (file) => {
    const name = basename(file);
    const users = testSources.filter((source) => namesIt(source.text, name)).map((source) => source.name);
    expect(users, `no test/e2e/*.ts names '${name}' in a string`).not.toEqual([]);
  });

  it.each(confFiles)('conf/%s is named in the README', async (file) => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    expect(readme.includes(`conf/${file}`), `README.md does not mention conf/${file}`).toBe(true);
  });

  it('names only end-to-end tests and conf files that exist', async () => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const tests = new Set([...readme.matchAll(/test\/e2e\/([\w.-]+\.test\.ts)/g)].map((match) => match[1] as string));
    const e2eFiles = new Set(await readdir(E2E_DIR));
    expect(tests.size).toBeGreaterThan(10);
    expect([...tests].filter((name) => !e2eFiles.has(name))).toEqual([]);
    const confs = new Set([...readme.matchAll(/\(conf\/([\w./-]+)\)/g)].map((match) => match[1] as string));
    expect([...confs].filter((name) => !confFiles.includes(name))).toEqual([]);
  });
});
