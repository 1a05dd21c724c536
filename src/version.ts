import { readFileSync } from 'node:fs';

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
