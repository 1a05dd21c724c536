import { TOKEN_RE } from '../response/status.js';
import { AppError } from '../errors.js';
import { decodeLatin1Utf8 } from '../environ/byte-policy.js';

// RFC 6265 §4.1.1 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon or backslash.
const COOKIE_VALUE_RE = /^(?:[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*|"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")$/;
// RFC 6265 §4.1.1 av-octet: any CHAR except CTLs or ";".
const COOKIE_ATTRIBUTE_RE = /^[\x20-\x3a\x3c-\x7e]*$/;

/** Attributes of a Set-Cookie header (RFC 6265 §4.1). */
export interface CookieOptions {
  /** Max-Age in seconds (an integer; 0 or less expires the cookie at once). */
  maxAge?: number;
  expires?: Date;
  path?: string;
  domain?: string;
  secure?: boolean;
  httpOnly?: boolean;
  /** SameSite; "None" requires `secure`. Case-insensitive. */
  sameSite?: 'Strict' | 'Lax' | 'None' | 'strict' | 'lax' | 'none';
}

/**
 * Parses a Cookie header (RFC 6265 §5.4: "a=1; b=2") into a null-prototype record. The first occurrence of a
 * name wins (browsers send the most specific cookie first). Surrounding double quotes are removed; the value
 * is decoded as UTF-8 from the byte policy, then percent-decoded when that is well-formed (kept as is otherwise).
 * Pairs without "=" or with an empty name are skipped.
 */
export function parseCookies(header: string): Record<string, string> {
  const cookies = Object.create(null) as Record<string, string>;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || name in cookies) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    value = decodeLatin1Utf8(value);
    if (value.includes('%')) {
      try {
        value = decodeURIComponent(value);
      } catch {
        // Not percent-encoding after all: keep the value as the client sent it.
      }
    }
    cookies[name] = value;
  }
  return cookies;
}

/** Serializes one Set-Cookie value; see Response.setCookie for the rules it enforces. */
export function serializeCookie(name: string, value: string, options: CookieOptions = {}): string {
  if (!TOKEN_RE.test(name)) throw new AppError(`response: cookie name is not a token (${JSON.stringify(name)})`);
  if (!COOKIE_VALUE_RE.test(value)) {
    throw new AppError(`response: cookie value holds a character outside RFC 6265 cookie-octet (${JSON.stringify(value)})`);
  }
  let out = `${name}=${value}`;
  if (options.maxAge !== undefined) {
    if (!Number.isInteger(options.maxAge)) throw new AppError(`response: cookie maxAge must be an integer (${options.maxAge})`);
    out += `; Max-Age=${options.maxAge}`;
  }
  if (options.expires !== undefined) {
    if (!(options.expires instanceof Date) || Number.isNaN(options.expires.getTime())) {
      throw new AppError(`response: cookie expires must be a valid Date (${String(options.expires)})`);
    }
    out += `; Expires=${options.expires.toUTCString()}`;
  }
  if (options.domain !== undefined) out += `; Domain=${checkAttribute('domain', options.domain)}`;
  if (options.path !== undefined) out += `; Path=${checkAttribute('path', options.path)}`;
  if (options.secure === true) out += '; Secure';
  if (options.httpOnly === true) out += '; HttpOnly';
  if (options.sameSite !== undefined) {
    const sameSite = { strict: 'Strict', lax: 'Lax', none: 'None' }[String(options.sameSite).toLowerCase()];
    if (sameSite === undefined) throw new AppError(`response: cookie sameSite must be Strict, Lax or None (${String(options.sameSite)})`);
    if (sameSite === 'None' && options.secure !== true) throw new AppError(`response: cookie SameSite=None requires secure (${name})`);
    out += `; SameSite=${sameSite}`;
  }
  // RFC 6265bis §4.1.3: browsers drop prefixed cookies that break these rules, so fail loudly instead.
  if (name.startsWith('__Secure-') && options.secure !== true) throw new AppError(`response: a __Secure- cookie requires secure (${name})`);
  if (name.startsWith('__Host-') && (options.secure !== true || options.path !== '/' || options.domain !== undefined)) {
    throw new AppError(`response: a __Host- cookie requires secure, path "/" and no domain (${name})`);
  }
  return out;
}

function checkAttribute(what: string, value: string): string {
  if (!COOKIE_ATTRIBUTE_RE.test(value)) throw new AppError(`response: cookie ${what} holds a control character or ";" (${JSON.stringify(value)})`);
  return value;
}
