/**
 * addRequestVariable: what the FastCGI, SCGI and uwsgi servers store their request variables with. Empty
 * CONTENT_LENGTH and CONTENT_TYPE are left out (createEnviron takes them as absent anyway); everything else is
 * addVariable's, and the decoders' checks still see what the web server sent.
 */
import { describe, expect, it } from 'vitest';
import { createEnviron } from '../../src/environ/create-environ.js';
import { NameValueCollector, encodeNameValuePairs } from '../../src/protocol/fastcgi/name-value.js';
import { addRequestVariable } from '../../src/protocol/request-variables.js';
import { ScgiHeaderReader, encodeScgiHeader } from '../../src/protocol/scgi/netstring.js';
import { UwsgiRequestReader, encodeUwsgiPacket } from '../../src/protocol/uwsgi/packet.js';

describe('addRequestVariable', () => {
  it('leaves out an empty CONTENT_LENGTH or CONTENT_TYPE; an empty repeat removes the earlier value (the later one wins)', () => {
    const target: Record<string, string> = {};
    addRequestVariable(target, 'CONTENT_LENGTH', '');
    addRequestVariable(target, 'CONTENT_TYPE', '');
    addRequestVariable(target, 'QUERY_STRING', '');
    addRequestVariable(target, 'HTTP_X', 'a');
    addRequestVariable(target, 'HTTP_X', 'b');
    expect(target).toEqual({ QUERY_STRING: '', HTTP_X: 'a, b' });
    addRequestVariable(target, 'CONTENT_TYPE', 'text/plain');
    addRequestVariable(target, 'CONTENT_TYPE', '');
    expect(Object.hasOwn(target, 'CONTENT_TYPE')).toBe(false);
  });

  it('gives the app the same environ as storing every pair', () => {
    const pairs: Array<[string, string]> = [
      ['REQUEST_METHOD', 'GET'],
      ['CONTENT_TYPE', ''],
      ['CONTENT_LENGTH', ''],
      ['QUERY_STRING', 'a=1'],
      ['SCRIPT_NAME', '/app'],
    ];
    const environOf = (variables: Record<string, string>): Record<string, unknown> => {
      const environ = createEnviron({ variables, ownsVariables: true, errors: { write: () => {} } }) as unknown as Record<string, unknown>;
      return Object.fromEntries(Object.entries(environ).filter(([name]) => !name.startsWith('tsgi.')));
    };
    const collect = (add?: typeof addRequestVariable): Record<string, string> => {
      const collector = new NameValueCollector(1 << 20);
      collector.push(encodeNameValuePairs(pairs));
      return add ? collector.finish(add) : collector.finish();
    };
    expect(environOf(collect(addRequestVariable))).toEqual(environOf(collect()));
  });

  it('SCGI: an empty CONTENT_LENGTH is a body of 0 bytes, and a CONTENT_TYPE given twice is refused even when the first was empty', () => {
    const reader = new ScgiHeaderReader(1 << 20, addRequestVariable);
    const head = reader.push(encodeScgiHeader([['CONTENT_LENGTH', ''], ['SCGI', '1'], ['CONTENT_TYPE', ''], ['REQUEST_METHOD', 'GET']]));
    expect(head?.contentLength).toBe(0);
    expect(head?.variables).toEqual({ SCGI: '1', REQUEST_METHOD: 'GET' });
    const twice = new ScgiHeaderReader(1 << 20, addRequestVariable);
    expect(() => twice.push(encodeScgiHeader([['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['CONTENT_TYPE', ''], ['CONTENT_TYPE', 'text/plain']]))).toThrow(
      /duplicate header \(CONTENT_TYPE\)/,
    );
    const length = new ScgiHeaderReader(1 << 20, addRequestVariable);
    expect(() => length.push(encodeScgiHeader([['CONTENT_LENGTH', ''], ['SCGI', '1'], ['CONTENT_LENGTH', '']]))).toThrow(/duplicate header \(CONTENT_LENGTH\)/);
  });

  it('uwsgi: empty CONTENT_LENGTH and CONTENT_TYPE are left out, the body length is 0', () => {
    const reader = new UwsgiRequestReader(65535, addRequestVariable);
    const head = reader.push(encodeUwsgiPacket([['CONTENT_TYPE', ''], ['CONTENT_LENGTH', ''], ['REQUEST_METHOD', 'GET']]));
    expect(head?.contentLength).toBe(0);
    expect(head?.variables).toEqual({ REQUEST_METHOD: 'GET' });
  });
});
