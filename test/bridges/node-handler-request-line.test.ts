import { describe, expect, it } from 'vitest';
import { buildUrl, plainUrl } from '../../src/bridges/node-handler/request-line.js';
import type { Environ } from '../../src/types.js';

function environ(scriptName: string, pathInfo: string, query: string, requestUri: string | undefined): Environ {
  return { SCRIPT_NAME: scriptName, PATH_INFO: pathInfo, QUERY_STRING: query, REQUEST_URI: requestUri } as unknown as Environ;
}

describe('plainUrl (the common request\'s req.url, without building it)', () => {
  it('is REQUEST_URI itself for an unmounted request whose path is PATH_INFO as it is', () => {
    expect(plainUrl(environ('', '/', '', '/'))).toBe('/');
    expect(plainUrl(environ('', '/users/7', 'a=1&b', '/users/7?a=1&b'))).toBe('/users/7?a=1&b');
  });

  it('leaves every other request to buildUrl (null)', () => {
    expect(plainUrl(environ('/app', '/x', '', '/app/x'))).toBeNull();
    expect(plainUrl(environ('', '/a b', '', '/a%20b'))).toBeNull();
    expect(plainUrl(environ('', '/a%41', '', '/a%41'))).toBeNull();
    expect(plainUrl(environ('', '/x', '', '/x?'))).toBeNull();
    expect(plainUrl(environ('', '/x', 'q=1', '/x'))).toBeNull();
    expect(plainUrl(environ('', '/x', 'q=1', '/x?q=2'))).toBeNull();
    expect(plainUrl(environ('', '/x', '', undefined))).toBeNull();
    expect(plainUrl(environ('', '', '', '/'))).toBeNull();
    expect(plainUrl(environ('', 'x', '', 'x'))).toBeNull();
  });

  it('agrees with buildUrl wherever it answers, over generated requests', () => {
    const parts = ['', '/', 'a', '%', '%41', '%2F', '?', '&', ' ', 'é', '=', '/b', '%3F', '#'];
    let answered = 0;
    for (let i = 0; i < 20000; i++) {
      const pick = (n: number): string => Array.from({ length: n }, (_, k) => parts[(i * 7 + k * 13 + ((i >> k) & 5)) % parts.length]).join('');
      const path = `/${pick(1 + (i % 4))}`;
      const query = i % 3 === 0 ? '' : pick(i % 3);
      const uri = i % 5 === 0 ? path + (query ? `?${query}` : '') : `/${pick(2 + (i % 3))}`;
      const env = environ(i % 11 === 0 ? '/m' : '', path, query, uri);
      const plain = plainUrl(env);
      if (plain === null) continue;
      answered++;
      expect(buildUrl(env, 'path-info')).toEqual({ url: plain });
    }
    expect(answered).toBeGreaterThan(500);
  });
});
