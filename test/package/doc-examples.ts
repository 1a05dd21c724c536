/**
 * The TypeScript and JavaScript examples of a markdown document, and the rule that says which of them are
 * programs (see test/package/pack.test.ts for what is done with each kind).
 */

/** Info strings of the fenced blocks that hold TypeScript or JavaScript; other blocks (sh, nginx, json...) are not code examples. */
const SCRIPT_LANGUAGES: Record<string, 'ts' | 'js'> = {
  ts: 'ts',
  typescript: 'ts',
  mts: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
};

/** One fenced code block of a script language. */
export interface CodeExample {
  /** The document, relative to the repository root. */
  document: string;
  /** The line of the opening fence (1-based). */
  line: number;
  language: 'ts' | 'js';
  code: string;
}

/** The fenced blocks of `markdown` whose info string names TypeScript or JavaScript, in document order. */
export function scriptExamples(document: string, markdown: string): CodeExample[] {
  const examples: CodeExample[] = [];
  const lines = markdown.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const open = /^```\s*([\w-]*)/.exec(lines[index] as string);
    if (!open) continue;
    const end = lines.findIndex((text, at) => at > index && /^```\s*$/.test(text));
    if (end === -1) break;
    const language = SCRIPT_LANGUAGES[(open[1] ?? '').toLowerCase()];
    if (language) examples.push({ document, line: index + 1, language, code: lines.slice(index + 1, end).join('\n') + '\n' });
    index = end;
  }
  return examples;
}

/**
 * True when the example declares its own dependencies: it has an `import` declaration. An example without one
 * (the one-line framework glue `export default fromNodeHandler(expressApp);`, SPEC's type signatures) is a
 * fragment of a program written elsewhere: it is neither type-checked nor run.
 */
export function importsItsDependencies(example: CodeExample): boolean {
  return /^\s*import\s[^;]*?from\s*['"][^'"]+['"]/m.test(example.code);
}

/**
 * True when the example is a CGI program: it calls runWithCgi, which answers the one request in the process
 * environment and stdin (run it with a CGI environment, not as an app module).
 */
export function isCgiProgram(example: CodeExample): boolean {
  return /\brunWithCgi\s*\(/.test(example.code);
}

/** The file name an example is written to in the temporary project: its document and line, e.g. readme-85.ts. */
export function exampleFileName(example: CodeExample): string {
  const stem = example.document.replace(/^.*\//, '').replace(/\.md$/i, '').toLowerCase();
  return `${stem}-${example.line}.${example.language === 'ts' ? 'ts' : 'mjs'}`;
}

/**
 * TypeScript diagnostics for a name used but declared nowhere: "Cannot find name 'app'" (2304) and its forms for
 * test-runner globals (2582, 2593). A near-miss of a declared name (2552, "Did you mean") is a real error.
 */
export const UNDECLARED_NAME_CODES = new Set([2304, 2582, 2593]);

/** One tsc diagnostic, from `tsc --pretty false` output. */
export interface Diagnostic {
  file: string;
  line: number;
  code: number;
  message: string;
}

/** The diagnostics of `tsc --pretty false` output: `file(line,col): error TS2304: message`. */
export function parseDiagnostics(output: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const match of output.matchAll(/^(.+?)\((\d+),\d+\): error TS(\d+): (.*)$/gm)) {
    diagnostics.push({ file: match[1] as string, line: Number(match[2]), code: Number(match[3]), message: match[4] as string });
  }
  return diagnostics;
}

/** The name of an undeclared-name diagnostic ("Cannot find name 'app'."), or undefined for any other. */
export function undeclaredName(diagnostic: Diagnostic): string | undefined {
  if (!UNDECLARED_NAME_CODES.has(diagnostic.code)) return undefined;
  return /Cannot find name '([^']+)'/.exec(diagnostic.message)?.[1];
}
