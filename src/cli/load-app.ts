import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { App } from '../types.js';
import type { ImportTypeScriptOptions } from './import-typescript.js';

const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** A MODULE[:EXPORT] reference split into its parts. */
export interface AppReference {
  modulePath: string;
  exportName: string | null;
}

/** Splits "path/to/app.ts:name" into the module path and the export name (null when none was given). */
export function parseAppReference(reference: string): AppReference {
  const match = /^(.*):([A-Za-z_$][\w$]*)$/.exec(reference);
  if (match && match[1]) return { modulePath: match[1], exportName: match[2] ?? null };
  return { modulePath: reference, exportName: null };
}

/**
 * Loads the app a MODULE[:EXPORT] reference names: the given export, else `default`, else `app`. TypeScript
 * modules load without a build step and without a module loader (compiled by esbuild: see importTypeScript,
 * which `options` go to); JavaScript modules are imported as they are. Throws an Error with a clear message when the module or
 * the export is missing, or the export is not a function.
 */
export async function loadApp(reference: string, cwd = process.cwd(), options: ImportTypeScriptOptions = {}): Promise<App> {
  const { modulePath, exportName } = parseAppReference(reference);
  const absolute = resolve(cwd, modulePath);
  const info = await process.getBuiltinModule('node:fs').promises.stat(absolute).catch(() => null);
  if (!info?.isFile()) throw new Error(`tsgi: module not found (${modulePath})`);
  const url = pathToFileURL(absolute).href;
  let namespace: Record<string, unknown>;
  if (TYPESCRIPT_EXTENSIONS.has(extname(absolute))) {
    namespace = await (await import('./import-typescript.js')).importTypeScript(absolute, options);
  } else {
    namespace = (await import(url)) as Record<string, unknown>;
  }
  const names = exportName ? [exportName] : ['default', 'app'];
  for (const name of names) {
    let candidate = namespace[name];
    // A module compiled to CommonJS (no "type": "module" nearby) arrives as { default: module.exports }.
    if (candidate && typeof candidate === 'object' && name === 'default') {
      const inner = candidate as { default?: unknown; app?: unknown };
      candidate = typeof inner.default === 'function' ? inner.default : typeof inner.app === 'function' ? inner.app : candidate;
    }
    if (candidate === undefined) continue;
    if (typeof candidate !== 'function') {
      throw new Error(`tsgi: export "${name}" of ${modulePath} is not an app (a ${typeof candidate}, not a function)`);
    }
    return candidate as App;
  }
  const available = Object.keys(namespace).join(', ') || 'none';
  const wanted = exportName ? `export "${exportName}"` : 'a default export or an export named "app"';
  throw new Error(`tsgi: ${modulePath} has no ${wanted} (exports: ${available})`);
}
