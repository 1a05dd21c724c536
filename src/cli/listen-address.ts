/** A TCP address to listen on. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * Parses "HOST:PORT", "[v6]:PORT", ":PORT" or "PORT" (host defaults to 127.0.0.1). Throws an Error naming the
 * bad value.
 */
export function parseListenAddress(value: string, defaultHost = '127.0.0.1'): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))?:?([0-9]{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new Error(`tsgi: bad address, expected HOST:PORT (${value})`);
  }
  const host = match[1] ?? (match[2] || defaultHost);
  return { host, port };
}
