/**
 * The places in the code that the documents name exist, so that a file moved or split leaves no pointer
 * behind: every repository path named in README.md or docs/*.md ("src/servers/fastcgi/request.ts",
 * "src/host/", "test/e2e/workers.test.ts", "conf/nginx-fastcgi.conf", "src/bridges/fetch/from-fetch-*.ts"),
 * and every bare file name ("record-bodies.ts") in the conformance checklist, the validator's catalogue and
 * README's Layout section, which name files by their folder: such a name is a file somewhere under src/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The folders of the repository whose paths the documents name (dist/ is built, so not checked). */
const TOP_FOLDERS = ['src', 'test', 'examples', 'bench', 'conf', 'bin', 'docs', 'scripts', 'cgi-bin'];

/**
 * A repository path: a top folder at the start of a word (not inside "/srv/app/src/..." or a URL), then path
 * characters, "*" and "<name>" placeholders included.
 */
const REPO_PATH = new RegExp(`(?<![\\w./-])(?:${TOP_FOLDERS.join('|')})/[\\w./*<>-]*`, 'g');

/** A bare TypeScript file name: not preceded by a path character. */
const BARE_TS_NAME = /(?<![\w./*-])[\w-]+\.ts\b/g;

/** The documents and, for each, the part of it whose bare file names are files under src/ (undefined: none). */
const DOCUMENTS: ReadonlyArray<{ file: string; bareNamesIn?: (text: string) => string }> = [
  { file: 'README.md', bareNamesIn: (text) => sectionOf(text, '## Layout') },
  { file: 'docs/SPEC.md' },
  { file: 'docs/conformance.md', bareNamesIn: (text) => text },
  { file: 'docs/validator-rules.md', bareNamesIn: (text) => text },
];

/** The text of the section that starts at `heading`, up to the next heading of the same level. */
export function sectionOf(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`no section ${heading}`);
  const level = heading.slice(0, heading.indexOf(' ') + 1);
  const end = text.indexOf(`\n${level}`, start + heading.length + 2);
  return text.slice(start, end === -1 ? undefined : end);
}

/** The repository paths named in `text`, without a sentence's closing "." or a line number's ":". */
export function repoPathsIn(text: string): string[] {
  return [...new Set([...text.matchAll(REPO_PATH)].map((match) => match[0].replace(/[.]+$/, '')))];
}

/** The bare TypeScript file names in `text`. */
export function bareNamesIn(text: string): string[] {
  return [...new Set([...text.matchAll(BARE_TS_NAME)].map((match) => match[0]))];
}

/**
 * True when `path` (relative to the root) names something there; "*" or a placeholder ("<name>") in its last
 * part matches any characters.
 */
function pathExists(path: string): boolean {
  const name = basename(path).replace(/<[^>]*>/g, '*');
  if (!name.includes('*')) return existsSync(join(ROOT, path));
  const folder = join(ROOT, dirname(path));
  const pattern = new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return existsSync(folder) && readdirSync(folder).some((entry) => pattern.test(entry));
}

/** The names of every file under src/. */
function sourceNames(folder = join(ROOT, 'src'), names = new Set<string>()): Set<string> {
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    if (entry.isDirectory()) sourceNames(join(folder, entry.name), names);
    else names.add(entry.name);
  }
  return names;
}

describe('the code places the documents name', () => {
  it('finds the paths and names a document holds (the check itself works)', () => {
    const text = [
      '| C10 | ... | src/servers/fastcgi/management.ts, src/protocol/fastcgi/record-bodies.ts; conf/nginx-fastcgi.conf |',
      'see `src/host/` and /srv/app/src/app.ts, https://example.com/src/x.ts or test/e2e/workers.test.ts.',
      '`fetch/` holds `from-fetch-*.ts`; `mount.ts` splits, as in app.mount.ts or dist/x.ts',
      '',
      '## Layout',
      '`record-bodies.ts`',
      '## Next',
    ].join('\n');
    expect(repoPathsIn(text)).toEqual([
      'src/servers/fastcgi/management.ts',
      'src/protocol/fastcgi/record-bodies.ts',
      'conf/nginx-fastcgi.conf',
      'src/host/',
      'test/e2e/workers.test.ts',
    ]);
    expect(bareNamesIn(text)).toEqual(['mount.ts', 'record-bodies.ts']);
    expect(bareNamesIn(sectionOf(text, '## Layout'))).toEqual(['record-bodies.ts']);
    expect(pathExists('src/bridges/fetch/from-fetch-*.ts')).toBe(true);
    expect(pathExists('src/bridges/fetch/into-fetch-*.ts')).toBe(false);
    expect(pathExists('cgi-bin/framework-<name>.ts')).toBe(true);
    expect(pathExists('src/servers/no-such-server.ts')).toBe(false);
  });

  for (const { file, bareNamesIn: bareNamePart } of DOCUMENTS) {
    it(`${file}: every repository path it names exists`, () => {
      const text = readFileSync(join(ROOT, file), 'utf8');
      const paths = repoPathsIn(text);
      expect(paths.length).toBeGreaterThan(0);
      expect(paths.filter((path) => !pathExists(path))).toEqual([]);
    });

    if (bareNamePart) {
      it(`${file}: every bare .ts name it gives by folder is a file under src/`, () => {
        const names = sourceNames();
        const part = bareNamePart(readFileSync(join(ROOT, file), 'utf8'));
        expect(bareNamesIn(part).filter((name) => !names.has(name))).toEqual([]);
      });
    }
  }
});
