import { isIP, type Socket } from 'node:net';
import { TsgiError } from '../errors.js';
import { shown } from './option-checks.js';

/**
 * The web servers a gateway server (FastCGI, SCGI, uwsgi) accepts connections from: the webServerAddrs option,
 * or FCGI_WEB_SERVER_ADDRS for FastCGI (conformance C16). Checked once when the server is created, matched on
 * every accept. Only TCP peers are filtered: a unix socket's peer has no address.
 */

/** "::ffff:127.0.0.1" -> "127.0.0.1"; other addresses unchanged (conformance C16). */
export function normalizeAddress(address: string): string {
  return address.toLowerCase().startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The peers allowed to connect: null (anyone) or a list of IP addresses, each trimmed and normalised
 * (normalizeAddress), empty entries skipped. `name` says where the list came from (the option, or
 * FCGI_WEB_SERVER_ADDRS); an entry that is not an IP address is refused (it could never match a peer).
 */
export function checkWebServerAddrs(area: string, name: string, value: unknown): ReadonlySet<string> | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw new TsgiError(`${area}: ${name} must be a list of IP addresses (${shown(value)})`);
  const addresses = new Set<string>();
  for (const entry of value as unknown[]) {
    if (typeof entry !== 'string') throw new TsgiError(`${area}: ${name}: not an IP address (${shown(entry)})`);
    const address = normalizeAddress(entry.trim());
    if (address === '') continue;
    if (isIP(address) === 0) throw new TsgiError(`${area}: ${name}: not an IP address (${shown(entry)})`);
    addresses.add(address);
  }
  return addresses;
}

/**
 * True when `socket`'s peer may connect: no list, no address (a unix socket), or a listed address. The peer's
 * address (a getpeername call) is read only when there is a list.
 */
export function isAllowedPeer(allowed: ReadonlySet<string> | null, socket: Socket): boolean {
  if (allowed === null) return true;
  const address = socket.remoteAddress;
  return address === undefined || allowed.has(normalizeAddress(address));
}
