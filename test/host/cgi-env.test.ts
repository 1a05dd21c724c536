import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RequestError, TsgiError } from '../../src/errors.js';
import {
  buildCgiEnv,
  buildCgiVariables,
  buildChildEnv,
  DEFAULT_PATH,
  readTsgiVersion,
  toChildEnvValue,
} from '../../src/host/cgi-env.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const base = { scriptName: '/cgi-bin/s.cgi' };

function refusal(run: () => unknown): RequestError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RequestError);
    return error as RequestError;
  }
  throw new Error('expected a RequestError');
}

describe('buildCgiVariables', () => {
  it('builds the meta-variables of GET /cgi-bin/s.cgi/a%20b?x=1%2B2 (B1)', () => {
    const vars = buildCgiVariables(
      {
        method: 'GET',
        url: '/a%20b?x=1%2B2',
        protocol: 'HTTP/1.0',
        headers: { Host: 'example.org:8080', 'User-Agent': 'test' },
        remoteAddress: '10.0.0.7',
        remotePort: 51234,
        localAddress: '10.0.0.1',
      },
      { ...base, serverPort: 80, documentRoot: '/srv/www/', scriptFilename: '/srv/cgi-bin/s.cgi' },
    );
    expect(vars).toEqual({
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.0',
      SERVER_SOFTWARE: `tsgi/${version}`,
      SERVER_NAME: 'example.org',
      SERVER_PORT: '80',
      SERVER_ADDR: '10.0.0.1',
      REQUEST_METHOD: 'GET',
      REQUEST_SCHEME: 'http',
      REMOTE_ADDR: '10.0.0.7',
      REMOTE_HOST: '10.0.0.7',
      REMOTE_PORT: '51234',
      SCRIPT_NAME: '/cgi-bin/s.cgi',
      SCRIPT_FILENAME: '/srv/cgi-bin/s.cgi',
      DOCUMENT_ROOT: '/srv/www/',
      PATH_INFO: '/a b',
      PATH_TRANSLATED: '/srv/www/a b',
      QUERY_STRING: 'x=1%2B2',
      REQUEST_URI: '/cgi-bin/s.cgi/a%20b?x=1%2B2',
      HTTP_HOST: 'example.org:8080',
      HTTP_USER_AGENT: 'test',
    });
  });

  it('defaults: GET, HTTP/1.1, localhost:80, 127.0.0.1, empty query, no PATH_INFO (B2)', () => {
    const vars = buildCgiVariables({}, { ...base, documentRoot: '/srv/www' });
    expect(vars).toMatchObject({
      REQUEST_METHOD: 'GET',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_NAME: 'localhost',
      SERVER_PORT: '80',
      REMOTE_ADDR: '127.0.0.1',
      QUERY_STRING: '',
      REQUEST_URI: '/cgi-bin/s.cgi',
    });
    for (const name of ['PATH_INFO', 'PATH_TRANSLATED', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'HTTPS', 'REMOTE_PORT', 'AUTH_TYPE']) {
      expect(vars).not.toHaveProperty(name);
    }
  });

  it('keeps SERVER_PORT the local port, never the Host port, also for 443 with https', () => {
    expect(buildCgiVariables({ headers: { host: 'h:9999' } }, { ...base, serverPort: 8080 }).SERVER_PORT).toBe('8080');
    const vars = buildCgiVariables({ https: true }, base);
    expect(vars).toMatchObject({ SERVER_PORT: '443', HTTPS: 'on', REQUEST_SCHEME: 'https' });
  });

  it('takes "?only=query" and "/" as targets', () => {
    expect(buildCgiVariables({ url: '?only=query' }, base)).toMatchObject({ QUERY_STRING: 'only=query' });
    expect(buildCgiVariables({ url: '?only=query' }, base)).not.toHaveProperty('PATH_INFO');
    expect(buildCgiVariables({ url: '/' }, { ...base, documentRoot: '/d' })).toMatchObject({ PATH_INFO: '/', PATH_TRANSLATED: '/d/' });
    expect(buildCgiVariables({ url: '/x?' }, base)).toMatchObject({ QUERY_STRING: '', REQUEST_URI: '/cgi-bin/s.cgi/x?' });
  });

  it('sets CONTENT_LENGTH and CONTENT_TYPE only with a body (B3)', () => {
    const headers = { 'Content-Type': 'text/plain', 'Content-Length': '5' };
    const withBody = buildCgiVariables({ method: 'POST', headers }, { ...base, contentLength: 5 });
    expect(withBody).toMatchObject({ CONTENT_LENGTH: '5', CONTENT_TYPE: 'text/plain' });
    const empty = buildCgiVariables({ method: 'POST', headers }, { ...base, contentLength: 0 });
    expect(empty.CONTENT_LENGTH).toBe('0');
    const without = buildCgiVariables({ headers }, base);
    expect(without).not.toHaveProperty('CONTENT_LENGTH');
    expect(without).not.toHaveProperty('CONTENT_TYPE');
    for (const vars of [withBody, without]) {
      expect(vars).not.toHaveProperty('HTTP_CONTENT_TYPE');
      expect(vars).not.toHaveProperty('HTTP_CONTENT_LENGTH');
    }
  });

  it('sets AUTH_TYPE and REMOTE_USER from request.auth (B5)', () => {
    expect(buildCgiVariables({ auth: { type: 'Basic', user: 'ann' } }, base)).toMatchObject({ AUTH_TYPE: 'Basic', REMOTE_USER: 'ann' });
  });

  it('joins repeated headers: "1, 1", cookies with "; " (B6), from a record or pairs', () => {
    const fromPairs = buildCgiVariables(
      {
        headers: [
          ['X-A', '1'],
          ['x-a', '1'],
          ['Cookie', 'a=1'],
          ['cookie', 'b=2'],
        ],
      },
      base,
    );
    expect(fromPairs).toMatchObject({ HTTP_X_A: '1, 1', HTTP_COOKIE: 'a=1; b=2' });
    const fromRecord = buildCgiVariables({ headers: { 'X-A': ['1', '1'], Cookie: ['a=1', 'b=2'], 'X-None': undefined } }, base);
    expect(fromRecord).toMatchObject({ HTTP_X_A: '1, 1', HTTP_COOKIE: 'a=1; b=2' });
    expect(fromRecord).not.toHaveProperty('HTTP_X_NONE');
  });

  it('exports Authorization only with passAuthorization, Proxy-Authorization never (B7)', () => {
    const headers = { Authorization: 'Basic YTpi', 'Proxy-Authorization': 'Basic eDp5' };
    const hidden = buildCgiVariables({ headers }, base);
    expect(hidden).not.toHaveProperty('HTTP_AUTHORIZATION');
    expect(hidden).not.toHaveProperty('HTTP_PROXY_AUTHORIZATION');
    const passed = buildCgiVariables({ headers }, { ...base, passAuthorization: true });
    expect(passed.HTTP_AUTHORIZATION).toBe('Basic YTpi');
    expect(passed).not.toHaveProperty('HTTP_PROXY_AUTHORIZATION');
  });

  it('never turns `Proxy:` into HTTP_PROXY (B8, httpoxy)', () => {
    const vars = buildCgiVariables({ headers: { Proxy: 'evil:8080', 'Proxy-Connection': 'keep-alive' } }, base);
    expect(vars).not.toHaveProperty('HTTP_PROXY');
    expect(vars.HTTP_PROXY_CONNECTION).toBe('keep-alive');
  });

  it('drops names with "_" or "." that would alias a "-" name (B9), and non-tokens', () => {
    const vars = buildCgiVariables(
      {
        headers: [
          ['X-A', 'real'],
          ['X_A', 'forged'],
          ['X.A', 'forged'],
          ['X A', 'forged'],
          ['X-Forwarded_For', '6.6.6.6'],
        ],
      },
      base,
    );
    expect(vars.HTTP_X_A).toBe('real');
    expect(Object.keys(vars).filter((name) => name.startsWith('HTTP_'))).toEqual(['HTTP_X_A']);
  });

  it('drops Transfer-Encoding: the body reaches the script de-chunked', () => {
    expect(buildCgiVariables({ headers: { 'Transfer-Encoding': 'chunked' } }, base)).not.toHaveProperty('HTTP_TRANSFER_ENCODING');
  });

  it('keeps PATH_INFO and header values as byte strings', () => {
    const vars = buildCgiVariables({ url: '/caf%C3%A9/%E9', headers: { 'X-Name': 'caf\u00c3\u00a9', 'X-Text': 'caf\u00e9 \u20ac' } }, base);
    expect(vars.PATH_INFO).toBe('/caf\u00c3\u00a9/\u00e9');
    expect(vars.REQUEST_URI).toBe('/cgi-bin/s.cgi/caf%C3%A9/%E9');
    expect(vars.HTTP_X_NAME).toBe('caf\u00c3\u00a9');
    // Text beyond latin-1 is stored as its UTF-8 bytes.
    expect(vars.HTTP_X_TEXT).toBe('caf\u00c3\u00a9 \u00e2\u0082\u00ac');
  });

  it('percent-encodes a SCRIPT_NAME with blanks in REQUEST_URI', () => {
    const vars = buildCgiVariables({ url: '/x' }, { scriptName: '/cgi bin/s.cgi' });
    expect(vars).toMatchObject({ SCRIPT_NAME: '/cgi bin/s.cgi', REQUEST_URI: '/cgi%20bin/s.cgi/x' });
  });

  it('takes SERVER_NAME from Host only when it is a plain host (T33)', () => {
    expect(buildCgiVariables({ headers: { host: '[::1]:8080' } }, base).SERVER_NAME).toBe('[::1]');
    expect(buildCgiVariables({ headers: { host: 'a.com@evil.com' } }, base).SERVER_NAME).toBe('localhost');
    expect(buildCgiVariables({ headers: { host: 'h' } }, { ...base, serverName: 'named' }).SERVER_NAME).toBe('named');
  });

  it.each([
    ['/a%2Fb', 404, /encoded slash in the path \(\/a%2Fb\)/],
    ['/a%2fb', 404, /encoded slash/],
    ['/a/../b', 404, /dot segment/],
    ['/a/%2e%2E/b', 404, /dot segment/],
    ['/./b', 404, /dot segment/],
    ['/a%00b', 404, /encoded NUL/],
    ['a/b', 400, /must be empty or start with/],
    ['/a b', 400, /blank or control character/],
    ['/a\nb', 400, /blank or control character/],
  ])('refuses the target %j with %i', (url, status, message) => {
    const error = refusal(() => buildCgiVariables({ url }, base));
    expect(error.status).toBe(status);
    expect(error.message).toMatch(/^cgi-host: /);
    expect(error.message).toMatch(message);
  });

  it('refuses a bad method, protocol or header value with 400', () => {
    expect(refusal(() => buildCgiVariables({ method: 'GE T' }, base)).message).toBe('cgi-host: method is not a token (GE T)');
    expect(refusal(() => buildCgiVariables({ protocol: 'SPDY/3' }, base)).status).toBe(400);
    expect(refusal(() => buildCgiVariables({ headers: { 'X-A': 'a\r\nX-B: b' } }, base)).message).toMatch(/CR, LF or NUL in header X-A/);
  });

  it('refuses a bad SCRIPT_NAME as a server error', () => {
    expect(() => buildCgiVariables({}, { scriptName: 's.cgi' })).toThrow(TsgiError);
    expect(() => buildCgiVariables({}, { scriptName: '/cgi-bin/' })).toThrow(/SCRIPT_NAME must start with/);
  });
});

describe('buildChildEnv', () => {
  const parentEnv = { PATH: '/bin', LANG: 'C.UTF-8', TZ: 'UTC', SECRET_TOKEN: 's3cret', HOME: '/root', HTTP_PROXY: 'http://corp:3128' };

  it('passes PATH and the allow-list only (B10)', () => {
    expect(buildChildEnv({ GATEWAY_INTERFACE: 'CGI/1.1' }, { parentEnv })).toEqual({
      PATH: '/bin',
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      GATEWAY_INTERFACE: 'CGI/1.1',
    });
  });

  it('uses a custom allow-list, always adds PATH, and DEFAULT_PATH when the parent has none', () => {
    expect(buildChildEnv({}, { parentEnv, envAllowList: ['HOME'] })).toEqual({ HOME: '/root', PATH: '/bin' });
    expect(buildChildEnv({}, { parentEnv: {}, envAllowList: [] })).toEqual({ PATH: DEFAULT_PATH });
  });

  it('lets CGI variables win over the parent and extraEnv win over everything', () => {
    const env = buildChildEnv({ TZ: 'cgi', SCRIPT_NAME: '/s' }, { parentEnv, extraEnv: { SCRIPT_NAME: '/forced', REDIRECT_STATUS: '200' } });
    expect(env).toMatchObject({ TZ: 'cgi', SCRIPT_NAME: '/forced', REDIRECT_STATUS: '200' });
  });

  it('reads process.env at call time by default', () => {
    process.env.SECRET_TOKEN = 'never-exported';
    try {
      const env = buildCgiEnv({}, base);
      expect(env).not.toHaveProperty('SECRET_TOKEN');
      expect(env.PATH).toBe(process.env.PATH);
      expect(env.GATEWAY_INTERFACE).toBe('CGI/1.1');
    } finally {
      delete process.env.SECRET_TOKEN;
    }
  });

  it('converts byte strings for the UTF-8 environment of the child', () => {
    const env = buildChildEnv({ PATH_INFO: '/caf\u00c3\u00a9', BAD: '/\u00e9' }, { parentEnv: {} });
    expect(env.PATH_INFO).toBe('/caf\u00e9');
    expect(env.BAD).toBe('/\u00e9');
  });
});

describe('toChildEnvValue', () => {
  it.each([
    ['ascii', 'plain', 'plain'],
    ['valid UTF-8 bytes become their text', 'caf\u00c3\u00a9', 'caf\u00e9'],
    ['invalid UTF-8 stays latin-1', 'caf\u00e9', 'caf\u00e9'],
    ['already text beyond latin-1', '\u20ac', '\u20ac'],
  ])('%s', (_name, input, expected) => {
    expect(toChildEnvValue(input)).toBe(expected);
  });
});

describe('readTsgiVersion', () => {
  it("returns package.json's version", () => {
    expect(readTsgiVersion()).toBe(version);
  });
});
