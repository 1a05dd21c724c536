import { describe, expect, it } from 'vitest';
import { LintError } from '../../src/errors.js';
import { checkEnviron, checkResponseHeaders, checkStatusLine, validator, type LintWarning } from '../../src/middleware/validator.js';
import type { App, Body, Chunk, Environ, Header, InputStream, StartResponse } from '../../src/types.js';
import { buildEnviron, createTestInput, runApp } from './helpers.js';
import { HOP_BY_HOP_HEADERS } from '../../src/response/hop-by-hop.js';

const TEXT: Header[] = [['Content-Type', 'text/plain']];

/** A conforming app: reads the body, logs a line, answers with the body length. */
const goodApp: App = async (environ, startResponse) => {
  const body = await environ['tsgi.input'].read();
  environ['tsgi.errors'].write('read the body\n');
  const text = `got ${body.length}`;
  startResponse('200 OK', [...TEXT, ['Content-Length', String(text.length)]]);
  return [text];
};

/** Runs `app` behind the validator and returns the LintError it produced (or undefined). */
async function lintError(app: App, environ: Environ = buildEnviron()): Promise<LintError | undefined> {
  const result = await runApp(validator()(app), environ);
  if (result.error === undefined) return undefined;
  expect(result.error).toBeInstanceOf(LintError);
  return result.error as LintError;
}

async function expectRule(rule: string, app: App, environ?: Environ, message?: RegExp): Promise<void> {
  const error = await lintError(app, environ);
  expect(error?.rule, `expected a LintError for ${rule}`).toBe(rule);
  expect(error?.message.startsWith(`tsgi.lint: ${rule} `)).toBe(true);
  if (message) expect(error?.message).toMatch(message);
}

function respond(status: string, headers: Header[], body: Chunk[] = []): App {
  return (_environ, startResponse) => {
    startResponse(status, headers);
    return body;
  };
}

describe('validator: conforming traffic passes', () => {
  it('lets a conforming app and environ through unchanged', async () => {
    const result = await runApp(validator()(goodApp), buildEnviron('/', { REQUEST_METHOD: 'POST' }, 'hello'));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('got 5');
    expect(result.closeCalls).toBe(1);
    expect(result.errors).toBe('read the body\n');
  });

  it('passes 204 without Content-Type and an async body with write()', async () => {
    expect(await lintError(respond('204 No Content', []))).toBeUndefined();
    const streaming: App = async (_environ, startResponse) => {
      const write = startResponse('200 OK', [...TEXT, ['Content-Length', '6']]);
      await write('abc');
      return (async function* () {
        yield new Uint8Array([0x64, 0x65]);
        yield 'f';
      })();
    };
    const result = await runApp(validator()(streaming));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('abcdef');
  });

  it('allows replacing the head with excInfo before it was sent', async () => {
    const app: App = (_environ, startResponse) => {
      startResponse('200 OK', TEXT);
      startResponse('500 Internal Server Error', TEXT, new Error('x'));
      return ['oops'];
    };
    const result = await runApp(validator()(app));
    expect(result.error).toBeUndefined();
    expect(result.status).toBe('500 Internal Server Error');
  });

  it('lets the app\'s own errors through unchanged', async () => {
    const failure = new Error('app failure');
    const result = await runApp(validator()(() => Promise.reject(failure)));
    expect(result.error).toBe(failure);
  });
});

describe('validator: the environ (F1-F8)', () => {
  it('F1: environ must be a plain mutable object', async () => {
    await expectRule('F1', goodApp, new Map() as unknown as Environ, /plain object \("Map"\)/);
    await expectRule('F1', goodApp, Object.freeze(buildEnviron()));
    const withSymbol = buildEnviron();
    (withSymbol as unknown as Record<symbol, unknown>)[Symbol('x')] = 1;
    await expectRule('F1', goodApp, withSymbol);
  });

  it('F2: required keys are present', async () => {
    const environ = buildEnviron();
    delete (environ as Partial<Environ>).QUERY_STRING;
    await expectRule('F2', goodApp, environ, /\("QUERY_STRING"\)/);
    await expectRule('F2', goodApp, buildEnviron('/', { 'tsgi.run_once': 'no' }), /tsgi\.run_once must be a boolean/);
    const noSignal = buildEnviron();
    delete (noSignal as Partial<Environ>)['tsgi.signal'];
    await expectRule('F2', goodApp, noSignal);
  });

  it('F3: no HTTP_CONTENT_TYPE or HTTP_CONTENT_LENGTH', async () => {
    await expectRule('F3', goodApp, buildEnviron('/', { HTTP_CONTENT_LENGTH: '5' }), /HTTP_CONTENT_LENGTH/);
  });

  it('F4: CGI values are byte strings', async () => {
    await expectRule('F4', goodApp, buildEnviron('/', { HTTP_X_N: 5 }), /HTTP_X_N must hold a string/);
    await expectRule('F4', goodApp, buildEnviron('/', { PATH_INFO: '/日本' }), /above U\+00FF/);
  });

  it('F5: version and url_scheme', async () => {
    await expectRule('F5', goodApp, buildEnviron('/', { 'tsgi.version': [1, 1] }));
    await expectRule('F5', goodApp, buildEnviron('/', { 'tsgi.url_scheme': 'HTTPS' }), /\("HTTPS"\)/);
  });

  it('F6: REQUEST_METHOD is a token', async () => {
    await expectRule('F6', goodApp, buildEnviron('/', { REQUEST_METHOD: 'GET /' }));
  });

  it('F7: SCRIPT_NAME and PATH_INFO shapes', async () => {
    await expectRule('F7', goodApp, buildEnviron('/', { SCRIPT_NAME: '/' }), /SCRIPT_NAME/);
    await expectRule('F7', goodApp, buildEnviron('/', { SCRIPT_NAME: 'app' }), /SCRIPT_NAME/);
    await expectRule('F7', goodApp, buildEnviron('/', { PATH_INFO: 'x' }), /PATH_INFO/);
  });

  it('F8: CONTENT_LENGTH, SERVER_PORT and SERVER_PROTOCOL formats', async () => {
    await expectRule('F8', goodApp, buildEnviron('/', { CONTENT_LENGTH: '+5' }), /CONTENT_LENGTH.*\("\+5"\)/);
    await expectRule('F8', goodApp, buildEnviron('/', { CONTENT_LENGTH: '' }));
    await expectRule('F8', goodApp, buildEnviron('/', { SERVER_PORT: 'http' }));
    await expectRule('F8', goodApp, buildEnviron('/', { SERVER_PROTOCOL: 'HTTP/1.1.1' }));
  });
});

describe('validator: streams (F9-F10)', () => {
  it('F9: the app may not close the input, and reads take a byte count', async () => {
    await expectRule('F9', (environ) => {
      (environ['tsgi.input'] as InputStream & { close(): void }).close();
      return [];
    });
    await expectRule('F9', async (environ) => {
      await environ['tsgi.input'].read(-1);
      return [];
    });
  });

  it('F9: returning the input as the body (an echo) is not closing it', async () => {
    const echo: App = (environ, startResponse) => {
      startResponse('200 OK', [['Content-Type', 'application/octet-stream'], ['Content-Length', environ.CONTENT_LENGTH ?? '0']]);
      return environ['tsgi.input'];
    };
    const result = await runApp(validator()(echo), buildEnviron('/', { REQUEST_METHOD: 'POST' }, 'echo me'));
    expect(result.error).toBeUndefined();
    expect(result.text).toBe('echo me');
  });

  it('F9: the server never yields past CONTENT_LENGTH or non-bytes', async () => {
    const reader: App = async (environ, startResponse) => {
      for await (const chunk of environ['tsgi.input']) void chunk;
      startResponse('200 OK', TEXT);
      return [];
    };
    const leaky = buildEnviron('/', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: '3', 'tsgi.input': createTestInput(Buffer.from('abcdef')) });
    await expectRule('F9', reader, leaky, /more than CONTENT_LENGTH \(3\)/);
    const noLength = buildEnviron('/', { 'tsgi.input': createTestInput(Buffer.from('x')) });
    await expectRule('F9', reader, noLength);
    const strings = { read: async () => 'text', async *[Symbol.asyncIterator]() {} } as unknown as InputStream;
    await expectRule('F9', goodApp, buildEnviron('/', { 'tsgi.input': strings }), /must produce Uint8Array \("string"\)/);
  });

  it('F10: errors.write takes a string and may not be closed', async () => {
    await expectRule('F10', (environ) => {
      environ['tsgi.errors'].write(new Uint8Array(1) as unknown as string);
      return [];
    });
    await expectRule('F10', (environ) => {
      (environ['tsgi.errors'] as unknown as { close(): void }).close();
      return [];
    });
    await expectRule('F10', goodApp, buildEnviron('/', { 'tsgi.errors': { write: 'nope' } }));
  });
});

describe('validator: startResponse (F11-F17)', () => {
  it('F11: two or three arguments', async () => {
    await expectRule('F11', (_environ, startResponse) => {
      (startResponse as unknown as (status: string) => void)('200 OK');
      return [];
    });
  });

  it('F12: the status line', async () => {
    await expectRule('F12', respond('200', TEXT.concat()), undefined, /3 digits/);
    await expectRule('F12', respond('99 Low', TEXT));
    await expectRule('F12', respond('200 OK\r\nX: 1', TEXT), undefined, /control character/);
    await expectRule('F12', respond(200 as unknown as string, TEXT), undefined, /must be a string \("number"\)/);
  });

  it('F13: headers are [name, value] string pairs with safe values', async () => {
    await expectRule('F13', respond('200 OK', { 'Content-Type': 'text/plain' } as unknown as Header[]));
    await expectRule('F13', respond('200 OK', [...TEXT, ['X-A', 1 as unknown as string]]));
    await expectRule('F13', respond('200 OK', [...TEXT, ['Bad Name', 'x']]), undefined, /not be|token/);
    await expectRule('F13', respond('200 OK', [...TEXT, ['Status', '200']]));
    await expectRule('F13', respond('200 OK', [...TEXT, ['X-A', 'a\r\nSet-Cookie: x=1']]), undefined, /control character \(X-A\)/);
    await expectRule('F13', respond('200 OK', [...TEXT, ['Content-Length', '1'], ['Content-Length', '1']], ['x']));
  });

  it('F14: no hop-by-hop headers, but Transfer-Encoding: chunked (SPEC 3: no computed Content-Length)', async () => {
    await expectRule('F14', respond('200 OK', [...TEXT, ['Transfer-Encoding', 'gzip']]), undefined, /\("Transfer-Encoding"\)/);
    await expectRule('F14', respond('200 OK', [...TEXT, ['Transfer-Encoding', 'gzip, chunked']]), undefined, /\("Transfer-Encoding"\)/);
    await expectRule('F14', respond('200 OK', [...TEXT, ['connection', 'close']]));
    expect(await lintError(respond('200 OK', [...TEXT, ['Transfer-Encoding', 'chunked']], ['x']))).toBeUndefined();
  });

  it('F14 refuses every field the servers drop (response/hop-by-hop.ts), in any case, and only those', async () => {
    for (const name of [...HOP_BY_HOP_HEADERS].filter((field) => field !== 'transfer-encoding')) {
      await expectRule('F14', respond('200 OK', [...TEXT, [name.toUpperCase(), 'x']]), undefined, new RegExp(`\\("${name.toUpperCase()}"\\)`));
    }
    expect(await lintError(respond('200 OK', [...TEXT, ['Proxy-Status', 'tsgi'], ['Trailer-X', 'y']], ['x']))).toBeUndefined();
  });

  it('F15: Content-Type required, and forbidden with 1xx/204/304 like Content-Length', async () => {
    await expectRule('F15', respond('200 OK', []), undefined, /required/);
    await expectRule('F15', respond('304 Not Modified', TEXT));
    await expectRule('F15', respond('204 No Content', [['Content-Length', '0']]));
    // A redirect or a declared-empty answer without Content-Type only warns (frameworks send them so).
    const warnings: string[] = [];
    const lenient = validator({ onWarning: (warning) => void warnings.push(warning.rule) });
    const redirect = await runApp(lenient(respond('302 Found', [['Location', '/']])), buildEnviron());
    const empty = await runApp(lenient(respond('200 OK', [['Content-Length', '0']])), buildEnviron());
    expect([redirect.error, empty.error]).toEqual([undefined, undefined]);
    expect(warnings).toEqual(['F15', 'F15']);
  });

  it('F23: a 200 that carries Location warns (Apache CGI and mod_fcgid turn it into a redirect); 201 and 3xx do not', async () => {
    const warnings: LintWarning[] = [];
    const lenient = validator({ onWarning: (warning) => void warnings.push(warning) });
    const ok = await runApp(lenient(respond('200 OK', [...TEXT, ['location', '/elsewhere']], ['body'])), buildEnviron());
    expect(ok.error).toBeUndefined();
    expect(ok.text).toBe('body');
    expect(warnings).toEqual([{ rule: 'F23', message: expect.stringContaining('200 response carries Location') as unknown as string, value: '/elsewhere' }]);
    warnings.length = 0;
    for (const status of ['201 Created', '302 Found', '303 See Other']) {
      expect((await runApp(lenient(respond(status, [...TEXT, ['Location', '/new']], ['x'])), buildEnviron())).error).toBeUndefined();
    }
    expect(warnings).toEqual([]);
    // By default the warning goes to tsgi.errors; strict makes it the request's LintError.
    const logged = await runApp(validator()(respond('200 OK', [...TEXT, ['Location', 'http://example.org/']], ['x'])), buildEnviron());
    expect(logged.errors).toMatch(/^tsgi\.lint: warning F23 a 200 response carries Location .*\("http:\/\/example\.org\/"\)\n$/);
    const strict = await runApp(validator({ strict: true })(respond('200 OK', [...TEXT, ['Location', '/x']], ['x'])), buildEnviron());
    expect((strict.error as LintError | undefined)?.rule).toBe('F23');
    // The standalone check warns the same way.
    const seen: string[] = [];
    checkResponseHeaders([...TEXT, ['Location', '/x']], 200, (warning) => void seen.push(warning.rule));
    checkResponseHeaders([...TEXT, ['Location', '/x']], 201, (warning) => void seen.push(warning.rule));
    expect(seen).toEqual(['F23']);
  });

  it('F16: a second call needs excInfo', async () => {
    await expectRule('F16', (_environ, startResponse) => {
      startResponse('200 OK', TEXT);
      startResponse('404 Not Found', TEXT);
      return [];
    });
  });

  it('F16: after the head was sent, the server must re-throw excInfo', async () => {
    const failure = new Error('late');
    const app: App = async (_environ, startResponse) => {
      const write = startResponse('200 OK', TEXT);
      await write('sent');
      startResponse('500 Internal Server Error', TEXT, failure);
      return [];
    };
    // A conforming server re-throws excInfo itself.
    expect((await runApp(validator()(app))).error).toBe(failure);
    // A server that swallows it is caught.
    const lenient: StartResponse = () => async () => {};
    const error = await Promise.resolve(validator()(app)(buildEnviron(), lenient)).catch((caught: unknown) => caught);
    expect((error as LintError).rule).toBe('F16');
  });

  it('F17: write takes one chunk, returns a promise, and not after close', async () => {
    await expectRule('F17', async (_environ, startResponse) => {
      await startResponse('200 OK', TEXT)(42 as unknown as string);
      return [];
    });
    let late: ((chunk: Chunk) => Promise<void>) | undefined;
    const result = await runApp(
      validator()((_environ, startResponse) => {
        late = startResponse('200 OK', TEXT);
        return [];
      }),
    );
    expect(result.error).toBeUndefined();
    expect(() => late?.('late')).toThrow(/F17 write called after the body was closed/);
    const syncWrite: StartResponse = () => (() => undefined) as unknown as ReturnType<StartResponse>;
    const writer: App = async (_environ, startResponse) => {
      await startResponse('200 OK', TEXT)('x');
      return [];
    };
    const error = await Promise.resolve(validator()(writer)(buildEnviron(), syncWrite)).catch((caught: unknown) => caught);
    expect((error as LintError).rule).toBe('F17');
  });
});

describe('validator: the body (F18-F21)', () => {
  it('F18: an iterable, not a string, bytes or nothing, yielding only chunks', async () => {
    await expectRule('F18', (_environ, startResponse) => {
      startResponse('200 OK', TEXT);
      return 'hello' as unknown as Body;
    });
    await expectRule('F18', (_environ, startResponse) => {
      startResponse('200 OK', TEXT);
      return null as unknown as Body;
    });
    await expectRule('F18', respond('200 OK', TEXT, [42 as unknown as Chunk]), undefined, /\("number"\)/);
  });

  it('F19: startResponse before the first chunk and before the end', async () => {
    await expectRule('F19', () => ['early']);
    await expectRule('F19', () => []);
  });

  it('F20: the server calls close() once and never next() after it', async () => {
    const body = validator()(respond('200 OK', TEXT, ['a', 'b']))(buildEnviron(), () => async () => {}) as Promise<Body>;
    const wrapped = (await body) as Iterable<Chunk> & { close(): void };
    const iterator = wrapped[Symbol.iterator]();
    expect(iterator.next()).toEqual({ done: false, value: 'a' });
    wrapped.close();
    expect(() => iterator.next()).toThrow(/F20 next\(\) called on the body after close\(\)/);
    expect(() => wrapped.close()).toThrow(/F20 body.close\(\) called more than once/);
  });

  it('F20: the app\'s close() runs exactly once through the wrapper', async () => {
    let closed = 0;
    const body = Object.assign(['x'] as Chunk[], { close: () => void closed++ });
    const result = await runApp(validator()(respond('200 OK', TEXT, body)));
    expect(result.error).toBeUndefined();
    expect(closed).toBe(1);
  });

  it('F21: bytes match Content-Length', async () => {
    await expectRule('F21', respond('200 OK', [...TEXT, ['Content-Length', '3']], ['ab']), undefined, /shorter .*\(2\)/);
    await expectRule('F21', respond('200 OK', [...TEXT, ['Content-Length', '3']], ['ab', 'cd']), undefined, /longer .*\(4\)/);
    // UTF-8 bytes count, not chars.
    expect(await lintError(respond('200 OK', [...TEXT, ['Content-Length', '2']], ['é']))).toBeUndefined();
  });

  it('F21: a HEAD body is empty, keeping the declared length', async () => {
    const head = (): Environ => buildEnviron('/', { REQUEST_METHOD: 'HEAD' });
    await expectRule('F21', respond('200 OK', TEXT, ['body']), head());
    expect(await lintError(respond('200 OK', [...TEXT, ['Content-Length', '4']], []), head())).toBeUndefined();
  });
});

describe('validator: failures and warnings (F22)', () => {
  it('names the rule and the bad value in a typed error', async () => {
    const error = await lintError(respond('200 OK', [...TEXT, ['Keep-Alive', 'timeout=5']]));
    expect(error).toBeInstanceOf(LintError);
    expect(error?.rule).toBe('F14');
    expect(error?.value).toBe('Keep-Alive');
    expect(error?.message).toBe('tsgi.lint: F14 hop-by-hop header is not allowed ("Keep-Alive")');
    expect(error?.status).toBe(500);
  });

  it('reports soft rules as warnings without failing', async () => {
    const warnings: LintWarning[] = [];
    const app = validator({ onWarning: (warning) => warnings.push(warning) })(respond('200 ', [['Content-Type', ' text/plain']], ['x']));
    const result = await runApp(app, buildEnviron('/', { REQUEST_METHOD: 'get' }));
    expect(result.error).toBeUndefined();
    expect(warnings.map((warning) => warning.rule)).toEqual(['F6', 'F12', 'F13']);
  });

  it('writes warnings to tsgi.errors by default, and strict turns them into errors', async () => {
    const result = await runApp(validator()(respond('200 ', TEXT, ['x'])));
    expect(result.errors).toBe('tsgi.lint: warning F12 status has no reason phrase ("200 ")\n');
    const strict = await runApp(validator({ strict: true })(respond('200 ', TEXT, ['x'])));
    expect((strict.error as LintError).rule).toBe('F12');
  });
});

describe('validator: the checks on their own', () => {
  it('checkEnviron checks a server-built environ without an app', () => {
    expect(() => checkEnviron(buildEnviron())).not.toThrow();
    expect(() => checkEnviron(buildEnviron('/', { SERVER_PORT: '' }))).toThrow(/^tsgi\.lint: F8 /);
  });

  it('checkStatusLine and checkResponseHeaders return what they parsed', () => {
    expect(checkStatusLine('404 Not Found')).toBe(404);
    expect(checkResponseHeaders([['Content-Type', 'text/plain'], ['Content-Length', '12']], 200)).toBe(12);
    expect(checkResponseHeaders([['Content-Type', 'text/plain']], 200)).toBeNull();
  });
});
