import { builtinModules } from 'node:module';

/**
 * Node's built-in modules loaded on first use in a `tsgi build` bundle, for CGI start-up.
 *
 * A bundle requires every builtin its modules import when it starts, used or not; `node:net` alone (and the
 * stream modules it brings) is about 4 ms of a 40 ms CGI start. LAZY_BUILTINS_PRELUDE, put before the
 * bundle, replaces the module's `require` (esbuild's CommonJS output calls it for every external import) with
 * one that returns a stand-in for each builtin Node's own start-up has not loaded: the module is required
 * when a property of the stand-in is first read (`net.isIP` at the call, not at the import). A script that
 * never reaches that code never loads the module.
 *
 * The stand-in forwards every object operation to the module (reading, writing, `in`, listing, describing
 * properties, its prototype), so named imports, `import * as` and default imports see the module's own
 * values (an `import *` or default import lists the properties, which loads the module then). The modules
 * whose export is a function (assert, stream) get a callable, constructible stand-in. What differs:
 * `typeof` of those stand-ins is always that of their kind, and a stand-in is not the module object itself
 * (`require('net') === require('net')` still holds: one stand-in per name).
 */

/** Builtins Node 20's start-up has already loaded (or that everything uses): required as they are. */
const EAGER_BUILTINS = new Set(['async_hooks', 'buffer', 'events', 'fs', 'module', 'path', 'path/posix', 'process', 'querystring', 'timers', 'url', 'util']);

/** Builtins whose export is a function: their stand-in must be callable and constructible. */
const CALLABLE_BUILTINS = ['assert', 'assert/strict', 'stream'];

/** The builtins a bundle defers: every one this Node lists but EAGER_BUILTINS (and the internal "_" ones). */
const LAZY_BUILTINS = builtinModules.filter((name) => !name.startsWith('_') && !EAGER_BUILTINS.has(name));
const LAZY_BUILTIN_SET = new Set(LAZY_BUILTINS);

/** Whether LAZY_BUILTINS_PRELUDE defers `id` (a builtin, with or without "node:"): the prelude's own rule. */
export function isDeferredBuiltin(id: string): boolean {
  return LAZY_BUILTIN_SET.has(id.startsWith('node:') ? id.slice(5) : id);
}

/**
 * JavaScript to put at the top of a CommonJS bundle (after `"use strict"`), before any of its code: redefines
 * the module's `require` as described above (for LAZY_BUILTINS, as written with or without "node:"; any other
 * name is required as it is). Keeps require.resolve, require.cache and require.main.
 */
export const LAZY_BUILTINS_PRELUDE = `var require = ((load) => {
  const lazy = new Set(${JSON.stringify(LAZY_BUILTINS)});
  const callable = new Set(${JSON.stringify(CALLABLE_BUILTINS)});
  const standIns = new Map();
  const standIn = (id, name) => {
    let module;
    const real = () => (module ??= load(id));
    const describe = (key) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(real(), key);
      if (descriptor) descriptor.configurable = true;
      return descriptor;
    };
    const proxy = new Proxy(callable.has(name) ? function () {}.bind(null) : {}, {
      get: (_, key) => real()[key],
      set: (_, key, value) => Reflect.set(real(), key, value),
      has: (_, key) => key in real(),
      ownKeys: () => Reflect.ownKeys(real()),
      getOwnPropertyDescriptor: (_, key) => describe(key),
      defineProperty: (_, key, descriptor) => Reflect.defineProperty(real(), key, descriptor),
      deleteProperty: (_, key) => Reflect.deleteProperty(real(), key),
      getPrototypeOf: () => Reflect.getPrototypeOf(real()),
      apply: (_, self, args) => Reflect.apply(real(), self, args),
      construct: (_, args, newTarget) => Reflect.construct(real(), args, newTarget === proxy ? real() : newTarget),
    });
    return proxy;
  };
  const lazyRequire = (id) => {
    const name = typeof id === "string" && id.startsWith("node:") ? id.slice(5) : id;
    if (!lazy.has(name)) return load(id);
    let found = standIns.get(name);
    if (found === undefined) standIns.set(name, (found = standIn(id, name)));
    return found;
  };
  return Object.assign(lazyRequire, load);
})(require);`;
