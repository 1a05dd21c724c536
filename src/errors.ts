/**
 * One error family for tsgi. Messages read "<area>: <rule> (<value>)". The client only ever sees a generic
 * status page; the message goes to the error stream.
 */

/** Base class of every error tsgi throws. `status` is the HTTP status a server answers with, if any. */
export class TsgiError extends Error {
  override name = 'TsgiError';
  /** The HTTP status this error maps to when it reaches a server before headers were sent. */
  readonly status: number;
  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status ?? 500;
  }
}

/** The request is malformed (bad CONTENT_LENGTH, truncated body, bad header...). Maps to a 4xx. */
export class RequestError extends TsgiError {
  override name = 'RequestError';
  constructor(message: string, status = 400, cause?: unknown) {
    super(message, { status, cause });
  }
}

/** Reading the request body failed: fewer bytes than CONTENT_LENGTH, or over a configured limit. */
export class InputError extends RequestError {
  override name = 'InputError';
}

/** The app broke the interface (bad status, header with CR/LF, write before startResponse...). Maps to 500. */
export class AppError extends TsgiError {
  override name = 'AppError';
  constructor(message: string, cause?: unknown) {
    super(message, { status: 500, cause });
  }
}

/** A peer broke a wire protocol (CGI response head, FastCGI record...). */
export class ProtocolError extends TsgiError {
  override name = 'ProtocolError';
  constructor(message: string, status = 502, cause?: unknown) {
    super(message, { status, cause });
  }
}

/** The request was aborted: the client went away. */
export class AbortError extends TsgiError {
  override name = 'AbortError';
  constructor(message = 'tsgi: request aborted by the client', cause?: unknown) {
    super(message, { status: 499, cause });
  }
}

/** Returns the HTTP status an error should produce when it escapes an app before headers were sent. */
export function statusOfError(error: unknown): number {
  // Duck-typed, not instanceof: an app may load its own copy of tsgi (a bundle, a second node_modules).
  const status = error instanceof Error ? (error as { status?: unknown }).status : undefined;
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599) return status;
  return 500;
}

/** Formats an error for the error stream: its stack when there is one, with any `cause` chain. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = error.stack ?? `${error.name}: ${error.message}`;
  let cause = (error as { cause?: unknown }).cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    text += `\nCaused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`;
    cause = cause instanceof Error ? (cause as { cause?: unknown }).cause : undefined;
  }
  return text;
}

/** The validator found an app or server breaking a rule of the interface. `rule` is the rule's id ("F13"). */
export class LintError extends TsgiError {
  override name = 'LintError';
  readonly rule: string;
  readonly value: unknown;
  constructor(rule: string, message: string, value?: unknown) {
    super(`tsgi.lint: ${rule} ${message}${value === undefined ? '' : ` (${formatLintValue(value)})`}`, {
      status: 500,
    });
    this.rule = rule;
    this.value = value;
  }
}

/** Shows a bad value in a lint message: JSON for strings, cut at 200 chars. */
export function formatLintValue(value: unknown): string {
  try {
    const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
    return text.length > 200 ? `${text.slice(0, 200)}...` : text;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
