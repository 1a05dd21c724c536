import { RequestError } from '../errors.js';
import type { Environ, ErrorStream } from '../types.js';
import { LazyAbort } from '../servers/lazy-abort.js';
import { applyForwarded } from './forwarded.js';
import type { ForwardedPolicy } from './forwarded-policy.js';
import { hostWithoutPort } from './host.js';
import { BodyInput } from './input.js';
import { newVariables, setVariable } from './variables.js';

/** The largest CONTENT_LENGTH accepted: beyond it, byte counts lose precision in a JS number. */
export const MAX_CONTENT_LENGTH = Number.MAX_SAFE_INTEGER;

/** Everything a transport knows about one request, before it becomes an Environ. */
export interface EnvironSource {
  /** CGI meta-variables as byte strings (one char per byte). Keys with undefined values are skipped. */
  variables: Record<string, string | undefined>;
  /** The raw request body bytes; may run past CONTENT_LENGTH (the input stops there). */
  input?: AsyncIterable<Uint8Array> | null;
  /** True when the body ends where `input` ends, even without CONTENT_LENGTH. Default false. */
  inputTerminated?: boolean;
  /** Where `tsgi.errors` writes. */
  errors: ErrorStream;
  /**
   * Fires when the client goes away. Default: a signal that never fires. A function makes `tsgi.signal` lazy:
   * it is called the first time the app reads the key (creating an AbortController costs time on every
   * request). The transport's `input` must then reject pending reads by itself when the client goes away.
   * A LazyAbort does the same as `() => lazyAbort.signal` without a closure per request.
   */
  signal?: AbortSignal | (() => AbortSignal) | LazyAbort;
  /**
   * The transport built `variables` for this environ alone: use the object itself instead of a copy (saves a
   * copy per request on the hot path).
   */
  ownsVariables?: boolean;
  /** Overrides the scheme derived from HTTPS / REQUEST_SCHEME. */
  urlScheme?: 'http' | 'https';
  multithread?: boolean;
  multiprocess?: boolean;
  runOnce?: boolean;
  /** Called before the first read of the body that waits for the client (HTTP `Expect: 100-continue`). */
  onFirstRead?: () => void;
  /**
   * Which peers (REMOTE_ADDR) may set the client's address, scheme and host through X-Forwarded-* or
   * `Forwarded` (forwarded.ts). Default: none (the variables are taken as they are).
   */
  forwarded?: ForwardedPolicy | null;
}

const CONTENT_LENGTH_RE = /^[0-9]+$/;
const BLANKS_RE = /^[ \t]+|[ \t]+$/g;

/**
 * The one translator from CGI variables to an Environ, used by every transport. It applies the rules every
 * server must follow so that apps see the same environ wherever they run:
 * - httpoxy: HTTP_PROXY is never passed (a client's `Proxy:` header would otherwise steer outgoing requests);
 * - HTTP_CONTENT_TYPE / HTTP_CONTENT_LENGTH never appear (RFC 3875 §4.1.18);
 * - empty CONTENT_LENGTH / CONTENT_TYPE mean absent (nginx sends them empty);
 * - CONTENT_LENGTH must be decimal digits (spaces or tabs around them tolerated), else RequestError 400
 *   ("-1", "+5", "5,5", "0x10", "\v5", huge);
 * - QUERY_STRING, SCRIPT_NAME and PATH_INFO always exist; SCRIPT_NAME is "" or starts with "/" and never ends
 *   in "/" (trailing slashes move to PATH_INFO); PATH_INFO is "" or starts with "/".
 * Throws RequestError(400) for a request that can't be represented.
 */
export function createEnviron(source: EnvironSource): Environ {
  let vars: Record<string, string>;
  if (source.ownsVariables) {
    vars = source.variables as Record<string, string>;
  } else {
    vars = newVariables();
    for (const key of Object.keys(source.variables)) {
      const value = source.variables[key];
      if (typeof value === 'string') setVariable(vars, key, value);
    }
  }
  return createOwnedEnviron(vars, source.input ?? null, source.inputTerminated ?? false, source.signal, source.onFirstRead, source);
}

/** What createOwnedEnviron takes from a transport's settings: the same for every request of a server. */
export type EnvironSettings = Pick<EnvironSource, 'errors' | 'urlScheme' | 'multithread' | 'multiprocess' | 'runOnce' | 'forwarded'>;

/**
 * createEnviron with `ownsVariables` for a transport's hot path: what differs per request is given as
 * arguments (see EnvironSource for each), what a server shares in `settings`, so that no options object is
 * made per request. `variables` becomes the environ (undefined values are not allowed here).
 */
export function createOwnedEnviron(
  variables: Record<string, string>,
  input: AsyncIterable<Uint8Array> | null,
  inputTerminated: boolean,
  signal: EnvironSource['signal'],
  onFirstRead: (() => void) | undefined,
  settings: EnvironSettings,
): Environ {
  const vars = variables;
  // Deleting only what is there keeps the object's shape (and V8's fast property access) on the hot path.
  if (vars.HTTP_PROXY !== undefined) delete vars.HTTP_PROXY;
  if (vars.HTTP_CONTENT_TYPE !== undefined) delete vars.HTTP_CONTENT_TYPE;
  if (vars.HTTP_CONTENT_LENGTH !== undefined) delete vars.HTTP_CONTENT_LENGTH;
  if (vars.CONTENT_TYPE === '') delete vars.CONTENT_TYPE;
  const forwardedScheme = settings.forwarded ? applyForwarded(vars, settings.forwarded) : undefined;

  let contentLength: number | null = null;
  const rawLength = vars.CONTENT_LENGTH;
  if (rawLength === '') {
    delete vars.CONTENT_LENGTH;
  } else if (rawLength !== undefined) {
    // Blanks around the digits are tolerated (HTTP's OWS: space and tab), nothing else: String.trim() would
    // also take vertical tabs, line ends and NBSP, so "\v5" or "5\n" would pass as 5.
    const blankAtEdge = isBlank(rawLength.charCodeAt(0)) || isBlank(rawLength.charCodeAt(rawLength.length - 1));
    const trimmed = blankAtEdge ? rawLength.replace(BLANKS_RE, '') : rawLength;
    const parsed = CONTENT_LENGTH_RE.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed > MAX_CONTENT_LENGTH) {
      throw new RequestError(`environ: bad CONTENT_LENGTH (${JSON.stringify(rawLength).slice(0, 40)})`);
    }
    contentLength = parsed;
    vars.CONTENT_LENGTH = String(parsed);
  }

  vars.REQUEST_METHOD ??= 'GET';
  vars.QUERY_STRING ??= '';
  vars.SERVER_PROTOCOL ??= 'HTTP/1.0';
  let scriptName = vars.SCRIPT_NAME ?? '';
  let pathInfo = vars.PATH_INFO ?? '';
  if (scriptName !== '' && !scriptName.startsWith('/')) scriptName = `/${scriptName}`;
  if (scriptName.endsWith('/')) {
    // "/" alone, "/app/" or "/app//" moves its trailing slashes to PATH_INFO (PEP 3333: SCRIPT_NAME never ends
    // in "/"); a PATH_INFO that starts with "/" already gives up that one.
    const end = trailingSlashStart(scriptName);
    pathInfo = scriptName.slice(end) + (pathInfo.startsWith('/') ? pathInfo.slice(1) : pathInfo);
    scriptName = scriptName.slice(0, end);
  }
  if (pathInfo !== '' && !pathInfo.startsWith('/')) pathInfo = `/${pathInfo}`;
  vars.SCRIPT_NAME = scriptName;
  vars.PATH_INFO = pathInfo;

  const urlScheme = forwardedScheme ?? settings.urlScheme ?? schemeOf(vars);
  if (vars.SERVER_NAME === undefined) vars.SERVER_NAME = hostWithoutPort(vars.HTTP_HOST) ?? 'localhost';
  vars.SERVER_PORT ??= urlScheme === 'https' ? '443' : '80';

  const given = signal;
  const lazy = typeof given === 'function' || given instanceof LazyAbort;
  const eager = lazy ? undefined : ((given as AbortSignal | undefined) ?? new AbortController().signal);
  const terminated = inputTerminated;
  const environ = vars as unknown as Environ;
  environ['tsgi.version'] = VERSION;
  environ['tsgi.url_scheme'] = urlScheme;
  environ['tsgi.input'] = new BodyInput(input, contentLength, terminated, eager, onFirstRead);
  environ['tsgi.input_terminated'] = terminated;
  environ['tsgi.errors'] = settings.errors;
  if (lazy) {
    // One shared getter and setter (no closures per request): they find the source in a private field.
    SignalSource.stamp(environ, given as LazySource);
    Object.defineProperty(environ, 'tsgi.signal', LAZY_SIGNAL);
  } else {
    environ['tsgi.signal'] = eager as AbortSignal;
  }
  environ['tsgi.multithread'] = settings.multithread ?? false;
  environ['tsgi.multiprocess'] = settings.multiprocess ?? false;
  environ['tsgi.run_once'] = settings.runOnce ?? false;
  return environ;
}

type LazySource = (() => AbortSignal) | LazyAbort;

/** `tsgi.version`: one frozen array shared by every environ (SPEC 5.3). */
const VERSION: readonly [1, 0] = Object.freeze([1, 0] as const);

/**
 * A new, empty object for a transport to put the CGI variables of one request in and hand to createEnviron
 * with `ownsVariables`. It is born with the private slot where a lazy `tsgi.signal` finds its source, so that
 * createEnviron only fills that slot: adding it to an object that already holds every variable would change
 * the object's shape once more per request. A plain object otherwise (Object.prototype, no visible key).
 */
export function createVariables(): Record<string, string | undefined> {
  return new SignalSource(newVariables(), null) as unknown as Record<string, string | undefined>;
}

/** A base class whose constructor returns the object it is given: `super(target)` makes `this` that object. */
class ReturnTarget {
  constructor(target: object) {
    return target;
  }
}

/**
 * Where a lazy `tsgi.signal` finds its source: a private field stamped on the environ itself (a subclass of
 * ReturnTarget adds its fields to the object its base returned). Unlike a symbol key or a non-enumerable
 * property, a private field is invisible to Object.keys, Reflect.ownKeys, copies and deep equality, and costs
 * one fast property store instead of an Object.defineProperty call (measured: about 0.3 µs per environ).
 */
class SignalSource extends ReturnTarget {
  #source: LazySource | null;

  constructor(environ: object, source: LazySource | null) {
    super(environ);
    this.#source = source;
  }

  /** Stamps `source` on `environ` (replacing one stamped before: a field can't be added twice). */
  static stamp(environ: object, source: LazySource): void {
    if (#source in environ) (environ as SignalSource).#source = source;
    else new SignalSource(environ, source);
  }

  /** The source stamped on `environ`, or on the nearest object of its prototype chain that has one. */
  static of(environ: object): LazySource | undefined {
    for (let at: object | null = environ; at !== null; at = Object.getPrototypeOf(at) as object | null) {
      // (A slot still empty: an object from createVariables whose environ got no lazy signal.)
      if (#source in at) return (at as SignalSource).#source ?? undefined;
    }
    return undefined;
  }
}

/** Replaces the lazy accessor of `tsgi.signal` with a plain data property holding `value`. */
function settleSignal(environ: object, value: unknown): void {
  Object.defineProperty(environ, 'tsgi.signal', { value, writable: true, configurable: true, enumerable: true });
}

/** The accessor of a lazy `tsgi.signal`, shared by every environ: created on first read, then a data property. */
const LAZY_SIGNAL: PropertyDescriptor = Object.freeze({
  configurable: true,
  enumerable: true,
  get(this: object): AbortSignal {
    const lazySource = SignalSource.of(this);
    // (Undefined only for a getter taken off its environ and called on some other object.)
    const created =
      lazySource === undefined ? new AbortController().signal : typeof lazySource === 'function' ? lazySource() : lazySource.signal;
    settleSignal(this, created);
    return created;
  },
  set(this: object, value: AbortSignal): void {
    settleSignal(this, value);
  },
});

/** Space or tab (the only blanks tolerated around CONTENT_LENGTH's digits). */
function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Where the run of "/" that ends `path` starts. */
function trailingSlashStart(path: string): number {
  let end = path.length;
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--;
  return end;
}

/** "https" when HTTPS is on/1/yes (any case) or REQUEST_SCHEME is https (RFC 3875 leaves this to servers). */
export function schemeOf(vars: Record<string, string | undefined>): 'http' | 'https' {
  const https = vars.HTTPS?.toLowerCase();
  if (https === 'on' || https === '1' || https === 'yes') return 'https';
  if (vars.REQUEST_SCHEME?.toLowerCase() === 'https') return 'https';
  return 'http';
}
