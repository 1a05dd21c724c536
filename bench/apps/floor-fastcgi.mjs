/**
 * What the bench's minimal FastCGI responders share (minimal-fastcgi.mjs, minimal-fastcgi-stream.mjs,
 * minimal-cgi-spawn.mjs): the protocol's numbers they use, the FCGI_PARAMS decoder and the record header. Written for the bench
 * (each floor's own header says what it does and does not do); tsgi's codec is src/protocol/fastcgi/.
 */
export const VERSION = 1;
export const BEGIN_REQUEST = 1;
export const END_REQUEST = 3;
export const PARAMS = 4;
export const STDIN = 5;
export const STDOUT = 6;
export const KEEP_CONN = 1;
/** Most content bytes in one record. */
export const MAX_CONTENT = 65535;

/** Decodes a complete FCGI_PARAMS stream (1- and 4-byte lengths) into a fresh object, as latin1 strings. */
export function decodeParams(buffer) {
  const params = {};
  let at = 0;
  const length = () => {
    const first = buffer[at];
    if (first < 0x80) {
      at += 1;
      return first;
    }
    const value = buffer.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return value;
  };
  while (at < buffer.length) {
    const nameLength = length();
    const valueLength = length();
    const name = buffer.toString('latin1', at, at + nameLength);
    at += nameLength;
    params[name] = buffer.toString('latin1', at, at + valueLength);
    at += valueLength;
  }
  return params;
}

/** An 8-byte record header (no padding). */
export function recordHeader(type, requestId, contentLength) {
  const header = Buffer.allocUnsafe(8);
  header[0] = VERSION;
  header[1] = type;
  header.writeUInt16BE(requestId, 2);
  header.writeUInt16BE(contentLength, 4);
  header[6] = 0;
  header[7] = 0;
  return header;
}
