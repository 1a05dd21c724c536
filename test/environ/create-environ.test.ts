import { describe, expect, it } from 'vitest';
import { createEnviron, createOwnedEnviron, createVariables } from '../../src/environ/create-environ.js';
import { LazyAbort } from '../../src/servers/lazy-abort.js';
import { RequestError } from '../../src/errors.js';

const errors = { write: () => {} };
const make = (variables: Record<string, string | undefined>, extra: Partial<Parameters<typeof createEnviron>[0]> = {}) =>
  createEnviron({ variables, errors, ...extra });

describe('createEnviron', () => {
  it('copies CGI variables exactly, as byte strings', () => {
    const env = make({
      REQUEST_METHOD: 'POST',
      SCRIPT_NAME: '/app',
      PATH_INFO: '/caf\u00c3\u00a9',
      QUERY_STRING: 'a=%C3%A9',
      SERVER_NAME: 'example.test',
      SERVER_PORT: '8080',
      SERVER_PROTOCOL: 'HTTP/1.1',
      HTTP_X_RAW: '\u00ff\u0000\u0080',
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: '12',
      UNDEFINED_ONE: undefined,
    });
    expect(env.REQUEST_METHOD).toBe('POST');
    expect(env.SCRIPT_NAME).toBe('/app');
    expect(env.PATH_INFO).toBe('/caf\u00c3\u00a9');
    expect(env.QUERY_STRING).toBe('a=%C3%A9');
    expect(env.HTTP_X_RAW).toBe('\u00ff\u0000\u0080');
    expect(env.CONTENT_LENGTH).toBe('12');
    expect('UNDEFINED_ONE' in env).toBe(false);
  });

  it('sets the tsgi keys', () => {
    const signal = new AbortController().signal;
    const env = make({}, { signal, multithread: true, multiprocess: false, runOnce: false, inputTerminated: true });
    expect(env['tsgi.version']).toEqual([1, 0]);
    expect(env['tsgi.url_scheme']).toBe('http');
    expect(env['tsgi.signal']).toBe(signal);
    expect(env['tsgi.errors']).toBe(errors);
    expect(env['tsgi.multithread']).toBe(true);
    expect(env['tsgi.multiprocess']).toBe(false);
    expect(env['tsgi.run_once']).toBe(false);
    expect(env['tsgi.input_terminated']).toBe(true);
    expect(typeof env['tsgi.input'].read).toBe('function');
  });

  it('fills defaults: method GET, QUERY_STRING/SCRIPT_NAME/PATH_INFO "", SERVER_NAME from Host, port by scheme', () => {
    const env = make({ HTTP_HOST: 'h.test:81' });
    expect(env.REQUEST_METHOD).toBe('GET');
    expect(env.QUERY_STRING).toBe('');
    expect(env.SCRIPT_NAME).toBe('');
    expect(env.PATH_INFO).toBe('');
    expect(env.SERVER_NAME).toBe('h.test');
    expect(env.SERVER_PORT).toBe('80');
    expect(make({ HTTPS: 'on' }).SERVER_PORT).toBe('443');
  });

  it('httpoxy and §4.1.18: HTTP_PROXY, HTTP_CONTENT_TYPE, HTTP_CONTENT_LENGTH never pass', () => {
    const env = make({ HTTP_PROXY: 'evil', HTTP_CONTENT_TYPE: 'x', HTTP_CONTENT_LENGTH: '3' });
    expect(env.HTTP_PROXY).toBeUndefined();
    expect(env.HTTP_CONTENT_TYPE).toBeUndefined();
    expect(env.HTTP_CONTENT_LENGTH).toBeUndefined();
  });

  it('C6: empty CONTENT_LENGTH and CONTENT_TYPE mean absent', () => {
    const env = make({ CONTENT_LENGTH: '', CONTENT_TYPE: '' });
    expect('CONTENT_LENGTH' in env).toBe(false);
    expect('CONTENT_TYPE' in env).toBe(false);
  });

  it.each(['-1', '+5', '5,5', '0x10', '1e3', ' ', 'abc', '9007199254740992', '99999999999999999999999'])(
    'A9/T34: CONTENT_LENGTH %j -> RequestError 400',
    (length) => {
      let caught: unknown;
      try {
        make({ CONTENT_LENGTH: length });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(RequestError);
      expect((caught as RequestError).status).toBe(400);
      expect((caught as Error).message).toMatch(/^environ: bad CONTENT_LENGTH/);
    },
  );

  it('normalises CONTENT_LENGTH with leading zeros', () => {
    expect(make({ CONTENT_LENGTH: '007' }).CONTENT_LENGTH).toBe('7');
  });

  it('F7/T35: SCRIPT_NAME never "/" or ending in "/", PATH_INFO "" or starting with "/"', () => {
    const root = make({ SCRIPT_NAME: '/', PATH_INFO: '' });
    expect([root.SCRIPT_NAME, root.PATH_INFO]).toEqual(['', '/']);
    const trailing = make({ SCRIPT_NAME: '/app/', PATH_INFO: 'x' });
    expect([trailing.SCRIPT_NAME, trailing.PATH_INFO]).toEqual(['/app', '/x']);
    const relative = make({ SCRIPT_NAME: '/app', PATH_INFO: 'x\ny' });
    expect(relative.PATH_INFO).toBe('/x\ny');
  });

  it('A7: url_scheme from HTTPS on/1/yes or REQUEST_SCHEME, or the transport', () => {
    expect(make({ HTTPS: 'on' })['tsgi.url_scheme']).toBe('https');
    expect(make({ HTTPS: 'off' })['tsgi.url_scheme']).toBe('http');
    expect(make({ REQUEST_SCHEME: 'https' })['tsgi.url_scheme']).toBe('https');
    expect(make({}, { urlScheme: 'https' })['tsgi.url_scheme']).toBe('https');
  });

  // Found by fuzzing (test/fuzz/environ.test.ts): "//" became SCRIPT_NAME "/", "/app//" became "/app/", and a
  // relative "app" stayed relative, all against SPEC §5.1.
  it('SCRIPT_NAME with several trailing slashes, or without a leading one, gets the SPEC shape', () => {
    const pairs = (sn: string, pi: string) => {
      const env = make({ SCRIPT_NAME: sn, PATH_INFO: pi });
      return [env.SCRIPT_NAME, env.PATH_INFO];
    };
    expect(pairs('//', '')).toEqual(['', '//']);
    expect(pairs('/app//', 'x')).toEqual(['/app', '//x']);
    expect(pairs('/app//', '/x')).toEqual(['/app', '//x']);
    expect(pairs('app', '/x')).toEqual(['/app', '/x']);
    expect(pairs('app/', '')).toEqual(['/app', '/']);
  });

  // Found by fuzzing: String.trim() let "\v5", "5\n" and NBSP-padded lengths through as 5.
  it.each(['\v5', '5\n', '\r5', '\u00a05', '\ufeff5', '\u20035'])('CONTENT_LENGTH %j -> RequestError 400', (length) => {
    expect(() => make({ CONTENT_LENGTH: length })).toThrow(RequestError);
  });

  it('CONTENT_LENGTH with spaces or tabs around the digits is read as the digits', () => {
    expect(make({ CONTENT_LENGTH: ' 5\t' }).CONTENT_LENGTH).toBe('5');
  });

  // Found by fuzzing: the copy dropped a variable named "__proto__".
  it('copies variables named like Object.prototype members', () => {
    const variables: Record<string, string> = {};
    Object.defineProperty(variables, '__proto__', { value: 'a', enumerable: true, writable: true, configurable: true });
    const env = make(variables);
    expect(Object.getOwnPropertyDescriptor(env, '__proto__')?.value).toBe('a');
  });
  describe('createVariables: an object born with the slot of a lazy tsgi.signal', () => {
    it('is an empty plain object; the environ made of it keeps the same keys as one made of {}', () => {
      const variables = createVariables();
      expect(Object.getPrototypeOf(variables)).toBe(Object.prototype);
      expect(Reflect.ownKeys(variables)).toEqual([]);
      variables.REQUEST_METHOD = 'GET';
      const abort = new LazyAbort();
      const env = createEnviron({ variables, errors, signal: abort, ownsVariables: true });
      const plain = createEnviron({ variables: { REQUEST_METHOD: 'GET' }, errors, signal: new LazyAbort(), ownsVariables: true });
      expect(env).toBe(variables);
      expect(Reflect.ownKeys(env)).toEqual(Reflect.ownKeys(plain));
      expect(Object.keys(env)).toContain('tsgi.signal');
    });

    it('is a {} to anything a program can see (constructor Object, JSON "{}", same keys as a literal)', () => {
      const variables = createVariables();
      expect(variables.constructor).toBe(Object);
      expect(JSON.stringify(variables)).toBe('{}');
      expect(variables).toEqual({});
      expect(Object.prototype.toString.call(variables)).toBe('[object Object]');
    });

    it('createOwnedEnviron makes the same environ as createEnviron with ownsVariables, from shared settings', () => {
      const settings = { errors, multithread: true, multiprocess: false, runOnce: false, forwarded: null };
      const source = { REQUEST_METHOD: 'POST', CONTENT_LENGTH: ' 5', HTTP_HOST: 'h:81', SCRIPT_NAME: '/a/', PATH_INFO: 'b' };
      const owned = createOwnedEnviron({ ...source }, null, true, undefined, undefined, settings);
      const made = createEnviron({ variables: { ...source }, inputTerminated: true, ownsVariables: true, ...settings });
      const strip = (env: object) => Object.fromEntries(Object.entries(env).filter(([key]) => key !== 'tsgi.input' && key !== 'tsgi.signal'));
      expect(strip(owned)).toEqual(strip(made));
      expect(Object.keys(owned)).toEqual(Object.keys(made));
      expect(owned.CONTENT_LENGTH).toBe('5');
      expect(owned['tsgi.multithread']).toBe(true);
      expect(() => createOwnedEnviron({ CONTENT_LENGTH: '-1' }, null, false, undefined, undefined, settings)).toThrow(/CONTENT_LENGTH/);
    });

    it('tsgi.signal is created when read, from the LazyAbort of its own request, and fires with it', () => {
      const first = new LazyAbort();
      const second = new LazyAbort();
      const a = createEnviron({ variables: createVariables(), errors, signal: first, ownsVariables: true });
      const b = createEnviron({ variables: createVariables(), errors, signal: second, ownsVariables: true });
      first.abort(new Error('gone'));
      expect(a['tsgi.signal'].aborted).toBe(true);
      expect(b['tsgi.signal'].aborted).toBe(false);
      second.abort(new Error('later'));
      expect(b['tsgi.signal'].aborted).toBe(true);
      expect(b['tsgi.signal']).toBe(b['tsgi.signal']);
    });

    it('with a signal that is not lazy, the slot stays empty and the signal is a plain value', () => {
      const signal = new AbortController().signal;
      const env = createEnviron({ variables: createVariables(), errors, signal, ownsVariables: true });
      expect(Object.getOwnPropertyDescriptor(env, 'tsgi.signal')?.value).toBe(signal);
    });

    it('tsgi.version is [1, 0], frozen', () => {
      const env = make({});
      expect(env['tsgi.version']).toEqual([1, 0]);
      expect(Object.isFrozen(env['tsgi.version'])).toBe(true);
    });
  });
});
