import { describe, expect, it } from 'vitest';
import { applyMount, normalizeMount } from '../../src/environ/mount.js';
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
});
