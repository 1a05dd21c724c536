import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/errors.js';
import { ScgiHeaderReader, decodeScgiHeaders, encodeScgiHeader, encodeScgiRequest } from '../../../src/protocol/scgi/netstring.js';

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
/** The SCGI spec's own example (D1), byte for byte. */
const SPEC_EXAMPLE = latin1('70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00REQUEST_URI\x00/deepthought\x00,');
const SPEC_BODY = latin1('What is the answer to life?');
/** A netstring with the right length for `payload`. */
const ns = (payload: string): string => `${payload.length}:${payload},`;

function readAll(chunks: Uint8Array[], max?: number) {
  const reader = new ScgiHeaderReader(max);
  for (const [index, chunk] of chunks.entries()) {
    const header = reader.push(chunk);
    if (header) return { header, index };
  }
  return null;
}

describe('SCGI header encoding (D1)', () => {
  const table: Array<[Array<[string, string]>, string]> = [
    [[['CONTENT_LENGTH', '0'], ['SCGI', '1']], '24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,'],
    [[['CONTENT_LENGTH', ''], ['SCGI', '1'], ['CONTENT_TYPE', '']], '37:CONTENT_LENGTH\x00\x00SCGI\x001\x00CONTENT_TYPE\x00\x00,'],
    [[['CONTENT_LENGTH', '27'], ['SCGI', '1'], ['REQUEST_METHOD', 'POST'], ['REQUEST_URI', '/deepthought']], SPEC_EXAMPLE.toString('latin1')],
    [[['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['PATH_INFO', '/caf\u00c3\u00a9']], '41:CONTENT_LENGTH\x000\x00SCGI\x001\x00PATH_INFO\x00/caf\xc3\xa9\x00,'],
  ];
  for (const [pairs, expected] of table) {
    it(`encodes ${pairs.map(([name]) => name).join(',')} byte-exact and decodes it back`, () => {
      const encoded = encodeScgiHeader(pairs);
      expect(encoded.toString('hex')).toBe(latin1(expected).toString('hex'));
      const colon = encoded.indexOf(0x3a);
      expect(decodeScgiHeaders(encoded.subarray(colon + 1, encoded.length - 1)).variables).toEqual(Object.fromEntries(pairs));
    });
  }

  it('encodeScgiRequest puts CONTENT_LENGTH first and SCGI=1, then the body', () => {
    const request = encodeScgiRequest({ REQUEST_METHOD: 'POST', REQUEST_URI: '/deepthought' }, SPEC_BODY);
    expect(request.toString('latin1')).toBe(SPEC_EXAMPLE.toString('latin1') + SPEC_BODY.toString('latin1'));
  });

  it('refuses NULs and chars above U+00FF', () => {
    expect(() => encodeScgiHeader([['A', 'x\0y']])).toThrow(ProtocolError);
    expect(() => encodeScgiHeader([['A', '\u0100']])).toThrow(/byte string/);
  });
});

describe('SCGI header reader (D1-D3)', () => {
  it('D1: the spec example and its 27-byte body in one chunk', () => {
    const result = readAll([Buffer.concat([SPEC_EXAMPLE, SPEC_BODY])]);
    expect(result?.header.variables).toEqual({ CONTENT_LENGTH: '27', SCGI: '1', REQUEST_METHOD: 'POST', REQUEST_URI: '/deepthought' });
    expect(result?.header.contentLength).toBe(27);
    expect(Buffer.from(result?.header.rest ?? []).toString()).toBe('What is the answer to life?');
  });

  it('copes with a split at every byte boundary, and with one byte at a time', () => {
    const whole = Buffer.concat([SPEC_EXAMPLE, SPEC_BODY]);
    for (let cut = 1; cut < whole.length; cut++) {
      const chunks = [whole.subarray(0, cut), whole.subarray(cut)];
      const result = readAll(chunks);
      expect(result?.header.variables.REQUEST_URI, `cut at ${cut}`).toBe('/deepthought');
      // The body: `rest`, then the chunks after the one that completed the header.
      const body = Buffer.concat([result?.header.rest ?? new Uint8Array(0), ...chunks.slice((result?.index ?? 0) + 1)]);
      expect(body.toString(), `cut at ${cut}`).toBe(SPEC_BODY.toString());
    }
    const bytes = [...SPEC_EXAMPLE].map((byte) => Uint8Array.of(byte));
    const result = readAll(bytes);
    expect(result?.index).toBe(SPEC_EXAMPLE.length - 1);
    expect(result?.header.rest.length).toBe(0);
  });

  it('D3: empty values are kept; CONTENT_LENGTH "" means no body', () => {
    const result = readAll([encodeScgiHeader([['CONTENT_LENGTH', ''], ['SCGI', '1'], ['CONTENT_TYPE', '']])]);
    expect(result?.header.variables).toEqual({ CONTENT_LENGTH: '', SCGI: '1', CONTENT_TYPE: '' });
    expect(result?.header.contentLength).toBe(0);
  });

  it('keeps raw bytes as latin-1 chars', () => {
    const result = readAll([latin1(ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00\xc3\xa9\xff\x00'))]);
    expect(result?.header.variables.X).toBe('\u00c3\u00a9\u00ff');
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['no length', ':CONTENT_LENGTH\x000\x00SCGI\x001\x00,', /without a length/],
    ['a leading zero', '024:CONTENT_LENGTH\x000\x00SCGI\x001\x00,', /leading zero/],
    ['a sign', '+24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,', /decimal digits/],
    ['a space before ":"', '24 :CONTENT_LENGTH\x000\x00SCGI\x001\x00,', /decimal digits/],
    ['no ","', '24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;', /must end with ","/],
    ['a length one short', '23:CONTENT_LENGTH\x000\x00SCGI\x001\x00,', /must end with ","/],
    ['CONTENT_LENGTH not first', '24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,', /first header must be CONTENT_LENGTH/],
    ['no CONTENT_LENGTH', '7:SCGI\x001\x00,', /first header must be CONTENT_LENGTH/],
    ['no SCGI', '17:CONTENT_LENGTH\x000\x00,', /SCGI header must be "1" \(missing\)/],
    ['SCGI=2', '24:CONTENT_LENGTH\x000\x00SCGI\x002\x00,', /SCGI header must be "1" \(2\)/],
    ['CONTENT_LENGTH -1', '25:CONTENT_LENGTH\x00-1\x00SCGI\x001\x00,', /CONTENT_LENGTH must be decimal digits \(-1\)/],
    ['a name without a value', '26:CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00,', /must end with a NUL|without a value/],
    ['an odd trailing name', ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00XY'), /must end with a NUL/],
    ['an empty name', ns('CONTENT_LENGTH\x000\x00SCGI\x001\x00\x00v\x00'), /empty header name/],
    ['a duplicate', '31:CONTENT_LENGTH\x000\x00SCGI\x001\x00SCGI\x001\x00,', /duplicate header \(SCGI\)/],
    ['an empty netstring', '0:,', /must end with a NUL/],
  ];
  for (const [what, text, message] of malformed) {
    it(`D2/D3: ${what} -> ProtocolError 400`, () => {
      let error: unknown;
      try {
        readAll([latin1(text)]);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as ProtocolError).status).toBe(400);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('D2: a length over maxHeaderBytes throws as soon as its digits say so, before any payload is buffered', () => {
    const reader = new ScgiHeaderReader(1000);
    expect(reader.push(latin1('100'))).toBeNull();
    expect(() => reader.push(latin1('1'))).toThrow(/exceeds maxHeaderBytes \(1000\)/);
    // A hostile endless run of digits stops at the cap, not at the end of memory.
    expect(() => new ScgiHeaderReader().push(latin1('9'.repeat(100)))).toThrow(/exceeds maxHeaderBytes/);
  });

  it('accepts a header of exactly maxHeaderBytes', () => {
    const header = encodeScgiHeader([['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['X', 'v'.repeat(1000 - 27)]]);
    expect(header.toString('latin1').startsWith('1000:')).toBe(true);
    expect(readAll([header], 1000)?.header.variables.X).toHaveLength(973);
    expect(() => readAll([encodeScgiHeader([['CONTENT_LENGTH', '0'], ['SCGI', '1'], ['X', 'v'.repeat(974)]])], 1000)).toThrow(/maxHeaderBytes/);
  });

  it('refuses to be used again after the header', () => {
    const reader = new ScgiHeaderReader();
    expect(reader.push(SPEC_EXAMPLE)).not.toBeNull();
    expect(() => reader.push(SPEC_BODY)).toThrow(ProtocolError);
  });

  // nginx sends a request header given twice as two HTTP_* headers (issue 10, part 5): joined as HTTP joins them.
  it('joins repeated HTTP_* headers (", ", "; " for HTTP_COOKIE), as tsgi\'s HTTP server does', () => {
    const header = decodeScgiHeaders(
      latin1('CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTP_X_DUP\x00one\x00HTTP_COOKIE\x00a=1\x00HTTP_X_DUP\x00two\x00HTTP_COOKIE\x00b=2\x00HTTP_X_DUP\x00\x00'),
    );
    expect(header.variables.HTTP_X_DUP).toBe('one, two, ');
    expect(header.variables.HTTP_COOKIE).toBe('a=1; b=2');
  });

  it('still refuses a repeated non-HTTP header (the spec forbids duplicates; which CONTENT_LENGTH would count?)', () => {
    expect(() => decodeScgiHeaders(latin1('CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x005\x00'))).toThrow(/duplicate header \(CONTENT_LENGTH\)/);
    expect(() => decodeScgiHeaders(latin1('CONTENT_LENGTH\x000\x00SCGI\x001\x00SCRIPT_NAME\x00/a\x00SCRIPT_NAME\x00/b\x00'))).toThrow(/duplicate header/);
  });

  // Found by fuzzing (test/fuzz/scgi.test.ts): "constructor" or "toString" read as already present (a
  // "duplicate"), and "__proto__" vanished.
  it('accepts headers named like Object.prototype members, and still refuses their duplicates', () => {
    const payload = 'CONTENT_LENGTH\x000\x00SCGI\x001\x00constructor\x00a\x00toString\x00b\x00__proto__\x00c\x00';
    const header = decodeScgiHeaders(latin1(payload));
    expect(Object.keys(header.variables)).toEqual(['CONTENT_LENGTH', 'SCGI', 'constructor', 'toString', '__proto__']);
    expect(Object.getOwnPropertyDescriptor(header.variables, '__proto__')?.value).toBe('c');
    expect(header.variables.constructor).toBe('a');
    expect(() => decodeScgiHeaders(latin1(`${payload}__proto__\x00d\x00`))).toThrow(/duplicate header \(__proto__\)/);
  });
});
