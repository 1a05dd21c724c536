/**
 * No import cycle in src/: walks the import graph of the TypeScript sources (static `import ... from`,
 * `export ... from` and dynamic `import('...')` with a literal, relative specifier; type-only imports count
 * too, since a cycle of types is still two files that cannot be read apart) and fails naming each cycle found.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The relative imports of one file, as absolute .ts paths. */
export function importsOf(file: string, text: string = readFileSync(file, 'utf8')): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(SPECIFIER)) {
    found.add(resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts')));
  }
  return [...found];
}

/** Every cycle reachable in `graph`, each as the list of files from its first to itself again. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      const seen = state.get(next);
      if (seen === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (seen === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

describe('the import graph of src/', () => {
  it('finds a cycle when there is one (the check itself works)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    expect(importsOf('/x/y.ts', "import type { A } from './a.js';\nconst m = await import('../b.js');\nexport * from './c.js';")).toEqual(['/x/a.ts', '/b.ts', '/x/c.ts']);
  });

  it('has no cycle', () => {
    const graph = new Map(sourceFiles(SRC).map((file) => [file, importsOf(file)]));
    expect(graph.size).toBeGreaterThan(50);
    const cycles = findCycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' -> '));
    expect(cycles).toEqual([]);
  });
});
