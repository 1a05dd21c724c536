import { describe, expect, it } from 'vitest';
import {
  bytesToByteString,
  byteStringToBytes,
  decodeLatin1Utf8,
  decodeProcessEnv,
  encodeUtf8Latin1,
  percentDecodeToByteString,
} from '../../src/environ/byte-policy.js';

describe('byte policy', () => {
  it('round-trips every byte value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = bytesToByteString(all);
    expect(text.length).toBe(256);
    expect(text.charCodeAt(0xe9)).toBe(0xe9);
    expect([...byteStringToBytes(text)]).toEqual([...all]);
  });

  it('UTF-8 text <-> byte strings', () => {
    expect(encodeUtf8Latin1('caf\u00e9')).toBe('caf\u00c3\u00a9');
    expect(decodeLatin1Utf8('caf\u00c3\u00a9')).toBe('caf\u00e9');
  });

  it('percent-decodes to bytes and keeps malformed escapes', () => {
    expect(percentDecodeToByteString('/a%20b/caf%C3%A9/%e9')).toBe('/a b/caf\u00c3\u00a9/\u00e9');
    expect(percentDecodeToByteString('/100%/%zz/%4')).toBe('/100%/%zz/%4');
  });

  it('A8: process env values become byte strings; lossy PATH_INFO comes back from REQUEST_URI', () => {
    expect(decodeProcessEnv({ PATH_INFO: '/caf\u00e9', X: undefined })).toEqual({ PATH_INFO: '/caf\u00c3\u00a9' });
    const lossy = decodeProcessEnv({ SCRIPT_NAME: '/s.cgi', PATH_INFO: '/caf\ufffd', REQUEST_URI: '/s.cgi/caf%E9?q=1' });
    expect(lossy.PATH_INFO).toBe('/caf\u00e9');
    const mismatch = decodeProcessEnv({ SCRIPT_NAME: '/s.cgi', PATH_INFO: '/\ufffd', REQUEST_URI: '/other/%E9' });
    expect(mismatch.PATH_INFO).toBe(encodeUtf8Latin1('/\ufffd'));
  });

  // Found by fuzzing (test/fuzz/environ.test.ts): any REQUEST_URI starting with SCRIPT_NAME was taken, so
  // "/app" + "/apple/%FF" gave PATH_INFO "le/\xff", and a missing SCRIPT_NAME put the script's path in PATH_INFO.
  it('A8: PATH_INFO is rebuilt only from a REQUEST_URI that holds the same path below SCRIPT_NAME', () => {
    const boundary = decodeProcessEnv({ SCRIPT_NAME: '/app', PATH_INFO: '/\ufffd', REQUEST_URI: '/apple/%FF' });
    expect(boundary.PATH_INFO).toBe(encodeUtf8Latin1('/\ufffd'));
    const noScript = decodeProcessEnv({ PATH_INFO: '/caf\ufffd', REQUEST_URI: '/s.cgi/caf%E9' });
    expect(noScript.PATH_INFO).toBe(encodeUtf8Latin1('/caf\ufffd'));
    const same = decodeProcessEnv({ SCRIPT_NAME: '/app', PATH_INFO: '/x/\ufffd\ufffd', REQUEST_URI: '/app/x/%FF%FE?q' });
    expect(same.PATH_INFO).toBe('/x/\u00ff\u00fe');
  });
});
