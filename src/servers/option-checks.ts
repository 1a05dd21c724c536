import { TsgiError } from '../errors.js';
import { createForwardedPolicy, DEFAULT_FORWARDED_ALLOW_IPS, type ForwardedPolicy } from '../environ/forwarded-policy.js';
import { normalizeMount } from '../environ/mount.js';
import type { App, ErrorStream } from '../types.js';

/**
 * The checks a gateway server (FastCGI, SCGI, uwsgi) runs on its options once, when it is created: a bad
 * option throws a TsgiError naming the server, the option and the value ("fastcgi: mount must be ... (app)"),
 * so a mistake stops start-up with a clear line instead of failing every request later. Each returns the
 * value the server keeps (its default when the option is unset). Nothing here runs per request.
 */

/** "app" -> `"app"`, 1.5 -> `1.5`: a value for a message, strings quoted so that "" shows. */
export function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * A mount prefix: unset -> null; else normalised once by the one rule for prefixes (normalizeMount: "" for the
 * root, else "/a/b" without a trailing "/"), which refuses a prefix that is not a path.
 */
export function checkMount(area: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') throw new TsgiError(`${area}: mount must be "" or a path starting with "/" (${shown(value)})`);
  return normalizeMount(value, `${area}: mount`);
}

/** A whole number from `min` to `max` (a count or a size in bytes); unset -> `fallback`. */
export function checkWhole(area: string, name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new TsgiError(`${area}: ${name} must be a whole number ${range} (${shown(value)})`);
  }
  return value;
}

/** A byte limit that may be off: a whole number >= 0, or Infinity (no limit); unset -> Infinity. */
export function checkByteLimit(area: string, name: string, value: unknown): number {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TsgiError(`${area}: ${name} must be a whole number of bytes >= 0, or Infinity for no limit (${shown(value)})`);
  }
  return value;
}

/** setTimeout's largest delay; above it Node fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** A timeout: unset -> `fallback`, 0 = off, else milliseconds (capped at setTimeout's largest delay). */
export function checkTimeout(area: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || value === Number.POSITIVE_INFINITY) {
    throw new TsgiError(`${area}: ${name} must be a number of milliseconds >= 0, 0 = off (${shown(value)})`);
  }
  return Math.min(value, MAX_TIMEOUT_MS);
}

/** true or false; unset -> `fallback`. */
export function checkFlag(area: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TsgiError(`${area}: ${name} must be true or false (${shown(value)})`);
  return value;
}

/** An app (a function) for a role; unset -> null. */
export function checkApp(area: string, name: string, value: unknown): App | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'function') throw new TsgiError(`${area}: ${name} must be an app (a function) (${shown(value)})`);
  return value as App;
}

/** The server's log: an object with a write(text) method; unset -> process.stderr. */
export function checkErrors(area: string, value: unknown): ErrorStream {
  if (value === undefined) return { write: (text) => void process.stderr.write(text) };
  if (typeof value !== 'object' || value === null || typeof (value as { write?: unknown }).write !== 'function') {
    throw new TsgiError(`${area}: errors must be an object with a write(text) method (${shown(value)})`);
  }
  return value as ErrorStream;
}

/**
 * The peers whose forwarding fields are trusted: a comma-separated list of addresses and networks (unset:
 * DEFAULT_FORWARDED_ALLOW_IPS), built once into a policy (createForwardedPolicy throws a TsgiError for an
 * entry that is not an address or network).
 */
export function checkForwardedAllowIps(area: string, value: unknown): ForwardedPolicy {
  if (value === undefined) return createForwardedPolicy(DEFAULT_FORWARDED_ALLOW_IPS);
  if (typeof value !== 'string') throw new TsgiError(`${area}: forwardedAllowIps must be a comma-separated string of addresses (${shown(value)})`);
  return createForwardedPolicy(value);
}
