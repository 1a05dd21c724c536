// `import ... from 'node:fs'` in an ES module reads every export of fs, which loads fs/promises, readline and the
// streams (see src/cli/serve-plan.ts); process.getBuiltinModule returns the module as it is.
const { readFileSync } = process.getBuiltinModule('node:fs');

let version: string | undefined;

/** Returns this package's version from its package.json (read once, lazily), or "0.0.0" when unreadable. */
export function readVersion(): string {
  if (version === undefined) {
    try {
      // src/ and dist/ are both one level below the package root.
      const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
      const found = (JSON.parse(text) as { version?: unknown }).version;
      version = typeof found === 'string' ? found : '0.0.0';
    } catch {
      version = '0.0.0';
    }
  }
  return version;
}
