/**
 * The tsgi byte policy (docs/SPEC.md, "Strings and bytes"): every CGI variable is a string with one char per
 * byte, U+0000..U+00FF (latin-1), exactly as PEP 3333 does for WSGI. Transports that receive raw bytes
 * decode them as latin-1; apps that want text decode with `decodeLatin1Utf8()`.
 */
import { setVariable } from './variables.js';

/** Turns raw bytes into a byte string (one char per byte). */
export function bytesToByteString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Turns a byte string back into its bytes. */
export function byteStringToBytes(value: string): Buffer {
  return Buffer.from(value, 'latin1');
}

/** Decodes a byte string as UTF-8 text (e.g. a PATH_INFO holding UTF-8 bytes). Invalid bytes become U+FFFD. */
export function decodeLatin1Utf8(value: string): string {
  return Buffer.from(value, 'latin1').toString('utf8');
}

/** Encodes text as UTF-8 and returns the byte string (the inverse of decodeLatin1Utf8 for valid text). */
export function encodeUtf8Latin1(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/**
 * Percent-decodes a URL path into a byte string: "%C3%A9" -> "\u00c3\u00a9". Malformed escapes are kept
 * as they are, the way web servers pass them.
 */
export function percentDecodeToByteString(path: string): string {
  if (!path.includes('%')) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path.charCodeAt(i);
    if (ch === 0x25 && i + 2 < path.length && isHex(path.charCodeAt(i + 1)) && isHex(path.charCodeAt(i + 2))) {
      out += String.fromCharCode(parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out += path[i];
    }
  }
  return out;
}

function isHex(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}

const REPLACEMENT = '\ufffd';
const ASCII_RE = /^[\x00-\x7f]*$/;

/**
 * Converts a process environment (which Node decodes as UTF-8) to CGI variables under the byte policy.
 * Where the decoding was lossy (a byte that isn't UTF-8 became U+FFFD in PATH_INFO), PATH_INFO is rebuilt
 * from the raw REQUEST_URI when that is SCRIPT_NAME followed by the same path (conformance A8, field-notes T24).
 */
export function decodeProcessEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  // One copy first: reading process.env key by key goes through a native interceptor each time.
  const copy = { ...env };
  for (const key of Object.keys(copy)) {
    const value = copy[key];
    // Most values are ASCII, the same in both forms: skip the round trip through a Buffer (CGI start-up).
    if (typeof value === 'string') setVariable(out, key, ASCII_RE.test(value) ? value : encodeUtf8Latin1(value));
  }
  const pathInfo = env.PATH_INFO;
  const requestUri = out.REQUEST_URI;
  if (pathInfo !== undefined && pathInfo.includes(REPLACEMENT) && requestUri !== undefined) {
    const rawPath = percentDecodeToByteString(requestUri.split('?', 1)[0] ?? '');
    const scriptName = out.SCRIPT_NAME ?? '';
    if (rawPath.startsWith(scriptName)) {
      // Taken only when it is provably the same path: it splits at a segment boundary ("/app" is no prefix of
      // "/apple") and its bytes read as UTF-8 are what Node decoded. A rewritten URL keeps the lossy PATH_INFO.
      const rest = rawPath.slice(scriptName.length);
      const boundary = rest === '' || rest.startsWith('/') || scriptName.endsWith('/');
      if (boundary && decodeLatin1Utf8(rest) === pathInfo) out.PATH_INFO = rest;
    }
  }
  return out;
}

/**
 * Returns the part of a raw (percent-encoded) request path that lies below `scriptName` and decodes to
 * `pathInfo` (both byte strings), keeping the client's own escapes ("%2F" stays "%2F"); null when the raw path
 * does not decode to scriptName + pathInfo (a rewrite happened: the caller re-encodes pathInfo instead).
 */
export function rawPathBelow(rawPath: string, scriptName: string, pathInfo: string): string | null {
  let at = 0;
  let decoded = '';
  while (decoded.length < scriptName.length && at < rawPath.length) {
    if (rawPath[at] === '%' && isHex(rawPath.charCodeAt(at + 1)) && isHex(rawPath.charCodeAt(at + 2))) {
      decoded += String.fromCharCode(parseInt(rawPath.slice(at + 1, at + 3), 16));
      at += 3;
    } else {
      decoded += rawPath[at];
      at += 1;
    }
  }
  if (decoded !== scriptName) return null;
  const rest = rawPath.slice(at);
  return percentDecodeToByteString(rest) === pathInfo ? rest : null;
}
