import { describe, expect, it } from 'vitest';
import { applyMount, applyNormalizedMount, isUnderMount, normalizeMount } from '../../src/environ/mount.js';
import { TsgiError } from '../../src/errors.js';

describe('normalizeMount: the one rule for every mount prefix', () => {
  it('"" and "/" are the root; trailing "/" goes; "?" and "#" are path bytes like any other', () => {
    expect(['', '/', '/app', '/app/', '/app//', '/a/b/', '/a?b', '/caf\u00c3\u00a9'].map((mount) => normalizeMount(mount))).toEqual([
      '',
      '',
      '/app',
      '/app',
      '/app',
      '/a/b',
      '/a?b',
      '/caf\u00c3\u00a9',
    ]);
  });

  it('a prefix that is not a path is a TsgiError naming the option', () => {
    expect(() => normalizeMount('app')).toThrow(TsgiError);
    expect(() => normalizeMount('app')).toThrow('mount: prefix must be "" or a path starting with "/" ("app")');
    expect(() => normalizeMount('app/', 'http: scriptName')).toThrow('http: scriptName must be "" or a path starting with "/" ("app/")');
  });

  it('applyMount splits the request path at the normalised prefix, on a segment boundary only', () => {
    const split = (uri: string, mount: string): [string | undefined, string | undefined] => {
      const variables = applyMount({ REQUEST_URI: uri, SCRIPT_NAME: '/x', PATH_INFO: '/y' }, mount);
      return [variables.SCRIPT_NAME, variables.PATH_INFO];
    };
    expect(split('/app/caf%C3%A9?q=1', '/app/')).toEqual(['/app', '/caf\u00c3\u00a9']);
    expect(split('/app', '/app')).toEqual(['/app', '']);
    expect(split('/application', '/app')).toEqual(['/x', '/y']);
    expect(split('/z', '/')).toEqual(['', '/z']);
    expect(() => split('/z', 'app')).toThrow(TsgiError);
  });

  it('applyNormalizedMount splits as applyMount does, for a prefix normalised once (as the servers hold it)', () => {
    const uris = ['/app/caf%C3%A9?q=1', '/app', '/app/', '/application', '/z', 'http://example.com/app/x?y', 'http://example.com', '*'];
    for (const mount of ['', '/', '/app', '/app/']) {
      for (const uri of uris) {
        const variables = { REQUEST_URI: uri, SCRIPT_NAME: '/x', PATH_INFO: '/y' };
        expect(applyNormalizedMount({ ...variables }, normalizeMount(mount)), `${mount} ${uri}`).toEqual(applyMount({ ...variables }, mount));
      }
    }
    expect(applyNormalizedMount({ REQUEST_URI: 'http://example.com/app/x?y' }, '/app')).toMatchObject({ SCRIPT_NAME: '/app', PATH_INFO: '/x' });
    expect(applyNormalizedMount({ REQUEST_URI: 'http://example.com' }, '')).toMatchObject({ SCRIPT_NAME: '', PATH_INFO: '/' });
    expect(applyNormalizedMount({ DOCUMENT_URI: '/app/d', SCRIPT_NAME: '/app/d' }, '/app')).toMatchObject({ SCRIPT_NAME: '/app', PATH_INFO: '/d' });
    expect(applyNormalizedMount({ SCRIPT_NAME: 'x' }, '')).toEqual({ SCRIPT_NAME: 'x' });
  });

  it('isUnderMount: the prefix itself and below it, on a segment boundary; everything under the root', () => {
    expect(['/app', '/app/', '/app/x', '/application', '/ap', '/'].map((path) => isUnderMount(path, '/app'))).toEqual([true, true, true, false, false, false]);
    expect(isUnderMount('/anything', '')).toBe(true);
  });
});
