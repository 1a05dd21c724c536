/**
 * The list of peers whose forwarding fields are believed (forwarded.ts applies them): addresses and CIDR
 * networks, checked with net.BlockList. A module of its own so that createEnviron, which every CGI request
 * loads, does not load node:net: the servers build the policy once and hand it over.
 */
import { BlockList, isIP } from 'node:net';
import { TsgiError } from '../errors.js';

/** gunicorn's default: only a proxy on the same machine is believed. */
export const DEFAULT_FORWARDED_ALLOW_IPS = '127.0.0.1,::1';

/** Which peers may tell tsgi who the client is. Build it once with createForwardedPolicy. */
export interface ForwardedPolicy {
  /** True when `address` (an IP, as REMOTE_ADDR holds it) is a trusted proxy. */
  trusts(address: string): boolean;
  /** True when `text` is an IP address (a hop such as "unknown" or "_hidden" is not). */
  isAddress(text: string): boolean;
}

/**
 * Parses a list of trusted proxies: comma-separated IP addresses and CIDR networks ("10.0.0.0/8",
 * "fd00::/8"), or "*" for any peer. An IPv4 entry also covers its IPv4-mapped IPv6 form ("::ffff:127.0.0.1",
 * how a dual-stack listener shows an IPv4 peer). Throws TsgiError naming a bad entry. An empty list trusts none.
 */
export function createForwardedPolicy(list: string): ForwardedPolicy {
  const entries = list.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.includes('*')) return { trusts: () => true, isAddress };
  const allowed = new BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    const address = slash < 0 ? entry : entry.slice(0, slash);
    const family = isIP(address);
    if (family === 0) throw new TsgiError(`forwarded-allow-ips: not an IP address or network (${JSON.stringify(entry)})`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) {
      allowed.addAddress(address, type);
    } else {
      const prefix = Number(entry.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128) || !/^\d+$/.test(entry.slice(slash + 1))) {
        throw new TsgiError(`forwarded-allow-ips: bad network prefix (${JSON.stringify(entry)})`);
      }
      allowed.addSubnet(address, prefix, type);
    }
  }
  return {
    isAddress,
    trusts(address: string): boolean {
      const family = isIP(address);
      if (family === 0) return false;
      if (family === 4) return allowed.check(address, 'ipv4');
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
      if (mapped) return allowed.check(mapped[1] as string, 'ipv4') || allowed.check(address, 'ipv6');
      return allowed.check(address, 'ipv6');
    },
  };
}

function isAddress(text: string): boolean {
  return isIP(text) !== 0;
}
