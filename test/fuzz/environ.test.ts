/**
 * Fuzzing the environ translator: createEnviron (with and without applyMount in front, as the FastCGI, SCGI
 * and uwsgi servers call them), decodeProcessEnv (the CGI path), headersToVariables/variablesToHeaders, the
 * percent-decoding helpers and the input stream. Any CGI variable set — byte strings, odd SCRIPT_NAME /
 * PATH_INFO / REQUEST_URI, percent escapes, mount prefixes, bad CONTENT_LENGTHs — gives either an environ that
 * obeys docs/SPEC.md §5 or a RequestError 400.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputError, RequestError } from '../../src/errors.js';
import { decodeLatin1Utf8, decodeProcessEnv, percentDecodeToByteString, rawPathBelow } from '../../src/environ/byte-policy.js';
import { MAX_CONTENT_LENGTH, createEnviron } from '../../src/environ/create-environ.js';
import { headersToVariables, variablesToHeaders } from '../../src/environ/header-variables.js';
import { createInput } from '../../src/environ/input.js';
import { applyMount, normalizeMount } from '../../src/environ/mount.js';
import type { Environ } from '../../src/types.js';
import { byteChar, byteString, check, testTimeout, timed, timedAsync, typedOutcome } from './harness.js';

const TARGET = 'environ';
const AREA = /^environ: /;
const errors = { write: (): void => {} };
const REQUIRED = ['REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL'];
const LATIN1_RE = /^[\x00-\xff]*$/;

/** A path segment: letters, escapes, dots, high bytes, NULs. */
const segmentArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', 'z', '0', '-', '.', '_', '~'), maxLength: 6 }) },
  { weight: 2, arbitrary: fc.string({ unit: byteChar().filter((c) => c !== '/'), maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '.', '..', 'caf\u00c3\u00a9', '%2F', '%', '%zz', '\u00ff', 'app', 'application', 'x?y') },
);
/** A byte-string path: usually absolute, sometimes relative, with empty segments and trailing slashes. */
const pathArb: fc.Arbitrary<string> = fc
  .tuple(fc.array(segmentArb, { maxLength: 5 }), fc.boolean(), fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }))
  .map(([segments, trailing, absolute]) => `${absolute ? '/' : ''}${segments.join('/')}${trailing ? '/' : ''}`);
const scriptNameArb: fc.Arbitrary<string> = fc.oneof(pathArb, fc.constantFrom('', '/', '//', '/app', '/app/', '/app//', 'app', 'app/', '/cgi-bin/s.cgi'));
const pathInfoArb: fc.Arbitrary<string> = fc.oneof(pathArb, fc.constantFrom('', '/', '//', 'x', '/x', '/x/'));

const UNRESERVED_RE = /[A-Za-z0-9\-._~/!$&'()*+,;=:@]/;
/** Percent-encodes a byte-string path the way a client might: unsafe bytes always, others at random. */
function encodePath(path: string, encodeSafe: readonly boolean[], lower: boolean): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string;
    if (ch !== '/' && (!UNRESERVED_RE.test(ch) || encodeSafe[i % encodeSafe.length])) {
      const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
      out += `%${lower ? hex : hex.toUpperCase()}`;
    } else {
      out += ch;
    }
  }
  return out;
}

interface RequestTarget {
  /** The decoded path (a byte string starting with "/"). */
  path: string;
  /** REQUEST_URI as the web server sends it. */
  uri: string;
  /** True when REQUEST_URI is origin-form, so applyMount takes its path from it. */
  originForm: boolean;
}

const requestTargetArb: fc.Arbitrary<RequestTarget> = fc
  .record({
    path: pathArb.map((p) => (p.startsWith('/') ? p : `/${p}`)),
    encodeSafe: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
    lower: fc.boolean(),
    query: fc.option(byteString({ maxLength: 12 }).map((q) => q.replace(/[^\x21-\x7e]/g, '')), { nil: undefined }),
    form: fc.constantFrom('origin', 'origin', 'origin', 'absolute', 'asterisk'),
  })
  .map((g) => {
    const raw = encodePath(g.path, g.encodeSafe, g.lower) + (g.query === undefined ? '' : `?${g.query}`);
    if (g.form === 'absolute') return { path: g.path, uri: `http://h.test${raw}`, originForm: false };
    if (g.form === 'asterisk') return { path: g.path, uri: '*', originForm: false };
    return { path: g.path, uri: raw, originForm: true };
  });

const contentLengthArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: fc.constantFrom('', '0', '007', ' 5', '5 ', '\t5\t', '-1', '+5', '5,5', '0x10', '1e3', '9007199254740991', '9007199254740992', '99999999999999999999', '\u00a05', '5\n', '\v5', '\ufeff5', '\u20035', ' ', '١٢') },
  { weight: 1, arbitrary: byteString({ maxLength: 6 }) },
);

const variablesArb: fc.Arbitrary<Record<string, string>> = fc
  .record(
    {
      REQUEST_METHOD: fc.oneof(fc.constantFrom('GET', 'POST', 'HEAD', 'OPTIONS'), byteString({ maxLength: 8 })),
      SCRIPT_NAME: scriptNameArb,
      PATH_INFO: pathInfoArb,
      QUERY_STRING: byteString({ maxLength: 16 }),
      CONTENT_LENGTH: contentLengthArb,
      CONTENT_TYPE: fc.oneof(fc.constantFrom('', 'text/plain', 'multipart/form-data; boundary=x'), byteString({ maxLength: 12 })),
      HTTP_HOST: fc.oneof(fc.constantFrom('h.test', 'h.test:81', '[::1]:8080', '[::1]', '[', ':80', '', 'caf\u00e9.test'), byteString({ maxLength: 12 })),
      HTTPS: fc.oneof(fc.constantFrom('on', 'ON', 'off', '1', '0', 'yes', 'Yes', ''), byteString({ maxLength: 4 })),
      REQUEST_SCHEME: fc.constantFrom('http', 'https', 'HTTPS', 'ftp', ''),
      SERVER_NAME: byteString({ maxLength: 12 }),
      SERVER_PORT: fc.constantFrom('80', '443', '8080', ''),
      SERVER_PROTOCOL: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'INCLUDED'),
      DOCUMENT_URI: pathArb,
      HTTP_PROXY: fc.constant('http://evil.test:3128'),
      HTTP_CONTENT_TYPE: fc.constant('text/evil'),
      HTTP_CONTENT_LENGTH: fc.constant('9'),
      HTTP_X_RAW: byteString({ maxLength: 16 }),
    },
    { requiredKeys: [] },
  )
  .chain((vars) =>
    fc
      .tuple(
        fc.option(requestTargetArb, { nil: undefined }),
        fc.dictionary(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'FCGI_ROLE', 'REMOTE_ADDR'), fc.string({ unit: fc.constantFrom('A', 'B', '_', 'Z'), minLength: 1, maxLength: 6 })), byteString({ maxLength: 8 }), {
          maxKeys: 4,
        }),
      )
      .map(([target, extra]) => {
        const out: Record<string, string> = {};
        for (const [key, value] of [...Object.entries(extra), ...Object.entries(vars)]) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
        if (target) out.REQUEST_URI = target.uri;
        return out;
      }),
  );

const mountArb: fc.Arbitrary<string | undefined> = fc.option(fc.oneof(fc.constantFrom('', '/', '/app', '/app/', '/a/b', '/caf\u00c3\u00a9', '/app//'), pathArb.filter((p) => p.startsWith('/'))), { nil: undefined });

/** Non-empty "/"-separated segments: what a path means once empty segments are set aside. */
function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** The CONTENT_LENGTH rule of §5.1: decimal digits (blanks around are tolerated), else a 400. */
function expectedContentLength(raw: string | undefined): { ok: true; value: string | undefined } | { ok: false } {
  if (raw === undefined || raw === '') return { ok: true, value: undefined };
  const match = /^[ \t]*([0-9]+)[ \t]*$/.exec(raw);
  if (!match || Number(match[1]) > MAX_CONTENT_LENGTH) return { ok: false };
  return { ok: true, value: String(Number(match[1])) };
}

/** The decoded request path applyMount takes, for the cases the oracle models (origin-form REQUEST_URI). */
function mountPathOf(variables: Record<string, string>): string | undefined {
  const uri = variables.REQUEST_URI;
  if (uri === undefined || !uri.startsWith('/')) return undefined;
  return percentDecodeToByteString(uri.split('?', 1)[0] as string);
}

/** Checks an environ against SPEC §5 and against the variables it was made from. */
function checkEnviron(environ: Environ, input: Record<string, string>, split: { scriptName: string; pathInfo: string }): void {
  const env = environ as unknown as Record<string, unknown>;
  for (const key of REQUIRED) expect(typeof env[key]).toBe('string');
  const scriptName = env.SCRIPT_NAME as string;
  const pathInfo = env.PATH_INFO as string;
  // §5.1: SCRIPT_NAME is "" or "/..." not ending in "/"; PATH_INFO is "" or "/...".
  expect(scriptName === '' || (scriptName.startsWith('/') && !scriptName.endsWith('/'))).toBe(true);
  expect(pathInfo === '' || pathInfo.startsWith('/')).toBe(true);
  // The split moves path segments between the two, never loses, adds or copies one.
  expect(segments(scriptName)).toEqual(segments(split.scriptName));
  expect(segments(pathInfo)).toEqual(segments(split.pathInfo));
  // A split that already had the right shape is kept as it is.
  const wellFormed = (split.scriptName === '' || (split.scriptName.startsWith('/') && !split.scriptName.endsWith('/'))) && (split.pathInfo === '' || split.pathInfo.startsWith('/'));
  if (wellFormed) expect([scriptName, pathInfo]).toEqual([split.scriptName, split.pathInfo]);
  // §5.2: every CGI variable is a byte string; §5.1: the variables that must never pass.
  for (const key of Object.keys(env)) {
    if (key.startsWith('tsgi.')) continue;
    expect(typeof env[key]).toBe('string');
    expect(LATIN1_RE.test(env[key] as string)).toBe(true);
  }
  for (const key of ['HTTP_PROXY', 'HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH']) expect(Object.hasOwn(env, key)).toBe(false);
  expect(env.CONTENT_TYPE === undefined || env.CONTENT_TYPE !== '').toBe(true);
  if (Object.hasOwn(env, 'CONTENT_TYPE')) expect(env.CONTENT_TYPE).toBe(input.CONTENT_TYPE);
  const length = expectedContentLength(input.CONTENT_LENGTH);
  expect(length.ok).toBe(true);
  expect(env.CONTENT_LENGTH).toBe((length as { value: string | undefined }).value);
  expect(Object.hasOwn(env, 'CONTENT_LENGTH')).toBe(env.CONTENT_LENGTH !== undefined);
  // Everything else passes through untouched, whatever its name; the defaults fill only what is missing.
  const changed = new Set(['SCRIPT_NAME', 'PATH_INFO', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'HTTP_PROXY', 'HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH']);
  for (const key of Object.keys(input)) if (!changed.has(key)) expect(env[key]).toBe(input[key]);
  if (input.REQUEST_METHOD === undefined) expect(env.REQUEST_METHOD).toBe('GET');
  if (input.QUERY_STRING === undefined) expect(env.QUERY_STRING).toBe('');
  // §5.3: the tsgi keys.
  const https = ['on', '1', 'yes'].includes((input.HTTPS ?? '').toLowerCase()) || (input.REQUEST_SCHEME ?? '').toLowerCase() === 'https';
  expect(env['tsgi.url_scheme']).toBe(https ? 'https' : 'http');
  if (input.SERVER_PORT === undefined) expect(env.SERVER_PORT).toBe(https ? '443' : '80');
  expect(env['tsgi.version']).toEqual([1, 0]);
  expect(typeof (env['tsgi.input'] as { read?: unknown }).read).toBe('function');
  expect(env['tsgi.errors']).toBe(errors);
  for (const key of ['tsgi.input_terminated', 'tsgi.multithread', 'tsgi.multiprocess', 'tsgi.run_once']) expect(typeof env[key]).toBe('boolean');
  expect(env['tsgi.signal']).toBeInstanceOf(AbortSignal);
}

function copyOf(variables: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(variables)) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

describe('fuzz: environ translator', () => {
  it(
    'createEnviron: any variable set gives an environ obeying SPEC §5, or a RequestError 400 for a bad CONTENT_LENGTH',
    async () => {
      await check(
        TARGET,
        'createEnviron',
        fc.property(variablesArb, fc.boolean(), (input, owns) => {
          const variables = copyOf(input);
          const outcome = timed('createEnviron', () => typedOutcome(() => createEnviron({ variables, errors, ownsVariables: owns }), [RequestError], AREA));
          const length = expectedContentLength(input.CONTENT_LENGTH);
          expect(outcome.ok).toBe(length.ok);
          if (!outcome.ok) {
            expect((outcome.error as RequestError).status).toBe(400);
            expect(outcome.error.message).toMatch(/^environ: bad CONTENT_LENGTH/);
            return;
          }
          // Without a copy (ownsVariables) the object itself becomes the environ.
          if (owns) expect(outcome.value).toBe(variables);
          else expect(variables).toEqual(input);
          checkEnviron(outcome.value, input, { scriptName: input.SCRIPT_NAME ?? '', pathInfo: input.PATH_INFO ?? '' });
        }),
        0.25,
      );
    },
    testTimeout(0.25),
  );

  it(
    'applyMount + createEnviron: the request path under the mount becomes SCRIPT_NAME = mount, PATH_INFO = the rest',
    async () => {
      await check(
        TARGET,
        'mount',
        fc.property(variablesArb, mountArb, (input, mount) => {
          const variables = copyOf(input);
          const prefix = mount === undefined ? undefined : normalizeMount(mount);
          if (mount !== undefined) timed('applyMount', () => applyMount(variables, mount));
          const outcome = typedOutcome(() => createEnviron({ variables, errors, ownsVariables: true }), [RequestError], AREA);
          if (!outcome.ok) return;
          const env = outcome.value;
          const path = mountPathOf(input);
          if (prefix !== undefined && path !== undefined && (prefix === '' || path === prefix || path.startsWith(`${prefix}/`))) {
            // Under the mount: exactly the mount and the rest of the decoded request path.
            expect(env.SCRIPT_NAME).toBe(prefix);
            expect(env.PATH_INFO).toBe(path.slice(prefix.length));
            expect(env.SCRIPT_NAME + env.PATH_INFO).toBe(path);
          }
          // Whatever the mount did, the result obeys SPEC §5 for the split it was given.
          const given = { ...input, SCRIPT_NAME: (variables.SCRIPT_NAME as string | undefined) ?? input.SCRIPT_NAME, PATH_INFO: (variables.PATH_INFO as string | undefined) ?? input.PATH_INFO };
          const split = mount === undefined ? { scriptName: input.SCRIPT_NAME ?? '', pathInfo: input.PATH_INFO ?? '' } : mountSplit(input, mount);
          checkEnviron(env, given as Record<string, string>, split);
        }),
        0.25,
      );
    },
    testTimeout(0.25),
  );

  it(
    'decodeProcessEnv (CGI): any UTF-8-decoded environment gives byte strings, and PATH_INFO stays the one the web server meant',
    async () => {
      const textArb = fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 8 }),
        fc.string({ unit: fc.constantFrom('a', '/', '\ufffd', '\u00e9', '\u20ac', '%', 'E', '9', 'F'), maxLength: 10 }),
      );
      const envArb = fc.record(
        {
          SCRIPT_NAME: fc.oneof(fc.constantFrom('/s.cgi', '/cgi-bin/app.cgi', '', '/', '/app'), textArb),
          PATH_INFO: fc.oneof(textArb.map((t) => `/${t}`), fc.constantFrom('/caf\ufffd', '/\ufffd', '')),
          REQUEST_URI: fc.oneof(textArb, fc.constantFrom('/s.cgi/caf%E9?q=1', '/application/%FF', '/app/%FF%FE', '/appx/%FF', '/other/%E9', '/s.cgi/%C3%A9%FF')),
          QUERY_STRING: textArb,
          HTTP_X: textArb,
        },
        { requiredKeys: [] },
      );
      await check(
        TARGET,
        'decodeProcessEnv',
        fc.property(envArb, (env) => {
          const variables = timed('decodeProcessEnv', () => decodeProcessEnv(env));
          for (const value of Object.values(variables)) expect(LATIN1_RE.test(value)).toBe(true);
          for (const key of Object.keys(env)) {
            if (key === 'PATH_INFO') continue;
            // Each value is the UTF-8 encoding of what Node decoded.
            expect(decodeLatin1Utf8(variables[key] as string)).toBe(env[key as keyof typeof env]);
          }
          if (env.PATH_INFO !== undefined) {
            // Rebuilt or not, PATH_INFO read back as UTF-8 is what the web server put in the environment.
            expect(decodeLatin1Utf8(variables.PATH_INFO as string)).toBe(env.PATH_INFO);
          }
          const outcome = typedOutcome(() => createEnviron({ variables, errors, ownsVariables: true, runOnce: true }), [RequestError], AREA);
          expect(outcome.ok).toBe(true);
          const environ = (outcome as { value: Environ }).value;
          expect(environ.SCRIPT_NAME === '' || (environ.SCRIPT_NAME.startsWith('/') && !environ.SCRIPT_NAME.endsWith('/'))).toBe(true);
          expect(environ.PATH_INFO === '' || environ.PATH_INFO.startsWith('/')).toBe(true);
        }),
        0.15,
      );
    },
    testTimeout(0.15),
  );

  it(
    'headersToVariables: names mapped per §5.1, nothing aliased or smuggled; variablesToHeaders inverts it',
    async () => {
      const headerNameArb = fc.oneof(
        fc.string({ unit: fc.constantFrom('a', 'B', 'x', '-', '_', '.', '1', ' ', '\u00e9'), minLength: 1, maxLength: 8 }),
        fc.constantFrom('Host', 'Cookie', 'cookie', 'Proxy', 'Authorization', 'Proxy-Authorization', 'Content-Type', 'Content-Length', 'X-Forwarded-For', 'X_Forwarded_For', 'x-forwarded-for', '__proto__', 'constructor'),
      );
      await check(
        TARGET,
        'header variables',
        fc.property(fc.array(fc.tuple(headerNameArb, byteString({ maxLength: 10 })), { maxLength: 10 }), fc.boolean(), (headers, passAuthorization) => {
          const variables = headersToVariables(headers, { passAuthorization });
          const expected: Record<string, string> = {};
          for (const [name, value] of headers) {
            if (!/^[0-9A-Za-z-]+$/.test(name)) continue;
            const lower = name.toLowerCase();
            if (lower === 'proxy' || lower === 'proxy-authorization' || (lower === 'authorization' && !passAuthorization)) continue;
            const key = lower === 'content-type' ? 'CONTENT_TYPE' : lower === 'content-length' ? 'CONTENT_LENGTH' : `HTTP_${lower.toUpperCase().replace(/-/g, '_')}`;
            expected[key] = expected[key] === undefined ? value : `${expected[key]}${lower === 'cookie' ? '; ' : ', '}${value}`;
          }
          expect(variables).toEqual(expected);
          for (const key of Object.keys(variables)) {
            expect(key).toMatch(/^(HTTP_[0-9A-Z_]+|CONTENT_TYPE|CONTENT_LENGTH)$/);
            expect(['HTTP_PROXY', 'HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH', 'HTTP_PROXY_AUTHORIZATION']).not.toContain(key);
          }
          // Back to headers: one lower-case name per variable, its (joined) value.
          const back = new Map(variablesToHeaders(variables));
          expect(back.size).toBe(Object.keys(variables).length);
          for (const [key, value] of Object.entries(variables)) {
            const name = key === 'CONTENT_TYPE' ? 'content-type' : key === 'CONTENT_LENGTH' ? 'content-length' : key.slice(5).toLowerCase().replace(/_/g, '-');
            expect(back.get(name)).toBe(value);
          }
        }),
        0.1,
      );
    },
    testTimeout(0.1),
  );

  it(
    'percent-decoding: an encoded path decodes to its bytes; rawPathBelow finds the raw rest at any split',
    async () => {
      await check(
        TARGET,
        'percent-decoding',
        fc.property(requestTargetArb, fc.nat(), (target, cut) => {
          const raw = encodePath(target.path, [false], false);
          expect(percentDecodeToByteString(raw)).toBe(target.path);
          expect(LATIN1_RE.test(percentDecodeToByteString(target.uri))).toBe(true);
          const at = cut % (target.path.length + 1);
          const rest = timed('rawPathBelow', () => rawPathBelow(raw, target.path.slice(0, at), target.path.slice(at)));
          expect(rest).not.toBeNull();
          expect(raw.endsWith(rest as string)).toBe(true);
          expect(percentDecodeToByteString(rest as string)).toBe(target.path.slice(at));
          // A pathInfo the raw path does not end with is refused.
          expect(rawPathBelow(raw, target.path.slice(0, at), `${target.path.slice(at)}x`)).toBeNull();
        }),
        0.1,
      );
    },
    testTimeout(0.1),
  );

  it(
    'tsgi.input: never more than CONTENT_LENGTH, InputError 400 when the body is short, whatever the reads',
    async () => {
      const chunksArb = fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 });
      await check(
        TARGET,
        'input',
        fc.asyncProperty(chunksArb, fc.option(fc.nat(300), { nil: null }), fc.boolean(), fc.array(fc.option(fc.nat(50), { nil: undefined }), { minLength: 1, maxLength: 6 }), async (chunks, contentLength, terminated, reads) => {
          const total = chunks.reduce((sum, c) => sum + c.length, 0);
          let pulled = 0;
          const source = (async function* () {
            for (const chunk of chunks) {
              pulled++;
              yield chunk;
            }
          })();
          const input = createInput({ source, contentLength, terminated });
          const want = contentLength ?? (terminated ? total : 0);
          const received: Uint8Array[] = [];
          let failure: unknown = null;
          await timedAsync('tsgi.input reads', async () => {
            try {
              for (let i = 0; ; i++) {
                // Every round of reads ends with a read() of all that is left, so the loop always makes progress.
                const n = i % (reads.length + 1) === reads.length ? undefined : reads[i % (reads.length + 1)];
                const chunk = await input.read(n);
                if (n !== undefined) expect(chunk.length).toBeLessThanOrEqual(n);
                if (chunk.length === 0 && n !== 0) break;
                if (n === 0) expect(chunk.length).toBe(0);
                received.push(chunk);
                if (i > 2_000) throw new Error('fuzz: tsgi.input never ends');
              }
            } catch (error) {
              failure = error;
            }
          });
          const body = Buffer.concat(received);
          const all = Buffer.concat(chunks);
          if (contentLength !== null && total < contentLength) {
            expect(failure).toBeInstanceOf(InputError);
            expect((failure as InputError).status).toBe(400);
          } else {
            expect(failure).toBeNull();
            expect(body.equals(all.subarray(0, want))).toBe(true);
          }
          expect(body.length).toBeLessThanOrEqual(want);
          // Never a pull past the chunk that completed CONTENT_LENGTH (RFC 3875 §4.2).
          if (contentLength !== null && total >= contentLength) {
            let needed = 0;
            let sum = 0;
            while (sum < contentLength) sum += (chunks[needed++] as Uint8Array).length;
            expect(pulled).toBeLessThanOrEqual(needed);
          }
        }),
        0.15,
      );
    },
    testTimeout(0.15),
  );
});

/** The split createEnviron gets after applyMount(input, mount), as the oracle sees it. */
function mountSplit(input: Record<string, string>, mount: string): { scriptName: string; pathInfo: string } {
  const variables = copyOf(input);
  applyMount(variables, mount);
  return { scriptName: variables.SCRIPT_NAME ?? '', pathInfo: variables.PATH_INFO ?? '' };
}
