/**
 * Whom to believe behind a reverse proxy: X-Forwarded-For / X-Forwarded-Proto / X-Forwarded-Host and RFC 7239
 * `Forwarded`, trusted only when the request comes from an allowed address (gunicorn's `forwarded_allow_ips`).
 * createEnviron applies it on every transport, so an app sees the client's address, scheme and host the same
 * way over HTTP behind a proxy as over FastCGI behind a web server that passes the headers on.
 */
import type { ForwardedPolicy } from './forwarded-policy.js';
import { HOST_RE, hostWithoutPort, portOfHost } from './host.js';

/** What one proxy said about the hop before it. */
interface Hop {
  /** The client of that proxy (an IP, or an obfuscated/unknown identifier). */
  address: string | undefined;
  proto: string | undefined;
  host: string | undefined;
}

/**
 * Rewrites `vars` (CGI variables) from the forwarding headers when REMOTE_ADDR is a trusted proxy. The client
 * is the rightmost hop that is not itself a trusted proxy (every proxy appends the address it saw, so only
 * the part right of the first untrusted hop was written by proxies tsgi trusts); its address becomes
 * REMOTE_ADDR (REMOTE_PORT is dropped, it was the proxy's), its scheme sets HTTPS on or off, its Host
 * HTTP_HOST, SERVER_NAME and SERVER_PORT. `Forwarded` is used when present, else the X-Forwarded-* fields
 * (X-Forwarded-Proto and -Host: the value of the same hop when their lists are as long as X-Forwarded-For,
 * else their last one). A hop whose address is not an IP (RFC 7239's "unknown", "_hidden") leaves
 * REMOTE_ADDR as it is. Returns the scheme it decided, or undefined when it changed nothing.
 */
export function applyForwarded(vars: Record<string, string>, policy: ForwardedPolicy): 'http' | 'https' | undefined {
  const forwarded = vars.HTTP_FORWARDED;
  const forwardedFor = vars.HTTP_X_FORWARDED_FOR;
  if (forwarded === undefined && forwardedFor === undefined && vars.HTTP_X_FORWARDED_PROTO === undefined && vars.HTTP_X_FORWARDED_HOST === undefined) {
    return undefined;
  }
  const peer = vars.REMOTE_ADDR;
  if (peer === undefined || !policy.trusts(peer)) return undefined;
  const hops = forwarded !== undefined ? parseForwarded(forwarded) : xForwardedHops(vars);
  if (hops.length === 0) return undefined;
  // The rightmost hop whose client is not a trusted proxy; when all are, the leftmost one.
  let chosen = hops[0] as Hop;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as Hop;
    chosen = hop;
    if (hop.address === undefined || !policy.trusts(hop.address)) break;
  }
  if (chosen.address !== undefined && policy.isAddress(chosen.address)) {
    vars.REMOTE_ADDR = chosen.address;
    delete vars.REMOTE_PORT;
  }
  let scheme: 'http' | 'https' | undefined;
  const proto = chosen.proto?.toLowerCase();
  if (proto === 'https' || proto === 'wss') {
    scheme = 'https';
    vars.HTTPS = 'on';
  } else if (proto === 'http' || proto === 'ws') {
    scheme = 'http';
    if (vars.HTTPS !== undefined) delete vars.HTTPS;
  }
  const host = chosen.host;
  if (host !== undefined && HOST_RE.test(host)) {
    vars.HTTP_HOST = host;
    vars.SERVER_NAME = hostWithoutPort(host) ?? host;
    vars.SERVER_PORT = portOfHost(host) ?? ((scheme ?? (vars.HTTPS === 'on' ? 'https' : 'http')) === 'https' ? '443' : '80');
  } else if (scheme !== undefined && forwarded === undefined && vars.HTTP_X_FORWARDED_PORT !== undefined && /^\d{1,5}$/.test(vars.HTTP_X_FORWARDED_PORT.trim())) {
    vars.SERVER_PORT = vars.HTTP_X_FORWARDED_PORT.trim();
  }
  return scheme;
}

/** Splits a comma-separated header value (the same field repeated was joined with ", "). */
function list(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((item) => item.trim());
}

/** The X-Forwarded-* fields as hops, one per X-Forwarded-For entry (or one hop when only -Proto/-Host came). */
function xForwardedHops(vars: Record<string, string>): Hop[] {
  const addresses = list(vars.HTTP_X_FORWARDED_FOR).filter((entry) => entry !== '');
  const protos = list(vars.HTTP_X_FORWARDED_PROTO);
  const hosts = list(vars.HTTP_X_FORWARDED_HOST);
  const count = Math.max(addresses.length, 1);
  const hops: Hop[] = [];
  for (let i = 0; i < count; i++) {
    hops.push({
      address: addresses.length > 0 ? stripPort(addresses[i] as string) : undefined,
      proto: protos.length === count ? protos[i] : protos.at(-1),
      host: hosts.length === count ? hosts[i] : hosts.at(-1),
    });
  }
  return hops;
}

/** RFC 7239 §4: `for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`; bad elements are skipped. */
function parseForwarded(value: string): Hop[] {
  const hops: Hop[] = [];
  for (const element of splitOutsideQuotes(value, ',')) {
    const hop: Hop = { address: undefined, proto: undefined, host: undefined };
    for (const pair of splitOutsideQuotes(element, ';')) {
      const equals = pair.indexOf('=');
      if (equals <= 0) continue;
      const name = pair.slice(0, equals).trim().toLowerCase();
      let text = pair.slice(equals + 1).trim();
      if (text.startsWith('"') && text.endsWith('"') && text.length >= 2) text = text.slice(1, -1).replace(/\\(.)/g, '$1');
      if (name === 'for') hop.address = stripPort(text);
      else if (name === 'proto') hop.proto = text;
      else if (name === 'host') hop.host = text;
    }
    hops.push(hop);
  }
  return hops;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && quoted) i++;
    else if (char === '"') quoted = !quoted;
    else if (char === separator && !quoted) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts.filter((part) => part !== '');
}

/** "192.0.2.1:4711" -> "192.0.2.1", "[2001:db8::1]:4711" -> "2001:db8::1"; a bare IPv6 address is kept. */
function stripPort(address: string): string {
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end < 0 ? address : address.slice(1, end);
  }
  const colon = address.indexOf(':');
  if (colon >= 0 && address.indexOf(':', colon + 1) < 0) return address.slice(0, colon);
  return address;
}
