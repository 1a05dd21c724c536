/**
 * The environ every transport builds keeps V8's fast properties: a request's variables are stored by name as
 * they are decoded (`target[name] = value`), and an object that spills more properties out of its in-object room
 * that way than it has room (at least twelve) becomes a dictionary (measured before newVariables reserved the
 * room: every FastCGI environ from nginx was one). Checked with V8's own %HasFastProperties, enabled at run time.
 */
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { createEnviron, createVariables } from '../../src/environ/create-environ.js';
import { newVariables } from '../../src/environ/variables.js';
import { decodeNameValuePairsInto, encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { addRequestVariable } from '../../src/protocol/request-variables.js';

setFlagsFromString('--allow-natives-syntax');
// (Compiled after the flag: the natives syntax is only allowed in code parsed once it is set.)
const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (object: object) => boolean;
const errors = { write: (): void => undefined };

/** What nginx's stock fastcgi_params sends for a GET, plus `headers` request headers. */
function nginxParams(headers: number): Array<[string, string]> {
  const params: Array<[string, string]> = [
    ['QUERY_STRING', 'a=1'], ['REQUEST_METHOD', 'GET'], ['CONTENT_TYPE', ''], ['CONTENT_LENGTH', ''],
    ['SCRIPT_NAME', '/index'], ['REQUEST_URI', '/index?a=1'], ['DOCUMENT_URI', '/index'], ['DOCUMENT_ROOT', '/srv/www'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'], ['REQUEST_SCHEME', 'http'], ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', 'nginx/1.22.1'], ['REMOTE_ADDR', '127.0.0.1'], ['REMOTE_PORT', '50000'], ['SERVER_ADDR', '127.0.0.1'],
    ['SERVER_PORT', '80'], ['SERVER_NAME', 'example.test'], ['REDIRECT_STATUS', '200'], ['SCRIPT_FILENAME', '/srv/www/index'],
  ];
  for (let i = 0; i < headers; i++) params.push([`HTTP_X_HEADER_${i}`, `value ${i}`]);
  return params;
}

function fastCgiEnviron(headers: number): object {
  const variables = decodeNameValuePairsInto(encodeNameValuePairs(nginxParams(headers)), newVariables(), undefined, addRequestVariable);
  return createEnviron({ variables, errors, ownsVariables: true });
}

describe('the shape of an environ', () => {
  // First, so that its small environs are the first this process makes (V8 trims the room after seven).
  it('a request with 60 headers after small ones (a health check first) still gets fast properties: the room is not trimmed', () => {
    for (let i = 0; i < 10; i++) expect(hasFastProperties(fastCgiEnviron(0))).toBe(true);
    expect(hasFastProperties(fastCgiEnviron(60))).toBe(true);
  });

  it('the check tells a dictionary: an object of an empty constructor filled the same way is one', () => {
    function Empty(): void {}
    let last: Record<string, string> = {};
    for (let i = 0; i < 20; i++) {
      last = new (Empty as unknown as new () => Record<string, string>)();
      for (const [name, value] of nginxParams(14)) last[name] = value;
    }
    expect(hasFastProperties(last)).toBe(false);
  });

  it('a FastCGI environ from nginx, with 14 request headers, has fast properties, request after request', () => {
    for (let i = 0; i < 20; i++) expect(hasFastProperties(fastCgiEnviron(14))).toBe(true);
  });

  it('an environ made with createVariables (HTTP, CGI) and filled by name keeps fast properties too', () => {
    for (let i = 0; i < 20; i++) {
      const variables = createVariables();
      // (Never an empty CONTENT_TYPE or CONTENT_LENGTH: the HTTP server sets neither unless the request has it.)
      for (const [name, value] of nginxParams(14)) if (value !== '') variables[name] = value;
      expect(hasFastProperties(createEnviron({ variables, errors, ownsVariables: true }))).toBe(true);
    }
  });

  it('createEnviron copying variables it does not own (a CGI script\'s process environment) gives fast properties', () => {
    const source: Record<string, string> = Object.fromEntries(nginxParams(14).filter(([, value]) => value !== ''));
    for (let i = 0; i < 20; i++) expect(hasFastProperties(createEnviron({ variables: { ...source, PATH: '/usr/bin' }, errors }))).toBe(true);
  });
});
