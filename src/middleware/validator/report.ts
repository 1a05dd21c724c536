import { formatLintValue } from '../../errors.js';

/** A soft-rule finding: the interface allows it, but it is almost always a mistake. */
export interface LintWarning {
  /** The rule's id in docs/validator-rules.md ("F12"). */
  rule: string;
  message: string;
  /** The value that triggered the warning, when there is one. */
  value?: unknown;
}

/** Receives the soft-rule findings of a check. */
export type WarningHandler = (warning: LintWarning) => void;

/** Formats a warning for an error stream: `tsgi.lint: warning F12 status has no reason phrase ("200")`. */
export function formatWarning(warning: LintWarning): string {
  const value = warning.value === undefined ? '' : ` (${formatLintValue(warning.value)})`;
  return `tsgi.lint: warning ${warning.rule} ${warning.message}${value}\n`;
}

/** Describes a value's type for a message: "null", "array", "Uint8Array", "string"... */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object' || typeof value === 'function') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? name : typeof value;
  }
  return typeof value;
}
