import { describe, expect, it } from 'vitest';
import { headersToVariables } from '../../src/environ/header-variables.js';

describe('headersToVariables (RFC 3875 §4.1.18)', () => {
  it('maps names, joins repeats with ", " and Cookie with "; "', () => {
    expect(
      headersToVariables([
        ['X-A', '1'],
        ['x-a', '1'],
        ['Cookie', 'a=1'],
        ['cookie', 'b=2'],
        ['User-Agent', 'ua'],
      ]),
    ).toEqual({ HTTP_X_A: '1, 1', HTTP_COOKIE: 'a=1; b=2', HTTP_USER_AGENT: 'ua' });
  });

  it('Content-Type/Length become CONTENT_*, never HTTP_CONTENT_*', () => {
    expect(headersToVariables([['Content-Type', 'text/plain'], ['Content-Length', '3']])).toEqual({
      CONTENT_TYPE: 'text/plain',
      CONTENT_LENGTH: '3',
    });
  });

  it('B8/B9/T32: drops Proxy, and names with "_" or "." that would alias "-"', () => {
    expect(headersToVariables([['Proxy', 'evil'], ['X_A', 'x'], ['X.A', 'y'], ['X-Forwarded_For', 'z']])).toEqual({});
  });

  it('B7: Authorization only with passAuthorization; Proxy-Authorization never', () => {
    const headers: Array<[string, string]> = [['Authorization', 'Basic eA=='], ['Proxy-Authorization', 'Basic eQ==']];
    expect(headersToVariables(headers)).toEqual({});
    expect(headersToVariables(headers, { passAuthorization: true })).toEqual({ HTTP_AUTHORIZATION: 'Basic eA==' });
  });
});

describe('variablesToHeaders', () => {
  it('turns HTTP_* and CONTENT_* back into lower-case header pairs and reads no other key', async () => {
    const { variablesToHeaders } = await import('../../src/environ/header-variables.js');
    const environ: Record<string, unknown> = { HTTP_X_FORWARDED_FOR: '1.2.3.4', CONTENT_TYPE: 'text/plain', CONTENT_LENGTH: '3', PATH_INFO: '/' };
    Object.defineProperty(environ, 'tsgi.signal', { enumerable: true, get: () => expect.fail('tsgi.signal was read') });
    expect(variablesToHeaders(environ)).toEqual([['x-forwarded-for', '1.2.3.4'], ['content-type', 'text/plain'], ['content-length', '3']]);
  });
});
