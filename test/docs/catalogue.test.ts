/**
 * The rule catalogue in docs/ checked against the code, so that the two cannot drift apart:
 * - every id that a comment or string in src/, test/, examples/ or conf/ cites ("(T33)", "conformance G8",
 *   "F18:", "B1-B18") is documented in docs/conformance.md or docs/validator-rules.md;
 * - every rule the validator reports (`new LintError('F13', ...)`, a warning `{ rule: 'F12', ... }`) has its
 *   section in docs/validator-rules.md, which quotes each of its messages and names the file that checks it,
 *   and no section there is for a rule the validator never reports;
 * - each check in the validator carries a comment with its rule's id (the rule's prose next to its check);
 * - section F of docs/conformance.md and docs/validator-rules.md list the same rules.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { citedIds } from './rule-ids.js';
import { messagePattern, readRuleReports, type RuleReport } from './validator-reports.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where code, tests, examples and web server configurations cite ids. */
const CITING_DIRS = ['src', 'test', 'examples', 'conf'];
/** This file holds made-up ids to test the id pattern. */
const THIS_FILE = relative(ROOT, fileURLToPath(import.meta.url));
const VALIDATOR_FILES = [
  'src/middleware/validator.ts',
  ...readdirSync(join(ROOT, 'src/middleware/validator'))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `src/middleware/validator/${name}`),
];

const conformance = readFileSync(join(ROOT, 'docs/conformance.md'), 'utf8');
const catalogue = readFileSync(join(ROOT, 'docs/validator-rules.md'), 'utf8');
const ruleSections = readRuleSections(catalogue);
const reports: RuleReport[] = [
  ...VALIDATOR_FILES.flatMap((file) => readRuleReports(join(ROOT, file))),
  // A LintError thrown anywhere else in src/ counts too; `{ rule }` objects outside the validator are not warnings.
  ...readTextFiles('src')
    .filter(({ file, text }) => file.endsWith('.ts') && !VALIDATOR_FILES.includes(file) && text.includes('LintError('))
    .flatMap(({ file }) => readRuleReports(join(ROOT, file)).filter((report) => report.kind === 'hard')),
];
const reportedRules = new Set(reports.map((report) => report.rule));

/** The text files under `dir`, by path relative to the root; binary files and files gone meanwhile are skipped. */
function readTextFiles(dir: string): Array<{ file: string; text: string }> {
  const files: Array<{ file: string; text: string }> = [];
  for (const entry of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = relative(ROOT, join(entry.parentPath, entry.name));
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(ROOT, file));
    } catch {
      continue; // a temporary file another test removed
    }
    if (!bytes.includes(0)) files.push({ file, text: bytes.toString('utf8') });
  }
  return files;
}

/** The ids of the table rows of a markdown text: lines starting `| F13 |`. */
function tableIds(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^\| ([A-GT][1-9][0-9]?) \|/gm)].map((match) => match[1] as string));
}

/** The sections `### F13: ...` under "## Rules" of docs/validator-rules.md, by id, each with its text. */
function readRuleSections(markdown: string): Map<string, string> {
  const rules = markdown.split(/^## Rules$/m)[1]?.split(/^## /m)[0] ?? '';
  const sections = new Map<string, string>();
  for (const part of rules.split(/^(?=### )/m)) {
    const id = /^### (F[1-9][0-9]?):/.exec(part)?.[1];
    if (id !== undefined) sections.set(id, part);
  }
  return sections;
}

/** Section F of docs/conformance.md: from its heading to the next "## ". */
function conformanceSectionF(): string {
  return conformance.split(/^## F\. /m)[1]?.split(/^## /m)[0] ?? '';
}

describe('rule ids: the pattern', () => {
  const ids = (text: string): string[] => citedIds(text).map((cited) => cited.id);

  it('finds ids as comments, test names and reports write them', () => {
    expect(ids('// refused (T33), conformance G8; F18: the body')).toEqual(['T33', 'G8', 'F18']);
    expect(ids("it('A9/T34: CONTENT_LENGTH', ...); new LintError('F13', 'x')")).toEqual(['A9', 'T34', 'F13']);
    expect(ids('(C5, C6, C14, T1, T3)')).toEqual(['C5', 'C6', 'C14', 'T1', 'T3']);
  });

  it('expands a range to every id in it', () => {
    expect(ids('conformance B1-B4').sort()).toEqual(['B1', 'B2', 'B3', 'B4']);
    expect(ids('(C7-C9, T8)').sort()).toEqual(['C7', 'C8', 'C9', 'T8']);
  });

  it('leaves out look-alikes: words, numbers, percent-escapes and hex bytes', () => {
    expect(ids('UTF8 T1mer AT1 F5key x-F5x 0xE9 \\u00C3 /caf%C3%A9 %E9 "C3 A9" bytes E2 82 AC T0 F100')).toEqual([]);
  });

  it('gives the line of each id', () => {
    expect(citedIds('one\n// (G8)\nthree T33')).toEqual([
      { id: 'G8', line: 2 },
      { id: 'T33', line: 3 },
    ]);
  });
});

describe('rule catalogue: docs/ against the code', () => {
  it('reads the validator and the docs (a guard against a vacuous pass)', () => {
    expect(reports.length).toBeGreaterThan(50);
    expect(ruleSections.size).toBeGreaterThan(15);
    expect(tableIds(conformance).size).toBeGreaterThan(100);
  });

  it('documents every id cited in src/, test/, examples/ and conf/', () => {
    const documented = new Set([...tableIds(conformance), ...ruleSections.keys()]);
    const missing: string[] = [];
    let cited = 0;
    for (const { file, text } of CITING_DIRS.flatMap(readTextFiles)) {
      if (file === THIS_FILE) continue;
      for (const { id, line } of citedIds(text)) {
        cited += 1;
        if (!documented.has(id)) missing.push(`${id} (${file}:${line})`);
      }
    }
    expect(cited).toBeGreaterThan(200);
    expect(missing, 'ids cited in the code but found in neither docs/conformance.md nor docs/validator-rules.md').toEqual([]);
  });

  it('gives every rule the validator reports its section in docs/validator-rules.md', () => {
    const missing = [...reportedRules].filter((rule) => !ruleSections.has(rule));
    expect(missing, 'rules reported by src/middleware/validator* without a "### Fn:" section').toEqual([]);
  });

  it('lists no rule in docs/validator-rules.md that the validator never reports', () => {
    const stale = [...ruleSections.keys()].filter((rule) => !reportedRules.has(rule));
    expect(stale, 'sections of docs/validator-rules.md for rules no LintError or warning reports').toEqual([]);
  });

  it('quotes every message of a rule in its section, says hard or soft, and names the file that checks it', () => {
    const problems: string[] = [];
    for (const [rule, section] of ruleSections) {
      const ruleReports = reports.filter((report) => report.rule === rule);
      const kind = /^Side: [^.]*\. Kind: ([^.]*)\./m.exec(section)?.[1] ?? '';
      for (const report of ruleReports) {
        const where = `${relative(ROOT, report.file)}:${report.line}`;
        if (report.messageParts === undefined) problems.push(`${rule}: the message at ${where} is not a literal`);
        else if (!messagePattern(report.messageParts).test(section)) problems.push(`${rule}: "${report.messageParts.join('…')}" (${where})`);
        if (!section.includes(basename(report.file))) problems.push(`${rule}: does not name ${basename(report.file)} (${where})`);
        if (!kind.includes(report.kind)) problems.push(`${rule}: its Kind ("${kind}") does not say ${report.kind} (${where})`);
      }
      if (ruleReports.some((report) => report.kind === 'hard') !== kind.startsWith('hard')) {
        problems.push(`${rule}: Kind "${kind}" should start with "hard" exactly when a LintError reports it`);
      }
      if (ruleReports.some((report) => report.kind === 'soft') !== kind.includes('soft')) {
        problems.push(`${rule}: Kind "${kind}" should say "soft" exactly when a warning reports it`);
      }
    }
    expect(problems, 'docs/validator-rules.md against the reports in src/middleware/validator*').toEqual([]);
  });

  it('keeps a comment with the rule id next to each check in the validator (as Rack lint.rb does)', () => {
    const uncommented: string[] = [];
    for (const file of VALIDATOR_FILES) {
      const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
      for (const report of reports.filter((candidate) => candidate.file === join(ROOT, file))) {
        // The nearest comment line above the check that starts with an id must name this check's rule.
        let commented: string | undefined;
        for (let index = report.line - 2; index >= 0 && commented === undefined; index -= 1) {
          commented = /^\s*\/\/ (F[1-9][0-9]?)\b/.exec(lines[index] as string)?.[1];
        }
        if (commented !== report.rule) uncommented.push(`${file}:${report.line} reports ${report.rule}, nearest rule comment: ${commented ?? 'none'}`);
      }
    }
    expect(uncommented).toEqual([]);
  });

  it('lists the same rules in section F of docs/conformance.md', () => {
    const sectionF = tableIds(conformanceSectionF());
    const catalogued = new Set(citedIds(catalogue).map((cited) => cited.id));
    expect([...ruleSections.keys()].filter((rule) => !sectionF.has(rule)), 'in docs/validator-rules.md, not in conformance.md F').toEqual([]);
    expect([...sectionF].filter((rule) => !catalogued.has(rule)), 'in conformance.md F, not mentioned in docs/validator-rules.md').toEqual([]);
  });
});
